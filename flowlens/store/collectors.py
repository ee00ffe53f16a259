"""Collector positions: where each live collector's last commit ended, kept in the manifest.

A live collector (``flowlens collect``, :mod:`flowlens.collect`) commits micro-batches through
the same atomic commit as ingest (:mod:`flowlens.store.commit`). What it has stored so far (a
Goldmane bucket boundary, the digests of batches a sender may send again) must change in the
same commit as its rows, or a kill between the two would lose or double data. So it lives in
the manifest, under ``collectors``, one entry per collector name::

    "collectors": {"goldmane": {"kind": "goldmane", "source": "...", ...}, "serve": {...}}

The store treats each entry as opaque JSON owned by :mod:`flowlens.collect`: it only keeps it
across commits (every writer copies the whole manifest) and lists it in ``flowlens status``.
"""

from __future__ import annotations

import copy
from typing import Any

COLLECTORS_KEY = "collectors"


def collector_positions(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every collector's recorded position, by collector name (a copy: change it through
    :func:`set_collector_position`)."""
    found = manifest.get(COLLECTORS_KEY)
    if not isinstance(found, dict):
        return {}
    return {str(k): copy.deepcopy(v) for k, v in found.items() if isinstance(v, dict)}


def set_collector_position(manifest: dict[str, Any], name: str, position: dict[str, Any]) -> None:
    """Record ``position`` as collector ``name``'s position in ``manifest`` (the manifest a commit
    is about to write), replacing the one before."""
    found = manifest.get(COLLECTORS_KEY)
    if not isinstance(found, dict):
        found = manifest[COLLECTORS_KEY] = {}
    found[name] = copy.deepcopy(position)
