"""The pipeline: ``flowlens ingest``, files into the store, exactly once, losing nothing.

:func:`ingest` expands the paths (:mod:`~flowlens.ingest.sources`), takes the store's writer lock
and runs an :class:`Ingester`, which for each source:

1. reads its first bytes, detects its format (:mod:`flowlens.formats`) and finds the lineage and
   checkpoint its content continues (:mod:`~flowlens.ingest.checkpoints`): the lines before it
   are skipped, as already ingested;
2. reads the rest as whole lines into batch buffers (:class:`~flowlens.ingest.sources.LineReader`)
   and queues them for the parser (:class:`~flowlens.ingest.parse.BatchParser`), which parses
   batches with DuckDB on worker threads;
3. has each parsed batch staged, in read order, by the
   :class:`~flowlens.ingest.rows.RowStager`: bad lines quarantined with their reason
   (:mod:`~flowlens.ingest.checks`, :mod:`~flowlens.ingest.accounting`), rows converted
   (:mod:`~flowlens.ingest.traces`, :mod:`~flowlens.ingest.dictionaries`) and handed to the
   commit being staged (:class:`~flowlens.ingest.writer.StagedCommit`);
4. records in its copy of the manifest how far the source was consumed.

Every ROWS_PER_COMMIT rows, and at the end, the staged files and the manifest are committed
atomically (:mod:`flowlens.store.commit`): a run killed at any moment leaves the store as it was
after its last commit, and the next run goes on from there. Accounting, per file: lines read =
rows stored + lines quarantined + lines skipped as already ingested + framing lines ignored.

A live collector (a Goldmane stream, a push receiver) is a pipeline of its own beside this one,
sharing everything from step 2 on: it queues :class:`~flowlens.ingest.parse.LineBlock` s of the
records it receives (counted in a :class:`~flowlens.ingest.accounting.FileSummary` per stream),
and commits a :class:`~flowlens.ingest.writer.StagedCommit` with a manifest that records its
position, under the same writer lock (:func:`flowlens.store.open_writer`). Only reading files,
and their lineages and checkpoints, belong to file ingest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Iterable
from typing import IO

from flowlens.errors import InputError, UsageError
from flowlens.formats import FORMATS, detect, get_format
from flowlens.formats.base import Format
from flowlens.ingest.accounting import QUARANTINE_RAW_LIMIT, FileSummary, IngestSummary, Quarantine
from flowlens.ingest.checkpoints import ContentHash, advance, find_lineage
from flowlens.ingest.options import IngestOptions, ProgressFn
from flowlens.ingest.parse import MAX_BATCHES_IN_FLIGHT, BatchParser, LineBlock, ParsedBatch
from flowlens.ingest.rows import RowStager
from flowlens.ingest.sources import (
    HEAD_BYTES,
    Buffers,
    LineReader,
    LineSplitter,
    Source,
    document_items,
    expand_sources,
    is_document,
    read_blocks,
)
from flowlens.ingest.writer import StagedCommit
from flowlens.store import Store, StoreWriter, new_ingest_id, open_writer
from flowlens.store.summaries import backfill as backfill_summaries

ROWS_PER_COMMIT = 4_000_000


class Ingester:
    """One ingest run over a store. Use :func:`ingest` unless you need the pieces."""

    def __init__(
        self,
        writer: StoreWriter,
        options: IngestOptions,
        ingest_id: str,
        progress: ProgressFn | None = None,
    ) -> None:
        self.writer = writer
        self.options = options
        self.ingest_id = ingest_id
        self.progress = progress
        self.parser = BatchParser(options, self._stage)
        self.con = self.parser.con
        self.quarantine = Quarantine(ingest_id, strict=options.strict)
        self.rows = RowStager(ingest_id, options.max_line_bytes, self.quarantine)
        self.manifest = json.loads(json.dumps(writer.manifest))
        self._seq = 0
        self._open_commit()
        self.bytes_done = 0
        self._buffers = Buffers.for_batches(self.parser.batch_bytes, keep=MAX_BATCHES_IN_FLIGHT + 2)
        self._splitter = LineSplitter()

    def _open_commit(self) -> None:
        self.staged = StagedCommit(self.writer, f"{self.ingest_id}-{self._seq:03d}", self.quarantine)

    def _stage(self, parsed: ParsedBatch) -> None:
        """(On a parser's worker, in read order.) Commits wait for every batch in flight, so the
        commit being staged is the one these lines belong to."""
        self.rows.stage(parsed, self.staged)

    # --- one source ---------------------------------------------------------------------

    def ingest_source(
        self, path: str, stdin: IO[bytes] | None, summary: IngestSummary, fmt_name: str | None = None
    ) -> FileSummary:
        fs = FileSummary(path=path)
        summary.files.append(fs)
        source = Source(path, stdin)
        problems: list[str] = []
        with source.open() as stream:
            head = b""
            for block in read_blocks(stream, problems):
                head += block[: HEAD_BYTES - len(head)]
                if len(head) >= HEAD_BYTES:
                    break
        if not head:
            if problems:
                # Compressed data that yields not one byte: keep what the file holds, so that
                # nothing disappears without a trace.
                fs.warnings.extend(problems)
                raw = source.raw_head(QUARANTINE_RAW_LIMIT + 1)
                fmt_of_file = get_format(fmt_name or self.options.format or "enterprise")
                self.quarantine.lines([raw], 1, fmt_of_file.name, fs, problems[0])
            else:
                fs.warnings.append("empty file")
            return fs
        name = fmt_name or self.options.format or detect(head)
        if name is None:
            raise InputError(
                f"{path}: not a Calico flow log flowlens knows (first line: {head.splitlines()[0][:120]!r}); "
                "pass --format enterprise|elasticsearch|goldmane|whisker if it is one"
            )
        fmt = get_format(name)
        fs.format = fmt.name
        lineage, checkpoint = find_lineage(source, head, self.manifest, self.ingest_id)
        start_bytes = checkpoint["bytes"] if checkpoint else 0
        start_lines = checkpoint["lines"] if checkpoint else 0
        fs.skipped = start_lines
        fs.lines_read = start_lines
        hasher = ContentHash()
        consumed = 0
        line_no = start_lines
        with source.open() as stream, contextlib.closing(hasher):
            if is_document(head, fmt.name):
                data = b"".join(read_blocks(stream, fs.warnings))
                fs.bytes_read = len(data)
                self.bytes_done += len(data)
                hasher.update(data)
                consumed = len(data)
                if start_bytes != len(data):
                    fs.skipped = fs.lines_read = 0  # a changed document is read whole again
                    line_no = self._process(document_items(data, fs), 0, fmt, fs)
            else:
                consumed, line_no = self._stream(stream, source, fmt, fs, hasher, start_bytes, start_lines)
        advance(
            self.manifest,
            lineage,
            start_bytes=start_bytes,
            consumed=consumed,
            lines=line_no,
            digest=hasher.hexdigest,
            path=path,
            fmt=fmt.name,
            ingest_id=self.ingest_id,
        )
        return fs

    def _stream(
        self,
        stream: IO[bytes],
        source: Source,
        fmt: Format,
        fs: FileSummary,
        hasher: ContentHash,
        start_bytes: int,
        start_lines: int,
    ) -> tuple[int, int]:
        """Read a line-oriented source from its checkpoint on; return (bytes consumed, lines)."""
        line_no = start_lines
        reader = LineReader(
            stream,
            fs.warnings,
            self._buffers,
            batch_bytes=self.parser.batch_bytes,
            skip=start_bytes,  # already ingested: read and hashed only
            hash_update=hasher.update,
        )
        bytes_before = self.bytes_done
        for chunk in reader:
            if chunk is None:  # the buffer is full: a batch never spans two buffers
                self.parser.flush(wait=False)
                continue
            line_no += self._process(chunk, line_no, fmt, fs)
            self.bytes_done = bytes_before + reader.bytes_read
            if self.progress:
                self.progress(self.bytes_done, self.rows.rows_done)
        fs.bytes_read += reader.bytes_read
        self.bytes_done = bytes_before + reader.bytes_read
        consumed = reader.consumed
        carry = reader.carry
        if carry:
            if any("damaged" in w for w in fs.warnings):
                line_no += self.quarantine.lines(
                    [carry], line_no + 1, fmt.name, fs, "truncated: the compressed data ends inside this line"
                )
            elif source.complete:
                line_no += self._process(carry + b"\n", line_no, fmt, fs)
            else:
                fs.pending_bytes = len(carry)
                fs.warnings.append(f"{len(carry)} bytes of an unfinished last line wait for the next run")
                return consumed, line_no
            hasher.update(carry)
            consumed += len(carry)
        return consumed, line_no

    def _process(self, chunk: bytes | memoryview, first_line: int, fmt: Format, fs: FileSummary) -> int:
        """Queue ``chunk`` (whole lines, each ending in a newline) for the parser; return how
        many lines it had."""
        lines = self._splitter.split(chunk)
        count = len(lines)
        if count == 0:
            return 0
        fs.lines_read += count
        self.parser.queue(LineBlock(lines, first_line, fmt, fs), len(chunk))
        return count

    # --- commits ------------------------------------------------------------------------

    def maybe_commit(self, summary: IngestSummary) -> None:
        if not self.options.strict and self.staged.rows >= ROWS_PER_COMMIT:
            self.commit(summary, final=False)

    def commit(self, summary: IngestSummary, *, final: bool) -> None:
        """Make everything staged so far visible, with the manifest that describes it."""
        self.parser.flush()
        summary.partitions |= self.staged.close()
        if final:
            entry = {k: v for k, v in summary.as_dict().items() if k != "per_file"}
            entry["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.manifest["ingests"] = [*self.manifest.get("ingests", []), entry][-500:]
        self.staged.commit(self.manifest)
        if not final:
            self._seq += 1
            self._open_commit()

    def abort(self) -> None:
        self.parser.abandon()  # batches in flight finish before their files are removed
        self.staged.abort()

    def close(self) -> None:
        self.parser.close()


def ingest(
    store: Store,
    paths: Iterable[str | tuple[str, str | None]],
    options: IngestOptions | None = None,
    *,
    stdin: IO[bytes] | None = None,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
    lock_wait: float = 0.0,
) -> IngestSummary:
    """Ingest ``paths`` (files, directories, globs, ``-``; or ``(path, format)`` pairs) into ``store``
    and return the summary. Raises StrictModeError (nothing written) in strict mode on a bad line.
    ``lock_wait``: seconds to wait while another writer (a live collector) holds the store."""

    options = options or IngestOptions()
    if options.format is not None and options.format not in FORMATS:
        raise UsageError(f"unknown format {options.format!r}; choose one of: {', '.join(FORMATS)}")
    if options.max_line_bytes < 1024:
        raise UsageError("--max-line-bytes must be at least 1024")
    files, passed = expand_sources(paths)
    if not files:
        raise InputError(
            "no flow-log files to ingest" + (f" (passed over: {', '.join(passed)})" if passed else "")
        )
    started = time.perf_counter()
    ingest_id = new_ingest_id(now or dt.datetime.now(dt.UTC))
    summary = IngestSummary(ingest_id=ingest_id, store=str(store.root), passed_over=passed)
    with open_writer(store, wait=lock_wait) as writer:
        summary.recovered = writer.recovered
        run = Ingester(writer, options, ingest_id, progress)
        try:
            for path, fmt_name in files:
                run.ingest_source(path, stdin, summary, fmt_name)
                run.maybe_commit(summary)
            summary.seconds = time.perf_counter() - started
            run.commit(summary, final=True)
            # A store written before summaries existed gets them now (see flowlens.store.summaries).
            older = backfill_summaries(writer, run.con)
            if older:
                summary.recovered.append(f"summarised {older} older flows file(s) for faster queries")
        except BaseException:
            run.abort()
            raise
        finally:
            run.close()
    summary.seconds = time.perf_counter() - started
    return summary
