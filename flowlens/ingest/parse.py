"""The parse step: a batch of lines into Arrow columns with one DuckDB query, on worker threads.

Nothing on this path looks at a line in Python. A batch of lines (an Arrow array that points into
the read buffer, see :mod:`flowlens.ingest.sources`) is registered with DuckDB, which decodes
each line, parses its JSON once (``json_transform``) and computes every canonical column in the
same query (:func:`select_sql`; the columns' SQL comes from the input format,
:mod:`flowlens.formats`). The query also marks lines *suspect* by a cheap test, and the Arrow
checks of :mod:`flowlens.ingest.checks` add theirs. Label sets and policy traces come back as
JSON text (columns named ``json__<name>``), converted once per distinct text afterwards.

:class:`BatchParser` gathers :class:`LineBlock` s (lines of one format, from any number of
sources) into batches of at least :data:`BATCH_BYTES`, so that many small rotated files cost no
more than one large one, parses up to :data:`MAX_BATCHES_IN_FLIGHT` batches at once, and hands
each :class:`ParsedBatch` on, in the order the batches were read, to the stage that makes rows
of it (:class:`flowlens.ingest.rows.RowStager`). Anything that produces lines uses it the same
way: the files of ``flowlens ingest`` today, the bodies a push receiver is sent next.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowlens.formats.base import Format
from flowlens.ingest.accounting import FileSummary
from flowlens.ingest.checks import check_by_arrow, null_invalid_utf8
from flowlens.ingest.memory import IngestMemory
from flowlens.ingest.options import IngestOptions
from flowlens.schema import ARROW_SCHEMA
from flowlens.store import configure_session, duckdb_connection

if TYPE_CHECKING:
    import duckdb

BATCH_BYTES = 64 * 1024 * 1024
# Batches parsed at once while the next one is read, each query on its own share of the DuckDB
# threads: two single-threaded queries keep two cores busier than one query on two threads (the
# rows are still staged in input order). 1 M records: 15.2-15.5 s instead of 17.4-17.8 s.
MAX_BATCHES_IN_FLIGHT = 2
# A batch is also handed over at this many lines: a batch of short lines (a small gzip of blank
# lines, a response of empty items) would otherwise hold tens of millions of lines, and the
# arrays kept per line (numbers, codes, the quarantine's rows) a GB. A batch of Felix records
# (some 1 KB each) holds about 64 k lines: never cut by this.
BATCH_LINES = 1 << 20
JSON_PREFIX = "json__"  # result columns of Format.json_columns
# A batch whose lines are this short on average holds no real records (a Felix record is some
# 1 KB): it is parsed one distinct line at a time. A gzip of blank lines or a response of empty
# items holds millions of copies of one line, and the query costs some µs per line whatever it
# holds (10 M blank lines: minutes).
SHORT_LINES = 64


class LineBlock(NamedTuple):
    """Lines of one source to parse: each ends in a newline and line ``first_line + 1`` is the first."""

    lines: pa.Array  # LargeBinary
    first_line: int
    fmt: Format
    file: FileSummary  # where they are counted


@dataclass(frozen=True)
class ParsedBatch:
    """One batch after its query: row ``i`` of ``out`` is line ``line_nos[i]`` of
    ``files[file_idx[i]]``, its text ``lines[i]`` (unless ``records`` says otherwise);
    ``suspect`` marks the rows of ``out`` to diagnose, ``ignored`` those of framing lines that
    carry no record."""

    fmt: Format
    files: list[FileSummary]  # one per LineBlock of the batch (a source read in blocks: repeated)
    lines: pa.Array
    line_nos: np.ndarray
    file_idx: np.ndarray
    out: pa.Table
    suspect: np.ndarray
    ignored: np.ndarray
    #: for each line, its row of ``out`` and ``suspect`` (None: row ``i`` is line ``i``); set when
    #: a batch of short repeated lines was parsed one distinct line at a time (SHORT_LINES)
    records: np.ndarray | None = None
    #: the text of each row of ``out`` when ``records`` is set
    record_lines: pa.Array | None = None


def select_sql(fmt: Format, max_line: int, *, guarded: bool = True) -> str:
    """The query that parses a batch of lines. ``guarded``: a line that is not UTF-8 or not JSON
    becomes NULL instead of failing the query; the unguarded query is cheaper and is tried first,
    as almost every batch is valid, and its result is the same when it succeeds. The guarded query
    tests the JSON with ``json_valid`` before parsing it: ``try`` alone costs some 70 µs per
    failing line (a batch of blank lines took minutes); it stays as a last guard. Lines that are
    not UTF-8 are nulled before it (:func:`flowlens.ingest.checks.null_invalid_utf8`)."""
    guard = "try" if guarded else ""
    valid = "json_valid(rec) AND " if guarded else ""
    names = [c.name for c in ARROW_SCHEMA if c.name in fmt.columns]
    cols = ",\n  ".join(
        [f"{fmt.columns[n]} AS {n}" for n in names]
        + [f"{expr} AS {JSON_PREFIX}{n}" for n, expr in fmt.json_columns.items()]
    )
    structure = fmt.structure_json.replace("'", "''")
    # Framing that carries no record (an event stream's blank separators and event:, id: lines)
    # is told apart here, so that it never needs a look of its own.
    framing = " OR ".join(
        ["trim(t, ' \t\r\n') = ''"] + [f"starts_with(ltrim(t, ' \t'), '{p}')" for p in fmt.ignorable]
    )
    # (a CASE, so that the framing tests run on the lines without a record only: a conjunction
    # evaluates every operand on every line, and each ltrim copies the line)
    ignored = (
        f"CASE WHEN rec IS NULL AND n <= {int(max_line)} THEN COALESCE({framing}, false) ELSE false END"
        if fmt.ignorable
        else "false"
    )
    return f"""
WITH d AS (
  SELECT line_no, {guard}(decode(line)) AS t, octet_length(line) - 1 AS n FROM raw_lines
), r AS (
  SELECT line_no, n, t, {fmt.record_sql} AS rec FROM d
), p AS (
  SELECT line_no, n, t, rec, CASE WHEN {valid}n <= {int(max_line)} THEN {guard}(json_transform(rec, '{structure}')) END AS j FROM r
), q AS (
  SELECT *, {ignored} AS ignored FROM p
)
SELECT line_no, ignored, (NOT ignored AND (n > {int(max_line)} OR rec IS NULL OR {fmt.suspect})) AS suspect,
  {cols}
FROM q
"""


def distinct_lines(raw: pa.Table) -> tuple[pa.Table, pa.Array | None]:
    """For a batch of short lines (see SHORT_LINES) that repeat: its distinct lines to parse, and
    for each line the row of its distinct line (None: parse the batch as it is)."""
    lines = raw["line"]
    if raw.num_rows < 1024 or pc.sum(pc.binary_length(lines)).as_py() >= SHORT_LINES * raw.num_rows:
        return raw, None
    encoded = pc.dictionary_encode(lines.combine_chunks())
    if len(encoded.dictionary) > raw.num_rows // 4:
        return raw, None
    distinct = pa.table(
        {"line": encoded.dictionary, "line_no": pa.array(np.arange(len(encoded.dictionary), dtype=np.int64))}
    )
    return distinct, encoded.indices


def join_lines(arrays: list[pa.Array]) -> pa.Array:
    """One array of the lines of several; without copying the text when each array's text
    follows the previous one's in memory (the blocks of one read buffer)."""
    if len(arrays) == 1:
        return arrays[0]
    offs = [np.frombuffer(a.buffers()[1], dtype=np.int64)[a.offset : a.offset + len(a) + 1] for a in arrays]
    starts = [a.buffers()[2].address + int(o[0]) for a, o in zip(arrays, offs, strict=True)]
    sizes = [int(o[-1] - o[0]) for o in offs]
    if any(starts[i] + sizes[i] != starts[i + 1] for i in range(len(arrays) - 1)):
        return pa.concat_arrays(arrays)
    offsets = [offs[0] - offs[0][0]]
    shift = sizes[0]
    for o, size in zip(offs[1:], sizes[1:], strict=True):
        offsets.append(o[1:] - o[0] + shift)
        shift += size
    text = pa.foreign_buffer(starts[0], shift, base=arrays)  # keeps the arrays' memory alive
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        sum(len(a) for a in arrays),
        [None, pa.py_buffer(np.concatenate(offsets)), text],
    )


class BatchParser:
    """Parses batches of lines on worker threads and hands each to ``stage`` in read order.

    Workers parse batches (DuckDB releases the GIL) while the caller reads and splits the next
    one; at most MAX_BATCHES_IN_FLIGHT are in flight, which bounds memory. Batches are parsed
    side by side but staged one after the other, in the order they were read (a turnstile of
    sequence numbers): ``stage`` runs on a worker thread, one batch at a time.
    """

    def __init__(self, options: IngestOptions, stage: Callable[[ParsedBatch], None]) -> None:
        self.options = options
        self._stage = stage
        self.batch_bytes = BATCH_BYTES
        # DuckDB's threads (by default as many as it finds cores for this process) shared by the
        # batches parsed at once
        self.con: duckdb.DuckDBPyConnection = duckdb_connection(options.threads)
        setting = self.con.execute("SELECT current_setting('threads')").fetchone()
        threads = int(setting[0]) if setting else 1
        self.parallel = max(1, min(MAX_BATCHES_IN_FLIGHT, threads))
        self.con.execute(f"SET threads = {max(1, threads // self.parallel)}")  # an int: no values
        self._sql_cache: dict[str, tuple[str, ...]] = {}
        self._batch: list[LineBlock] = []
        self._batch_bytes = 0
        self._batch_lines = 0
        self._workers = ThreadPoolExecutor(max_workers=self.parallel)
        self._inflight: list[Future[None]] = []
        self._turn = threading.Condition()
        self._next_seq = 0
        self._staging_seq = 0
        # (until close: Arrow allocates from the pool that suits ingest, see flowlens.ingest.memory)
        self._memory = IngestMemory()

    def queue(self, block: LineBlock, nbytes: int) -> None:
        """Add ``block`` (``nbytes`` of lines) to the batch; hand the batch to a worker once it
        holds BATCH_BYTES or BATCH_LINES, or before lines of another format join it. A block of
        more than BATCH_LINES lines is queued in slices (zero-copy)."""
        count = len(block.lines)
        if count > BATCH_LINES:
            for start in range(0, count, BATCH_LINES):
                piece = block.lines.slice(start, BATCH_LINES)
                self.queue(
                    block._replace(lines=piece, first_line=block.first_line + start),
                    nbytes * len(piece) // count,
                )
            return
        if self._batch and self._batch[0].fmt is not block.fmt:
            self.flush(wait=False)
        self._batch.append(block)
        self._batch_bytes += nbytes
        self._batch_lines += count
        if self._batch_bytes >= self.batch_bytes or self._batch_lines >= BATCH_LINES:
            self.flush(wait=False)

    def flush(self, *, wait: bool = True) -> None:
        """Hand the queued lines to a worker; with ``wait``, also finish every batch in flight."""
        if self._batch:
            batch, self._batch, self._batch_bytes, self._batch_lines = self._batch, [], 0, 0
            while len(self._inflight) >= self.parallel:
                self._inflight.pop(0).result()
            self._inflight.append(self._workers.submit(self._run, batch, self._next_seq))
            self._next_seq += 1
        if wait:
            try:
                for future in self._inflight:
                    future.result()
            finally:
                # even after a failure: nothing may still run when the caller cleans up
                for future in self._inflight:
                    future.exception()
                self._inflight = []

    def abandon(self) -> None:
        """Drop the lines not handed over yet and let the batches in flight finish, ignoring
        their errors (the run is being aborted)."""
        self._batch = []
        with contextlib.suppress(Exception):
            self.flush()

    def close(self) -> None:
        try:
            self._workers.shutdown(wait=True)
            self.con.close()
        finally:
            self._memory.close()

    def _run(self, batch: list[LineBlock], seq: int) -> None:
        """Parse one batch with one DuckDB query (on this thread's own cursor), then stage it
        when every batch read before it has been staged."""
        try:
            parsed = self._parse(batch)
            with self._turn:
                self._turn.wait_for(lambda: self._staging_seq == seq)
            # Only this batch stages now; staging touches shared state (hit cache, row writer,
            # counters, quarantine).
            self._stage(parsed)
        finally:
            with self._turn:
                self._turn.wait_for(lambda: self._staging_seq == seq)
                self._staging_seq += 1
                self._turn.notify_all()

    def _parse(self, batch: list[LineBlock]) -> ParsedBatch:
        fmt = batch[0].fmt
        lines = join_lines([block.lines for block in batch])
        line_nos = np.concatenate(
            [np.arange(first + 1, first + len(arr) + 1, dtype=np.int64) for arr, first, _, _ in batch]
        )
        file_idx = np.repeat(np.arange(len(batch), dtype=np.int64), [len(block.lines) for block in batch])
        raw = pa.Table.from_arrays([lines, pa.array(line_nos)], names=["line", "line_no"])
        import duckdb  # (loaded with the connection: this only names its error class)

        queries = self._sql_cache.get(fmt.name)
        if queries is None:
            queries = self._sql_cache[fmt.name] = tuple(
                select_sql(fmt, self.options.max_line_bytes, guarded=guarded) for guarded in (False, True)
            )
        params = {"cluster_override": self.options.cluster, "cluster_default": self.options.default_cluster}
        with self._turn:  # one cursor made at a time from the shared connection
            cursor = configure_session(self.con.cursor())
        parsed, back = distinct_lines(raw)
        try:
            cursor.register("raw_lines", pa.Table.from_batches(parsed.to_batches(max_chunksize=4096)))
            try:
                out = cursor.sql(queries[0], params=params).to_arrow_table()
            except duckdb.Error:  # a line that is not UTF-8 or not JSON: the guarded query
                cursor.register("raw_lines", null_invalid_utf8(parsed))
                out = cursor.sql(queries[1], params=params).to_arrow_table()
        finally:
            cursor.close()
        checked, out = check_by_arrow(fmt, out)
        # NULL (a NULL compared with a set) is not suspect
        ignored = pc.fill_null(out["ignored"], False).to_numpy(zero_copy_only=False)
        suspect = (pc.fill_null(out["suspect"], False).to_numpy(zero_copy_only=False) | checked) & ~ignored
        return ParsedBatch(
            fmt=fmt,
            files=[block.file for block in batch],
            lines=lines,
            line_nos=line_nos,
            file_idx=file_idx,
            out=out.drop_columns(["ignored"]),
            suspect=suspect,
            ignored=ignored,
            records=None if back is None else back.to_numpy(zero_copy_only=False),
            record_lines=None if back is None else parsed["line"].combine_chunks(),
        )
