"""The writer: a commit's flow rows into Parquet files per day, on threads of their own.

:class:`FileWriter` buffers rows per date partition and writes them into staged Parquet files
(``flows/date=YYYY-MM-DD/<commit>.parquet``, and ``<commit>-pN.parquet`` when a day comes back
after its file was closed), with the hourly summary of each file beside it
(:mod:`flowlens.store.summaries`). Allowed and denied rows go to separate row groups, so that a
query about denied traffic skips the far more numerous allowed rows by their statistics. Writing
runs on worker threads (pyarrow releases the GIL while it encodes), so that the next batch is
parsed while this one is compressed and written. Memory stays bounded whatever the number of
days the input covers (:class:`WriterBudget`: open files and buffered bytes).

:class:`StagedCommit` is one commit being prepared: the files of :class:`FileWriter` and the
quarantined lines (:class:`flowlens.ingest.accounting.Quarantine`), staged under
``.staging/<commit>/`` and then handed, with the manifest, to the store's atomic commit
(:mod:`flowlens.store.commit`). A live collector commits its micro-batches the same way: one
:class:`StagedCommit` per commit, rows in :data:`~flowlens.ingest.dictionaries.WRITE_SCHEMA`
ordered by :func:`write_order`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import shutil
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowlens.ingest.accounting import Quarantine
from flowlens.ingest.dictionaries import WRITE_SCHEMA
from flowlens.store import Span, StoreWriter, summary_path
from flowlens.store.parquet import MIXED_ROWS, ROWS_PER_ROW_GROUP, flows_parquet_writer
from flowlens.store.summaries import summarise_table

MAX_ROWS_QUEUED = 128 * 1024  # rows handed to the Parquet writer thread and not yet written


def _day_numbers(times: pa.ChunkedArray) -> np.ndarray:
    """The UTC day (days since 1970-01-01) of each timestamp of a column without nulls."""
    micros = times.combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    return micros // 86_400_000_000


def _write_keys(start_time: pa.ChunkedArray, action: pa.ChunkedArray) -> np.ndarray:
    """Per row, the row group it belongs in: its UTC day times two, plus one if it was denied."""
    denied = pc.equal(action, "deny").fill_null(False).combine_chunks()
    return _day_numbers(start_time) * 2 + denied.to_numpy(zero_copy_only=False).astype(np.int64)


def write_order(
    out: pa.Table, keep: np.ndarray, records: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the kept rows (whose start time is known) in the order the writer stores
    them, grouped by :func:`_write_keys` and in input order within a group, and their keys.
    ``records``: for each row of ``keep``, its row of ``out`` (None: the same)."""
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return rows, rows
    picks = pa.array(rows if records is None else records[rows])
    keys = _write_keys(out["start_time"].take(picks), out["action"].take(picks))
    order = np.argsort(keys, kind="stable")
    return rows[order], keys[order]


def _iso_day(number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(number))).isoformat()


def _split(table: pa.Table, keys: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """The rows of ``table`` per distinct value of ``keys`` (one per row), in key order, each
    group in table order: one stable sort and one ``take``, then zero-copy slices (a filter per
    group would read the whole table once per group)."""
    if len(keys) == 0:
        return
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    bounds = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    if len(bounds) == 0:
        yield int(keys[0]), table
        return
    if not (order[1:] > order[:-1]).all():
        table = table.take(pa.array(order))
    for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True):
        yield int(ordered[start]), table.slice(int(start), int(end - start))


@dataclass(frozen=True)
class WriterBudget:
    """What one commit's writer may hold at once, whatever the number of days its rows cover.

    ``open_files``: day files open for writing (each a Parquet writer of flows and one of its
    summary, so twice as many file descriptors; fewer when the process's limit on open files
    leaves no room for them); a day that comes back once its file was closed gets a new part
    file. The default covers a year of days under Linux's usual limit of 1,024. ``buffered_bytes``: rows waiting in memory for their day's write; past
    it every buffered day is written out, so that no batch stays alive for a few of its rows.
    ``open_row_groups``: row groups written into the files still open. A Parquet writer holds
    the metadata of each row group it wrote until it closes (about 100 KB for a flows row group
    of the store's columns), and input in no time order writes a small row group into every
    day's file each time the buffer is written out: so past this many, the files holding the
    most row groups are closed (their days continue in new part files) until half as many are
    held. Without it, memory grew with the records: 3 GB and more at 10 M records over a year."""

    open_files: int = 512
    buffered_bytes: int = 128 * 1024 * 1024
    open_row_groups: int = 1024


WRITER_BUDGET = WriterBudget()
HIT_PREFIX = "\x00hit:"  # the summary's deciding hits, carried beside the rows until written


def _descriptor_room() -> int:
    """Day files the process's limit on open files leaves room for (two descriptors each, and
    a margin for everything else the process holds)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no limit to read
        return WRITER_BUDGET.open_files
    if soft == resource.RLIM_INFINITY:
        return WRITER_BUDGET.open_files
    return max(4, (soft - 128) // 2)


class _DayFile:
    """One part file of a day being written: its flows and, beside it, the summary of what it
    holds, each opened at its first write and closed once, after the file's last write."""

    def __init__(self, stage: Path, day: str, name: str) -> None:
        self.day = day
        self.path = stage / "flows" / f"date={day}" / f"{name}.parquet"
        # Named *.part until the flows file is complete: its final name carries that size.
        self.summary_part = stage / "summary-parts" / f"date={day}" / f"{name}.part"
        self.stage = stage
        self.flows: pq.ParquetWriter | None = None
        self.summary: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        flows = table.select(WRITE_SCHEMA.names)
        hits = {
            name.removeprefix(HIT_PREFIX): table[name]
            for name in table.column_names
            if name.startswith(HIT_PREFIX)
        }
        if self.flows is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.flows = flows_parquet_writer(self.path, WRITE_SCHEMA)
        self.flows.write_table(flows, row_group_size=ROWS_PER_ROW_GROUP)
        summary = summarise_table(flows, {name: hit.combine_chunks() for name, hit in hits.items()} or None)
        if self.summary is None:
            self.summary_part.parent.mkdir(parents=True, exist_ok=True)
            self.summary = pq.ParquetWriter(self.summary_part, summary.schema, compression="zstd")
        self.summary.write_table(summary)

    def close(self) -> None:
        """Finish both files and give the summary its final name (which carries the flows
        file's size)."""
        if self.flows is not None:
            self.flows.close()
            self.flows = None
        if self.summary is not None:
            self.summary.close()
            self.summary = None
            target = summary_path(self.stage, self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.summary_part, target)

    def discard(self) -> None:
        for writer in (self.flows, self.summary):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        self.flows = self.summary = None


class FileWriter:
    """Buffers rows per date partition and writes them into staged Parquet files, a few per
    date at most, each with its summary.

    Allowed and denied rows go to separate row groups, so that a query about denied traffic
    skips the (far more numerous) allowed rows by their statistics; a day's few rows (fewer than
    MIXED_ROWS written at once) share one row group. Writing happens on a worker
    thread (pyarrow releases the GIL while it encodes), so that the next batch is parsed while
    this one is compressed and written.

    Memory stays bounded whatever the number of days (:class:`WriterBudget`): at most
    ``open_files`` day files are open, the least recently written one is closed to open
    another (the day gets a new part file ``<commit>-pN.parquet`` if it comes back), and past
    ``buffered_bytes`` of waiting rows every day's rows are written out. Each part file has its
    own summary, computed from the rows as they are written."""

    def __init__(self, stage: Path, commit_id: str, budget: WriterBudget | None = None) -> None:
        self.stage = stage
        self.commit_id = commit_id
        budget = budget or WRITER_BUDGET
        self._open_limit = max(1, min(budget.open_files, _descriptor_room()))
        self._byte_limit = budget.buffered_bytes
        self._buffers: dict[tuple[str, str], list[pa.Table]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._bytes: dict[tuple[str, str], int] = {}
        self._open: dict[str, _DayFile] = {}  # per day, its file being written; least recent first
        self._row_group_limit = max(1, budget.open_row_groups)
        self._row_groups: dict[str, int] = {}  # per day with an open file, the row groups written into it
        self._parts: dict[str, int] = {}  # per day, the part files started
        self._files: list[_DayFile] = []
        # Writes queue up while the next batch is parsed; at most MAX_ROWS_QUEUED rows wait,
        # which bounds memory. One write runs at a time while batches are parsed (a second would
        # only take a core from the parsing); once the input ends, two files are written at once
        # (the writes still queued are mostly of other days than each other). Each day's writes
        # (and the closing of its files) stay in order.
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._writing = threading.Semaphore(1)
        self._last_write: dict[str, Future[None]] = {}  # per day, its latest write or close
        self._queued: deque[tuple[Future[None], int]] = deque()
        self.rows = 0

    def add(self, table: pa.Table, keys: np.ndarray, hits: dict[str, pa.Array]) -> None:
        """Buffer the rows of ``table`` (WRITE_SCHEMA) by day and verdict (``keys``: their
        :func:`_write_keys`; a table in :func:`write_order` is cut into slices without a copy)
        and write out what need not wait. ``hits``: the rows' deciding hits for the summary (the
        summary cannot pick them out of the encoded traces); they travel with the rows."""
        if table.num_rows == 0:
            return
        for name, hit in hits.items():
            table = table.append_column(HIT_PREFIX + name, hit)
        per_row = table.nbytes / table.num_rows
        touched = set()  # days
        for group, part in _split(table, keys):
            key = (_iso_day(group // 2), "deny" if group % 2 else "other")
            touched.add(key[0])
            self._buffers.setdefault(key, []).append(part)
            self._counts[key] = self._counts.get(key, 0) + part.num_rows
            self._bytes[key] = self._bytes.get(key, 0) + int(part.num_rows * per_row)
            if self._counts[key] >= ROWS_PER_ROW_GROUP:
                self._flush(key)
        self.rows += table.num_rows
        # A day this batch did not touch is most likely over (Felix writes in time order): write
        # it now, so that writing overlaps with parsing instead of piling up until the end.
        for key in [k for k in self._buffers if k[0] not in touched]:
            self._flush(key)
        # Input spread over many days must not pile up in memory. A buffered slice keeps its
        # whole batch alive, so past the budget every day is written out (the days whose files
        # are open first), not only the fullest: then no batch outlives the budget.
        if sum(self._bytes.values()) >= self._byte_limit:
            for key in sorted(self._buffers, key=lambda k: (k[0] not in self._open, k)):
                self._flush(key)
            # The queued writes hold slices of every batch: let them finish before the next
            # batch comes, or the old batches would live on beside the new ones.
            self._wait()

    def _flush(self, key: tuple[str, str]) -> None:
        """Write the rows buffered under ``key``, and with them the day's rows of the other
        verdict if together they are fewer than MIXED_ROWS (the denied rows last)."""
        day = key[0]
        rows = sum(part.num_rows for part in self._buffers.get(key, []))
        partner = (day, "deny" if key[1] == "other" else "other")
        partner_rows = sum(part.num_rows for part in self._buffers.get(partner, []))
        keys = [key, partner] if rows and rows + partner_rows < MIXED_ROWS else [key]
        parts = [
            part for k in sorted(keys, key=lambda k: k[1] == "deny") for part in self._buffers.pop(k, [])
        ]
        for k in keys:
            self._counts.pop(k, None)
            self._bytes.pop(k, None)
        if not parts:
            return
        rows = sum(part.num_rows for part in parts)
        file, closing = self._file_for(day)
        after = [f for f in (self._last_write.get(day), *closing) if f is not None]
        write = self._pool.submit(self._write, file, pa.concat_tables(parts), after)
        self._last_write[day] = write
        self._row_groups[day] = self._row_groups.get(day, 0) + -(-rows // ROWS_PER_ROW_GROUP)
        if sum(self._row_groups.values()) > self._row_group_limit:
            self._close_fullest()
        self._queued.append((write, rows))
        self._wait(MAX_ROWS_QUEUED)

    def _close_fullest(self) -> None:
        """Close the open files holding the most row groups (after their queued writes) until
        half the budget's row groups are held: their metadata is freed as they close."""
        held = sum(self._row_groups.values())
        for day in sorted(self._row_groups, key=lambda d: -self._row_groups[d]):
            if held <= self._row_group_limit // 2:
                break
            held -= self._row_groups.pop(day)
            self._close_later(self._open.pop(day))

    def _file_for(self, day: str) -> tuple[_DayFile, list[Future[None]]]:
        """The day's open file, most recently used now, and the closes its first write waits
        for: opening it closes the least recently used files (after their queued writes) to
        stay within the budget, and the new file opens only once they are closed."""
        file = self._open.pop(day, None)
        closing = []
        if file is None:
            while len(self._open) >= self._open_limit:
                oldest = next(iter(self._open))
                self._row_groups.pop(oldest, None)
                closing.append(self._close_later(self._open.pop(oldest)))
            part = self._parts.get(day, 0)
            self._parts[day] = part + 1
            file = _DayFile(self.stage, day, self.commit_id if part == 0 else f"{self.commit_id}-p{part}")
            self._files.append(file)
        self._open[day] = file
        return file, closing

    def _close_later(self, file: _DayFile) -> Future[None]:
        closing = self._pool.submit(self._close, file, [f for f in [self._last_write.get(file.day)] if f])
        self._last_write[file.day] = closing
        return closing

    @staticmethod
    def _close(file: _DayFile, after: list[Future[None]]) -> None:
        for done in after:
            done.result()
        file.close()

    def _write(self, file: _DayFile, table: pa.Table, after: list[Future[None]]) -> None:
        """Write ``table`` into the day's file once ``after`` (the day's write before, and the
        closes that make room for a new file) are done. Those were queued first, so they are
        already running or done (or waiting for their own), and no write holds a turn to write
        while it waits: the queue cannot lock up."""
        for done in after:
            done.result()
        with self._writing:
            self._write_now(file, table)

    def _write_now(self, file: _DayFile, table: pa.Table) -> None:
        file.write(table)

    def _wait(self, limit: int = 0) -> None:
        """Finish queued writes until at most ``limit`` rows wait (0: all of them)."""
        while self._queued and (self._queued[0][0].done() or sum(n for _, n in self._queued) > limit):
            self._queued.popleft()[0].result()  # re-raises a failed write here

    def seal(self) -> list[Path]:
        """Write out and finish every file so far, the writer staying open (a day's next rows go
        to a new part file); the flows files staged so far, each complete."""
        for key in sorted(self._buffers):
            self._flush(key)
        for file in list(self._open.values()):
            self._close_later(file)
        self._open.clear()
        self._row_groups.clear()
        closing = list(self._last_write.values())
        self._wait()
        for done in closing:
            done.result()  # re-raises a failed write or close here
        return [file.path for file in self._files if file.path.is_file()]

    def discard(self) -> None:
        """Stop after a failure: wait for the threads, close the files, keep nothing."""
        self._buffers.clear()
        self._counts.clear()
        self._bytes.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for file in self._files:
            file.discard()
        self._open.clear()
        self._row_groups.clear()

    def close(self) -> set[str]:
        self._writing.release()  # the input has ended: two writes at once
        self.seal()
        self._pool.shutdown(wait=True)
        shutil.rmtree(self.stage / "summary-parts", ignore_errors=True)
        return {file.day for file in self._files if file.path.is_file()}


class StagedCommit:
    """One commit being prepared: its flow rows (by day, with their summaries) and quarantined
    lines, staged under the store's ``.staging/<commit_id>/`` until :meth:`commit`."""

    def __init__(self, writer: StoreWriter, commit_id: str, quarantine: Quarantine) -> None:
        self.commit_id = commit_id
        self._writer = writer
        self._quarantine = quarantine
        self.stage = writer.stage(commit_id)
        self.files = FileWriter(self.stage, commit_id)
        quarantine.stage_into(self.stage, commit_id)

    @property
    def rows(self) -> int:
        """Rows staged so far."""
        return self.files.rows

    def add(self, table: pa.Table, keys: np.ndarray, hits: dict[str, pa.Array]) -> None:
        """Stage rows (see :meth:`FileWriter.add`)."""
        self.files.add(table, keys, hits)

    def close(self) -> set[str]:
        """Finish writing every staged file; the days (partitions) written."""
        days = self.files.close()
        self._quarantine.flush()
        return days

    def commit(self, manifest: dict[str, Any], spans: Sequence[Span] = ()) -> None:
        """Make the staged files visible, with ``manifest`` (which describes them), atomically.
        ``spans``: the source content the staged rows and quarantined lines came from."""
        self._writer.commit(self.stage, manifest, spans=spans)

    def abort(self) -> None:
        """Throw the staged files away (the writer threads finished first). A write that failed
        (a full disk) fails again here: it was reported already, so it is not raised twice."""
        try:
            self.files.close()
        except Exception:  # the run is being abandoned for an error raised before
            self.files.discard()
        self._writer.abort(self.stage)
