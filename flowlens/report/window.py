"""Report windows: which time range a report covers, and the path-safe label its folder is named by.

* ``day`` at a date: ``[date 00:00, +1 day)`` UTC, label ``2026-11-25``;
* ``week`` at a date: the ISO week holding it, Monday 00:00 UTC for 7 days, label ``2026-W48``;
* ``since`` a duration (``24h``) before ``until`` (default: now, to the minute), label
  ``last-24h-20261125T1200Z``;
* ``since`` an ISO time, label ``20261124T0000Z--20261125T1200Z``.

Labels match :data:`LABEL_RE`, so a label can never name a path outside the reports folder.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flowlens.engine import parse_time
from flowlens.errors import UsageError

LABEL_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
WINDOW_KINDS = ("day", "week")


@dataclass(frozen=True)
class Window:
    """A report window ``[start, end)`` in UTC and its label."""

    kind: str  # day, week or range
    start: dt.datetime
    end: dt.datetime
    label: str

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "kind": self.kind, "start": _iso(self.start), "end": _iso(self.end)}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%MZ")


def check_label(label: str) -> str:
    """``label`` if it is a safe folder name; :class:`UsageError` otherwise."""
    if not LABEL_RE.match(label) or label in ("latest",):
        raise UsageError(f"window label {label!r} is not a safe folder name (letters, digits, '-', '_')")
    return label


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--at: cannot read {text!r}; give a date like 2026-11-25") from None


def resolve_window(
    *,
    now: dt.datetime,
    since: str | None = None,
    until: str | None = None,
    window: str | None = None,
    at: str | None = None,
) -> Window:
    """The window the options describe (default: the last 24 hours).

    ``--window day`` without ``--at`` is yesterday (the last complete day); ``--window week``
    without ``--at`` is the last complete ISO week.
    """
    now = now.astimezone(dt.UTC)
    if window is not None:
        if since is not None or until is not None:
            raise UsageError("give either --window (with --at) or --since/--until, not both")
        if window not in WINDOW_KINDS:
            raise UsageError(f"--window must be one of {', '.join(WINDOW_KINDS)}, not {window!r}")
        if window == "day":
            day = _date(at) if at else now.date() - dt.timedelta(days=1)
            start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
            return Window("day", start, start + dt.timedelta(days=1), day.isoformat())
        day = _date(at) if at else now.date() - dt.timedelta(days=7)
        monday = day - dt.timedelta(days=day.weekday())
        year, week, _ = monday.isocalendar()
        start = dt.datetime.combine(monday, dt.time(0), tzinfo=dt.UTC)
        return Window("week", start, start + dt.timedelta(days=7), f"{year}-W{week:02d}")
    if at is not None:
        raise UsageError("--at needs --window day or --window week")
    end = parse_time(until, now, option="--until") if until else now.replace(second=0, microsecond=0)
    since_text = (since or "24h").strip()
    start = parse_time(since_text, end, option="--since")
    if start >= end:
        raise UsageError(f"--since ({_iso(start)}) must be before --until ({_iso(end)})")
    duration = _DURATION.match(since_text.lower())
    if duration:
        label = f"last-{duration.group(1)}{duration.group(2)}-{_stamp(end)}"
    else:
        label = f"{_stamp(start)}--{_stamp(end)}"
    return Window("range", start, end, check_label(label))
