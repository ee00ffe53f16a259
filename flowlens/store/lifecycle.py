"""A store's lifecycle: which days compaction takes, what retention removes, and pruning.

A store fed every five minutes gets a small flows file (and its summary) per day per run: about
288 a day, 100,000 a year, and a query pays for every file it opens. Two things keep it fast and
bounded, both through the one writer and its atomic commits:

* **Compaction** (:mod:`flowlens.store.compact`) rewrites a day's *small* files (under
  :attr:`Lifecycle.small_file_bytes`) into one. ``flowlens compact`` takes every day that has two
  or more; ingest (and the live collector) takes, after each run, every *closed* day (ended
  :attr:`Lifecycle.closed_after` ago) that has more than :attr:`Lifecycle.compact_files` of them
  (:func:`days_due`).
* **Retention** removes whole date partitions older than an age (``flowlens prune --older-than
  90d``, or ``retention:`` in ``flowlens.yaml``, which ingest applies after each run), and the
  quarantine files of ingests older than that: :func:`prune`. Lineage checkpoints stay, so
  re-ingesting a source that was already ingested still adds nothing.

This module plans (:func:`compaction_plan`, :func:`compaction_gain`, :func:`prune_plan`) from a
:class:`~flowlens.store.layout.Snapshot` alone, without reading a file, so ``flowlens status``
can say what compaction would gain.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from flowlens.errors import UsageError
from flowlens.store.commit import StoreWriter, new_ingest_id
from flowlens.store.layout import Snapshot
from flowlens.store.manifest import FileEntry

#: A file smaller than this is small: compaction merges it with the day's other small files.
SMALL_FILE_BYTES = 64 * 1024 * 1024
#: Ingest compacts a closed day that holds more small files than this.
COMPACT_FILES = 24
#: A day is closed this long after its end (records of a day still arrive a little later).
CLOSED_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Lifecycle:
    """What ingest (and the live collector) does to the store after each run.

    ``compact_files``: compact a closed day holding more small files than this (0: never);
    ``retention_days``: remove partitions older than this many days (None: keep everything)."""

    compact_files: int = COMPACT_FILES
    retention_days: int | None = None
    small_file_bytes: int = SMALL_FILE_BYTES
    closed_after: dt.timedelta = CLOSED_AFTER


_AGE = re.compile(r"^\s*(\d+)\s*([dw]?)\s*$", re.IGNORECASE)


def parse_age(text: str | int, *, option: str = "--older-than") -> int:
    """Days from ``90d``, ``12w`` or a number of days (at least 1)."""
    match = _AGE.match(str(text))
    if match is None:
        raise UsageError(f"{option}: cannot read {text!r}; give days like 90d or weeks like 12w")
    days = int(match.group(1)) * (7 if match.group(2).lower() == "w" else 1)
    if days < 1:
        raise UsageError(f"{option}: must be at least 1 day, not {text!r}")
    return days


@dataclass(frozen=True)
class DayPlan:
    """One day's compaction: its small flows files (with their summaries) into one."""

    day: str
    files: tuple[FileEntry, ...]

    @property
    def rows(self) -> int:
        return sum(e.rows for e in self.files)


def _small_by_day(snapshot: Snapshot, small_bytes: int) -> dict[str, list[FileEntry]]:
    days: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in snapshot.flow_entries():
        if entry.bytes < small_bytes and entry.day is not None:
            days[entry.day].append(entry)
    return days


def compaction_plan(
    snapshot: Snapshot,
    *,
    first: dt.date | None = None,
    last: dt.date | None = None,
    small_file_bytes: int = SMALL_FILE_BYTES,
    min_files: int = 2,
    closed_before: dt.date | None = None,
) -> list[DayPlan]:
    """The days in ``[first, last]`` (and before ``closed_before``, when given) holding at least
    ``min_files`` small files, each with those files, oldest day first."""
    plans = []
    for day, files in sorted(_small_by_day(snapshot, small_file_bytes).items()):
        date = dt.date.fromisoformat(day)
        if (first is not None and date < first) or (last is not None and date > last):
            continue
        if closed_before is not None and date >= closed_before:
            continue
        if len(files) >= max(min_files, 2):
            plans.append(DayPlan(day, tuple(sorted(files, key=lambda e: e.path))))
    return plans


def closed_before(now: dt.datetime, lifecycle: Lifecycle) -> dt.date:
    """The first day that is not closed at ``now``."""
    return (now.astimezone(dt.UTC) - lifecycle.closed_after).date()


def days_due(snapshot: Snapshot, now: dt.datetime, lifecycle: Lifecycle) -> list[DayPlan]:
    """The closed days ingest compacts on its own: more than ``compact_files`` small files."""
    if lifecycle.compact_files <= 0:
        return []
    return compaction_plan(
        snapshot,
        small_file_bytes=lifecycle.small_file_bytes,
        min_files=lifecycle.compact_files + 1,
        closed_before=closed_before(now, lifecycle),
    )


@dataclass(frozen=True)
class CompactionGain:
    """What ``flowlens compact`` would do now: files before and after, small files, days."""

    files: int
    small_files: int
    days: int
    files_after: int
    due_days: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "small_files": self.small_files,
            "days_to_compact": self.days,
            "files_after_compaction": self.files_after,
            "days_ingest_would_compact": self.due_days,
        }


def compaction_gain(snapshot: Snapshot, now: dt.datetime, lifecycle: Lifecycle) -> CompactionGain:
    flows = snapshot.flow_entries()
    small = _small_by_day(snapshot, lifecycle.small_file_bytes)
    plans = compaction_plan(snapshot, small_file_bytes=lifecycle.small_file_bytes)
    merged = sum(len(p.files) - 1 for p in plans)
    return CompactionGain(
        files=len(flows),
        small_files=sum(len(v) for v in small.values()),
        days=len(plans),
        files_after=len(flows) - merged,
        due_days=len(days_due(snapshot, now, lifecycle)) if not snapshot.legacy else 0,
    )


# --- retention ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PruneResult:
    """What one prune removed."""

    before: str  # partitions older than this day were removed
    days: tuple[str, ...]
    files: int
    rows: int
    quarantine_files: int
    quarantined: int

    def as_dict(self) -> dict[str, Any]:
        """What ``flowlens prune --json`` prints."""
        return {**asdict(self), "days": list(self.days)}

    def line(self) -> str:
        if not self.days and not self.quarantine_files:
            return f"pruned nothing: no partition older than {self.before}"
        span = f"{self.days[0]} .. {self.days[-1]}" if self.days else "none"
        return (
            f"pruned {len(self.days)} partition(s) older than {self.before} ({span}): {self.rows:,} rows in "
            f"{self.files} flows file(s), and {self.quarantine_files} quarantine file(s) "
            f"({self.quarantined:,} line(s)) of ingests before it; lineage checkpoints kept"
        )


def prune_plan(snapshot: Snapshot, before: dt.date) -> list[FileEntry]:
    """The committed files retention removes: flows files (and their summaries) of partitions
    before ``before``, and quarantine files of ingests started before it."""
    chosen = []
    for entry in snapshot.entries.values():
        if entry.kind in ("flows", "summary"):
            day = entry.day
            if day is not None and dt.date.fromisoformat(day) < before:
                chosen.append(entry)
        elif entry.kind == "quarantine":
            started = _commit_day(entry)
            if started is not None and started < before:
                chosen.append(entry)
    return sorted(chosen, key=lambda e: e.path)


def _commit_day(entry: FileEntry) -> dt.date | None:
    """The day of the ingest that wrote a file, from its commit id (``YYYYMMDDTHHMMSSZ-...``)."""
    name = entry.commit or entry.path.rsplit("/", 1)[-1]
    try:
        return dt.datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").date()
    except ValueError:
        return None


def prune(writer: StoreWriter, older_than_days: int, now: dt.datetime) -> PruneResult:
    """Remove what is older than ``older_than_days`` before ``now``, in one commit of ``writer``."""
    before = (now.astimezone(dt.UTC) - dt.timedelta(days=older_than_days)).date()
    snapshot = Snapshot.of(writer.store, writer.manifest)
    chosen = prune_plan(snapshot, before)
    flows = [e for e in chosen if e.kind == "flows"]
    quarantine = [e for e in chosen if e.kind == "quarantine"]
    result = PruneResult(
        before=before.isoformat(),
        days=tuple(sorted({e.day for e in flows if e.day is not None})),
        files=len(flows),
        rows=sum(e.rows for e in flows),
        quarantine_files=len(quarantine),
        quarantined=sum(e.rows for e in quarantine),
    )
    if chosen:
        stage = writer.stage(f"prune-{new_ingest_id(now)}")
        try:
            writer.commit(stage, writer.manifest, kind="prune", remove=[e.path for e in chosen], now=now)
        except BaseException:
            writer.abort(stage)
            raise
    return result
