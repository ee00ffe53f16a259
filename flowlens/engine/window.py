"""The time window of a query, whatever engine runs it: ``--since``/``--until`` and what they select.

Owns:

* :func:`parse_time` — ``30m`` / ``24h`` / ``7d`` / ``2w`` durations before *now*, ``now``, or
  ISO-8601 (no offset means UTC; a bare date means its midnight UTC);
* :func:`resolve_window` — the ``[since, until)`` bounds of a window from datetimes or text (a
  duration in ``since`` counts back from ``until``);
* :func:`select_files` — the committed Parquet files (from the store's manifest, checked to be on
  disk whole) whose ``date=YYYY-MM-DD`` partition can hold rows of the window, so that partitions
  outside it are never opened;
* :func:`plan_summary` — which part of the window the stored hourly summaries cover and which
  records must be grouped at query time, for the ``flow_summary`` view.

A record belongs to the window when its ``start_time`` is in ``[since, until)``: the instant its
``date`` partition and its summary hour are derived from, so pruning, filtering and the summaries
agree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowlens.errors import UsageError
from flowlens.store import Snapshot, Store, read_snapshot, require_present, usable_summaries

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_HELP = "give a duration before now like 30m, 24h, 7d, 2w, or an ISO-8601 time like 2026-11-25T12:00:00Z"


def parse_time(text: str, now: dt.datetime, *, option: str = "time") -> dt.datetime:
    """An aware UTC datetime from a duration before ``now`` (``30m``, ``24h``, ``7d``) or ISO-8601.

    ISO-8601 text without an offset is taken as UTC; a bare date means its midnight UTC.
    Raises :class:`UsageError` naming ``option`` when the text is neither.
    """
    value = text.strip()
    if not value:
        raise UsageError(f"{option}: empty value; {_TIME_HELP}")
    match = _DURATION.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return as_utc(now) - dt.timedelta(**{_DURATION_UNITS[unit]: amount})
    if value.lower() == "now":
        return as_utc(now)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: cannot read {text!r}; {_TIME_HELP}") from None
    return as_utc(parsed)


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def resolve_window(
    since: dt.datetime | str | None, until: dt.datetime | str | None, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The window's bounds as aware UTC datetimes (None: unbounded on that side).

    Text is read by :func:`parse_time`: ``until`` relative to ``now``, ``since`` relative to
    ``until`` when there is one (``since="24h", until="2026-11-25"`` is the day before), else to
    ``now``, as ``flowlens report`` reads its window. Raises :class:`UsageError` when ``since`` is
    not before ``until``.
    """
    until_at = _resolve(until, now, "--until")
    since_at = _resolve(since, until_at or now, "--since")
    if since_at is not None and until_at is not None and since_at >= until_at:
        raise UsageError(f"--since ({since_at.isoformat()}) must be before --until ({until_at.isoformat()})")
    return since_at, until_at


def _resolve(value: dt.datetime | str | None, now: dt.datetime, option: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value, now, option=option)
    return as_utc(value)


def _window_dates(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.date | None, dt.date | None]:
    first = since.date() if since is not None else None
    last = None
    if until is not None:
        # ``until`` is exclusive: a window ending at midnight does not need that day's partition.
        last = (
            until.date()
            if until.timetz() != dt.time(0, tzinfo=dt.UTC)
            else until.date() - dt.timedelta(days=1)
        )
    return first, last


def select_files(store: Store, since: dt.datetime | None, until: dt.datetime | None) -> list[Path]:
    """The committed Parquet files whose ``date=`` partition can hold rows of the window: from the
    store's manifest (:func:`flowlens.store.read_snapshot`), never a glob of its folders.
    :class:`~flowlens.errors.StoreDamagedError` when one of them is missing or truncated, or the
    manifest is (a query would answer short)."""
    return window_files(read_snapshot(store), since, until)


def window_files(snapshot: Snapshot, since: dt.datetime | None, until: dt.datetime | None) -> list[Path]:
    """:func:`select_files` from a snapshot the caller holds (see :func:`flowlens.store.reading`)."""
    first, last = _window_dates(since, until)
    entries = snapshot.flow_entries(first, last)
    require_present(snapshot, entries)
    return [snapshot.path(e.path) for e in entries]


def _hour_floor(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(at: dt.datetime) -> dt.datetime:
    floor = _hour_floor(at)
    return floor if floor == at else floor + dt.timedelta(hours=1)


#: A time range ``[start, end)``; None is unbounded on that side.
Span = tuple[dt.datetime | None, dt.datetime | None]


@dataclass(frozen=True)
class SummaryPlan:
    """How the ``flow_summary`` view of the window ``[since, until)`` is put together.

    The whole hours ``[hours_from, hours_until)`` of the window are read from the stored hourly
    summaries of the files in :attr:`summarised` (flows file -> its summary file). The records of
    those files in :attr:`edges` (the partial hours at the window's ends), and every record of the
    files in :attr:`unsummarised`, are grouped at query time with the same SQL. An hour bucket holds
    the records whose ``start_time`` falls in it, and the window selects records by ``start_time``,
    so the parts never overlap and together hold every record of the window exactly once.
    """

    since: dt.datetime | None
    until: dt.datetime | None
    summarised: tuple[tuple[Path, Path], ...]
    unsummarised: tuple[Path, ...]
    hours_from: dt.datetime | None
    hours_until: dt.datetime | None
    edges: tuple[tuple[dt.datetime, dt.datetime], ...]

    @property
    def group_unsummarised(self) -> bool:
        """Whether the unsummarised files form a part of their own (always, when nothing is summarised,
        so that the view has its columns even over no files)."""
        return bool(self.unsummarised) or not self.summarised


def plan_summary(
    store: Store,
    files: Sequence[Path],
    since: dt.datetime | None,
    until: dt.datetime | None,
    use_summaries: bool = True,
    *,
    snapshot: Snapshot | None = None,
) -> SummaryPlan:
    """The :class:`SummaryPlan` of the window ``[since, until)`` over ``files``.

    The summaries are the committed ones of ``snapshot`` (default: the store's current manifest)
    that are on disk whole. ``use_summaries=False`` ignores the stored summaries: every record is
    grouped at query time.
    """
    lo = _hour_ceil(since) if since is not None else None
    hi = _hour_floor(until) if until is not None else None
    whole_hours = lo is None or hi is None or lo < hi
    stored: list[tuple[Path, Path]] = []
    if use_summaries and whole_hours:
        usable = usable_summaries(snapshot or store.snapshot(), files)
        stored = [(flows_file, usable[flows_file]) for flows_file in files if flows_file in usable]
    done = {flows_file for flows_file, _ in stored}
    edges: list[tuple[dt.datetime, dt.datetime]] = []
    if stored:
        for low, high in ((since, lo), (hi, until)):
            if low is not None and high is not None and low < high:
                edges.append((low, high))
    return SummaryPlan(
        since=since,
        until=until,
        summarised=tuple(stored),
        unsummarised=tuple(f for f in files if f not in done),
        hours_from=lo,
        hours_until=hi,
        edges=tuple(edges),
    )
