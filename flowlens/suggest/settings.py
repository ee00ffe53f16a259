"""The ``suggest:`` section of ``flowlens.yaml``: a team's defaults for ``flowlens suggest``.

Keys are the command's option names without the dashes in front (``min-days: 2``,
``scan-ports: 10``, ``hold-back: [port-scan, one-off]``, ``admit: [EDGE, ...]``); an option given
on the command line wins over the file. :func:`suggest_settings` checks the mapping and returns
the values by the library's field names, so that one wrong key or type is a one-line error that
names the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowlens.errors import UsageError

#: key -> (field name, type): ``int`` counts, ``float`` shares, ``list`` lists of strings.
KEYS: dict[str, tuple[str, type]] = {
    "min-connections": ("min_connections", int),
    "min-days": ("min_days", int),
    "thin-intervals": ("thin_intervals", int),
    "probe-bytes": ("probe_bytes", int),
    "probe-connections": ("probe_connections", int),
    "scan-ports": ("scan_ports", int),
    "sweep-hosts": ("sweep_hosts", int),
    "denied-share": ("denied_share", float),
    "one-off-intervals": ("one_off_intervals", int),
    "hold-back": ("classes", list),
    "admit": ("admit", list),
}


def suggest_settings(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The checked values of a ``suggest:`` mapping (``where``: the file, for messages)."""
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UsageError(
            f"{where}: suggest: unknown key(s) {', '.join(map(str, unknown))}; known keys: {', '.join(sorted(KEYS))}"
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        name, kind = KEYS[key]
        if kind is int:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"{where}: suggest: {key} must be a whole number, 0 or more")
        elif kind is float:
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise UsageError(f"{where}: suggest: {key} must be a share between 0 and 1")
            value = float(value)
        elif isinstance(value, str):
            value = [value]
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise UsageError(f"{where}: suggest: {key} must be a list of strings")
            value = tuple(value)
        out[name] = value
    return out
