"""The writer: a commit's flow rows into Parquet files, one per day, on threads of their own.

:class:`FileWriter` buffers rows per date partition and writes them into one staged Parquet file
per day (``flows/date=YYYY-MM-DD/<commit>.parquet``), with the hourly summary of each file
beside it (:mod:`flowlens.store.summaries`). Allowed and denied rows go to separate row groups,
so that a query about denied traffic skips the far more numerous allowed rows by their
statistics. Writing runs on worker threads (pyarrow releases the GIL while it encodes), so that
the next batch is parsed while this one is compressed and written; memory stays bounded.

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
import shutil
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


class FileWriter:
    """Buffers rows per date partition and writes them into one staged Parquet file per date.

    Allowed and denied rows go to separate row groups, so that a query about denied traffic
    skips the (far more numerous) allowed rows by their statistics; a day's few rows (fewer than
    MIXED_ROWS written at once) share one row group. Writing happens on a worker
    thread (pyarrow releases the GIL while it encodes), so that the next batch is parsed while
    this one is compressed and written."""

    def __init__(self, stage: Path, commit_id: str) -> None:
        self.stage = stage
        self.commit_id = commit_id
        self._buffers: dict[tuple[str, str], list[pa.Table]] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        # The hourly summary of what each file holds (see flowlens.store.summaries): each batch is
        # summarised once, on a thread of its own, and the rows of each day are streamed into
        # that day's summary file. A group may get a row per batch; readers sum the rows, so
        # nothing is merged in memory and memory stays flat.
        self._summary_writers: dict[str, tuple[pq.ParquetWriter, Path]] = {}
        # Writes queue up while the next batch is parsed; at most MAX_ROWS_QUEUED rows wait,
        # which bounds memory. One write runs at a time while batches are parsed (a second would
        # only take a core from the parsing); once the input ends, two files are written at once
        # (the writes still queued are mostly of other days than each other). Each file's writes
        # stay in order. Summaries have their own thread, so that neither waits for the other.
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._writing = threading.Semaphore(1)
        self._last_write: dict[str, Future[None]] = {}  # per day, its latest write
        self._summary_pool = ThreadPoolExecutor(max_workers=1)
        self._queued: deque[tuple[Future[None], int]] = deque()
        self._summarising: Future[None] | None = None
        self.rows = 0

    def add(self, table: pa.Table, keys: np.ndarray, hits: dict[str, pa.Array]) -> None:
        """Buffer the rows of ``table`` (WRITE_SCHEMA) by day and verdict (``keys``: their
        :func:`_write_keys`; a table in :func:`write_order` is cut into slices without a copy)
        and write out what need not wait. ``hits``: the rows' deciding hits for the summary (the
        summary cannot pick them out of the encoded traces)."""
        if table.num_rows == 0:
            return
        touched = set()  # days
        for group, part in _split(table, keys):
            key = (_iso_day(group // 2), "deny" if group % 2 else "other")
            touched.add(key[0])
            self._buffers.setdefault(key, []).append(part)
            self._counts[key] = self._counts.get(key, 0) + part.num_rows
            if self._counts[key] >= ROWS_PER_ROW_GROUP:
                self._flush(key)
        self.rows += table.num_rows
        self._wait_summary()  # one summary in flight: bounded memory
        self._summarising = self._summary_pool.submit(self._summarise, table, hits)
        # A day this batch did not touch is most likely over (Felix writes in time order): write
        # it now, so that writing overlaps with parsing instead of piling up until the end.
        for key in [k for k in self._buffers if k[0] not in touched]:
            self._flush(key)
        # Input spread over many days must not pile up in memory: past one row group's worth in
        # all buffers together, write out the fullest.
        while sum(self._counts.values()) >= ROWS_PER_ROW_GROUP:
            self._flush(max(self._counts, key=lambda k: self._counts[k]))

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
        if not parts:
            return
        rows = sum(part.num_rows for part in parts)
        write = self._pool.submit(self._write, day, pa.concat_tables(parts), self._last_write.get(day))
        self._last_write[day] = write
        self._queued.append((write, rows))
        self._wait(MAX_ROWS_QUEUED)

    def _write(self, day: str, table: pa.Table, after: Future[None] | None) -> None:
        """Write ``table`` into the day's file once ``after``, the day's write before, is done. That
        one was queued first, so it is already running or done (or waiting for its own), and no
        write holds a turn to write while it waits: the queue cannot lock up."""
        if after is not None:
            after.result()
        with self._writing:
            self._write_now(day, table)

    def _write_now(self, day: str, table: pa.Table) -> None:
        writer = self._writers.get(day)
        if writer is None:
            path = self.stage / "flows" / f"date={day}" / f"{self.commit_id}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = flows_parquet_writer(path, WRITE_SCHEMA)
            self._writers[day] = writer
        writer.write_table(table, row_group_size=ROWS_PER_ROW_GROUP)

    def _summarise(self, table: pa.Table, hits: dict[str, pa.Array]) -> None:
        summary = summarise_table(table, hits)
        for number, part in _split(summary, _day_numbers(summary["hour"])):
            day = _iso_day(number)
            if day not in self._summary_writers:
                # Named *.part until the flows file is complete: its final name carries that size.
                path = self.stage / "summary-parts" / f"{day}.part"
                path.parent.mkdir(parents=True, exist_ok=True)
                self._summary_writers[day] = (
                    pq.ParquetWriter(path, summary.schema, compression="zstd"),
                    path,
                )
            self._summary_writers[day][0].write_table(part)

    def _wait_summary(self) -> None:
        if self._summarising is not None:
            summarising, self._summarising = self._summarising, None
            summarising.result()  # re-raises a failed summary here

    def _wait(self, limit: int = 0) -> None:
        """Finish queued writes until at most ``limit`` rows wait (0: all of them)."""
        while self._queued and (self._queued[0][0].done() or sum(n for _, n in self._queued) > limit):
            self._queued.popleft()[0].result()  # re-raises a failed write here

    def discard(self) -> None:
        """Stop after a failure: wait for the threads, close the files, keep nothing."""
        self._buffers.clear()
        self._counts.clear()
        for pool in (self._pool, self._summary_pool):
            pool.shutdown(wait=True, cancel_futures=True)
        for writer in [*self._writers.values(), *(w for w, _ in self._summary_writers.values())]:
            with contextlib.suppress(Exception):
                writer.close()
        self._writers.clear()
        self._summary_writers.clear()

    def close(self) -> set[str]:
        self._writing.release()  # the input has ended: two writes at once
        for key in sorted(self._buffers):
            self._flush(key)
        self._wait()
        self._wait_summary()
        self._pool.shutdown(wait=True)
        self._summary_pool.shutdown(wait=True)
        for writer in self._writers.values():
            writer.close()
        days = set(self._writers)
        self._writers.clear()
        for day, (summary_writer, path) in sorted(self._summary_writers.items()):
            summary_writer.close()
            flows_file = self.stage / "flows" / f"date={day}" / f"{self.commit_id}.parquet"
            if flows_file.is_file():
                target = summary_path(self.stage, flows_file)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        self._summary_writers.clear()
        shutil.rmtree(self.stage / "summary-parts", ignore_errors=True)
        return days


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
