"""Compaction: a day's small flows files (and their summaries) rewritten into one, atomically.

:func:`compact_day` reads the day's small files (:mod:`flowlens.store.lifecycle` picks them) in
commit order, in batches, and writes one flows file with the rules every flows file is written
with (:mod:`flowlens.store.parquet`): allowed and denied rows in row groups of their own, each
file read once (a day of fewer than :data:`~flowlens.store.parquet.MIXED_ROWS` rows in one row
group, the denied rows last), the same encodings and statistics. Its summary is the merge of
the old files' summaries (:func:`flowlens.store.summaries.merge_summaries`; a file without one
is summarised from its rows), its denied rows in a row group of their own
(:func:`flowlens.store.summaries.write_summary`). The new files replace the old ones in one
commit of the store's writer (:mod:`flowlens.store.commit`): readers see the old files or the
new one, never both and never neither, and the old files are deleted only once no reader may
still be reading them. The new file's spans of source content are the union of the old ones',
so ``flowlens repair`` treats it as it would have treated them. Rows, values and every query's
answer are unchanged; only the order of rows within the day changes.

:func:`maintain` is what ingest runs after each run, and what the live collector calls between
its commits: compaction of the closed days that hold too many small files, then retention.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowlens.schema import ARROW_SCHEMA
from flowlens.store.commit import StoreWriter, new_ingest_id
from flowlens.store.layout import Snapshot, summary_path
from flowlens.store.lifecycle import DayPlan, Lifecycle, days_due, prune
from flowlens.store.manifest import Span, merge_spans
from flowlens.store.parquet import MIXED_ROWS, ROWS_PER_ROW_GROUP, flows_parquet_writer
from flowlens.store.summaries import merge_summaries, summarise_table, write_summary

BATCH_ROWS = 64 * 1024


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did."""

    days: tuple[str, ...]
    files_before: int
    files_after: int
    rows: int

    def as_dict(self) -> dict[str, Any]:
        """What ``flowlens compact --json`` prints."""
        return {**asdict(self), "days": list(self.days)}

    def line(self) -> str:
        if not self.days:
            return "compacted nothing: no day has two or more small files"
        span = self.days[0] if len(self.days) == 1 else f"{self.days[0]} .. {self.days[-1]}"
        return (
            f"compacted {len(self.days)} day(s) ({span}): {self.files_before} flows file(s) into "
            f"{self.files_after}, {self.rows:,} rows"
        )


def _conform(batch: pa.RecordBatch) -> pa.Table:
    """A batch of a flows file as :data:`ARROW_SCHEMA` (a column an older file lacks is null)."""
    table = pa.Table.from_batches([batch])
    columns = []
    for field in ARROW_SCHEMA:
        if field.name in table.column_names:
            column = table[field.name]
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


def _batches(path: Path) -> Iterator[pa.Table]:
    source = pq.ParquetFile(path)
    for batch in source.iter_batches(batch_size=BATCH_ROWS):
        yield _conform(batch)


def _denied(table: pa.Table) -> pa.Array:
    return pc.fill_null(pc.equal(table["action"], "deny"), False)


def _rewrite(files: list[Path], total: int, target: Path) -> int:
    """Write the rows of ``files`` (``total`` rows in all) into ``target``; how many. Each file
    is read once: small files cost their opening more than their rows."""
    writer = flows_parquet_writer(target, ARROW_SCHEMA)
    written = 0
    try:
        if total < MIXED_ROWS:  # one row group: the allowed rows, then the denied rows
            parts = [t for f in files for t in _batches(f)]
            whole = pa.concat_tables(parts) if parts else ARROW_SCHEMA.empty_table()
            denied = _denied(whole)
            ordered = pa.concat_tables([whole.filter(pc.invert(denied)), whole.filter(denied)])
            writer.write_table(ordered, row_group_size=max(ordered.num_rows, 1))
            written = ordered.num_rows
        else:
            # Allowed and denied rows each fill row groups of their own, written as each fills up:
            # at most two row groups are held.
            pending: dict[bool, list[pa.Table]] = {False: [], True: []}
            held = {False: 0, True: 0}
            for f in files:
                for table in _batches(f):
                    mask = _denied(table)
                    for want_denied in (False, True):
                        part = table.filter(mask if want_denied else pc.invert(mask))
                        if not part.num_rows:
                            continue
                        pending[want_denied].append(part)
                        held[want_denied] += part.num_rows
                        while held[want_denied] >= ROWS_PER_ROW_GROUP:
                            block = pa.concat_tables(pending[want_denied])
                            writer.write_table(
                                block.slice(0, ROWS_PER_ROW_GROUP), row_group_size=ROWS_PER_ROW_GROUP
                            )
                            written += ROWS_PER_ROW_GROUP
                            rest = block.slice(ROWS_PER_ROW_GROUP)
                            pending[want_denied] = [rest] if rest.num_rows else []
                            held[want_denied] = rest.num_rows
            for want_denied in (False, True):
                if held[want_denied]:
                    writer.write_table(
                        pa.concat_tables(pending[want_denied]), row_group_size=ROWS_PER_ROW_GROUP
                    )
                    written += held[want_denied]
    finally:
        writer.close()
    if written != total:
        raise RuntimeError(f"compaction wrote {written} rows of {total}")
    return written


def compact_day(writer: StoreWriter, plan: DayPlan, *, now: dt.datetime | None = None) -> tuple[int, int]:
    """Rewrite the small files of one day (``plan``) into one, in one commit of ``writer``.
    Returns (files replaced, rows)."""
    clock = now or dt.datetime.now(dt.UTC)
    snapshot = Snapshot.of(writer.store, writer.manifest)
    current = {e.path for e in snapshot.flow_entries()}
    entries = [e for e in plan.files if e.path in current]
    if len(entries) < 2:
        return 0, 0
    commit_id = f"compact-{new_ingest_id(clock)}"
    stage = writer.stage(commit_id)
    try:
        rel = f"flows/date={plan.day}/{commit_id}.parquet"
        target = stage / rel
        target.parent.mkdir(parents=True)
        paths = [snapshot.path(e.path) for e in entries]
        summaries = snapshot.summaries()
        old = [s for p in paths if (s := summaries.get(p)) is not None]
        # (the files as this process can read them: themselves, or local copies at a URL)
        with writer.readable([*paths, *old]) as local:
            rows = _rewrite([local[p] for p in paths], sum(e.rows for e in entries), target)
            tables = []
            for path in paths:
                summary = summaries.get(path)
                if summary is not None:
                    tables.append(pq.read_table(local[summary]))
                else:
                    tables.extend(summarise_table(t) for t in _batches(local[path]))
        merged = merge_summaries(tables)
        summary_target = summary_path(stage, target)
        summary_target.parent.mkdir(parents=True, exist_ok=True)
        write_summary(merged, summary_target)
        spans: list[Span] | None = []
        for entry in entries:
            if entry.spans is None or spans is None:
                spans = None
            else:
                spans.extend(entry.spans)
        old_summaries = [s.relative_to(writer.store.root).as_posix() for s in old]
        writer.commit(
            stage,
            writer.manifest,
            kind="compact",
            file_spans={rel: None if spans is None else merge_spans(spans)},
            remove=[e.path for e in entries] + old_summaries,
            now=clock,
        )
    except BaseException:
        writer.abort(stage)
        raise
    return len(entries), rows


def compact(
    writer: StoreWriter,
    plans: list[DayPlan],
    *,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CompactResult:
    """Compact each day of ``plans``, one commit per day (a run stopped half-way keeps the days
    it finished). ``progress(done, total)`` after each day."""
    days: list[str] = []
    before = rows = 0
    for done, plan in enumerate(plans, 1):
        replaced, day_rows = compact_day(writer, plan, now=now)
        if replaced:
            days.append(plan.day)
            before += replaced
            rows += day_rows
        if progress is not None:
            progress(done, len(plans))
    return CompactResult(tuple(days), before, len(days), rows)


def maintain(
    writer: StoreWriter, lifecycle: Lifecycle, now: dt.datetime, *, max_days: int | None = None
) -> list[str]:
    """After a run of ingest or between commits of the live collector: compact the closed days
    that hold more than ``lifecycle.compact_files`` small files (the oldest ``max_days`` of them
    when given, so that a collector holding the lock between two commits works off a backlog a
    little at a time), then apply retention. One line per thing done (nothing when there was
    nothing to do)."""
    notes: list[str] = []
    due = days_due(Snapshot.of(writer.store, writer.manifest), now, lifecycle)
    if max_days is not None:
        due = due[:max_days]
    if due:
        notes.append(compact(writer, due, now=now).line())
    if lifecycle.retention_days is not None:
        result = prune(writer, lifecycle.retention_days, now)
        if result.days or result.quarantine_files:
            notes.append(result.line())
    return notes
