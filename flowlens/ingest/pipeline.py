"""The pipeline: ``flowlens ingest``, files into the store, exactly once, losing nothing.

:func:`ingest` expands the paths (:mod:`~flowlens.ingest.sources`), takes the store's writer lock
and runs an :class:`Ingester`, which for each source:

1. reads its first bytes, detects its format (:mod:`flowlens.formats`) and finds the lineage and
   checkpoint its content continues (:mod:`~flowlens.ingest.checkpoints`): the lines before it
   are skipped, as already ingested;
2. reads the rest as whole lines into batch buffers (:class:`~flowlens.ingest.lines.LineReader`)
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
import itertools
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from flowlens.errors import InputError
from flowlens.formats import detect, get_format, other_encoding
from flowlens.formats.base import Format
from flowlens.ingest.accounting import FileSummary, IngestSummary, Quarantine
from flowlens.ingest.checkpoints import (
    ContentHash,
    advance,
    branch,
    early_keys,
    find_lineage,
    needs_check,
)
from flowlens.ingest.dedupe import HeldRows
from flowlens.ingest.documents import Incomplete, document_items, is_document
from flowlens.ingest.lines import LineReader, LineSplitter, LongLine
from flowlens.ingest.options import IngestOptions, ProgressFn
from flowlens.ingest.pages import PAGED, Paged, is_paged, read_pages
from flowlens.ingest.parse import MAX_BATCHES_IN_FLIGHT, BatchParser, LineBlock, ParsedBatch
from flowlens.ingest.rows import RowStager
from flowlens.ingest.runs import check_request, holds_elasticsearch, new_run, record_run, store_write_error
from flowlens.ingest.sources import (
    HEAD_BYTES,
    Buffers,
    ReadFailure,
    Source,
    Unreadable,
    read_blocks,
)
from flowlens.ingest.writer import StagedCommit
from flowlens.store import Span, Store, StoreWriter, open_writer
from flowlens.store.compact import maintain
from flowlens.store.manifest import merge_spans
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
        self._spans: list[Span] = []  # the source content read into the commit being staged
        self._seq = 0
        self._open_commit()
        self.bytes_done = 0
        self._buffers = Buffers.for_batches(self.parser.batch_bytes, keep=MAX_BATCHES_IN_FLIGHT + 2)
        self._splitter = LineSplitter()
        #: (--strict) the files this run staged before a checked source, which its check reads too
        self._staged_files: list[Path] = []
        #: flows files of this run staged outside its commits (a Spark run's), which a check reads too
        self.uncommitted: list[Path] = []
        self._held: HeldRows | None = None  # the rows of a source under check (flowlens.ingest.dedupe)
        self._summary: IngestSummary | None = None

    def _open_commit(self) -> None:
        self.staged = StagedCommit(self.writer, f"{self.ingest_id}-{self._seq:03d}", self.quarantine)

    def _stage(self, parsed: ParsedBatch) -> None:
        """(On a parser's worker, in read order.) Commits wait for every batch in flight, so the
        commit being staged is the one these lines belong to."""
        self.rows.stage(parsed, self.staged if self._held is None else self._held)

    # --- one source ---------------------------------------------------------------------

    def ingest_source(
        self,
        path: str,
        stdin: IO[bytes] | None,
        summary: IngestSummary,
        fmt_name: str | None = None,
        *,
        content: IO[bytes] | None = None,
    ) -> FileSummary:
        """Read one source into the commit being staged. A problem of this file alone (it cannot
        be opened, its format is not recognised, a read error) is recorded in its summary and the
        run goes on with the others; with ``--strict`` it stops the run. ``content``: the bytes
        of ``path`` when another reader has them (:class:`~flowlens.ingest.sources.Source`)."""
        fs = FileSummary(path=path)
        summary.files.append(fs)
        self._summary = summary
        try:
            source = Source(path, stdin, max_expansion=self.options.max_expansion, content=content)
            with contextlib.closing(source):
                self._read_source(source, fs, fmt_name)
        except Unreadable as exc:  # (also a file that vanished or became unreadable between two reads)
            self._fail(fs, exc.problem)
        return fs

    def _fail(self, fs: FileSummary, problem: str) -> None:
        if self.options.strict:
            raise InputError(f"{fs.path}: {problem} (--strict: nothing was written)")
        fs.error = problem

    def _read_source(self, source: Source, fs: FileSummary, fmt_name: str | None) -> None:
        failures: list[ReadFailure] = []
        document: bytes | Paged | None = None
        with source.open() as stream:
            blocks = read_blocks(stream, failures)
            head, first = read_head(blocks, self.options.max_line_bytes)
            fmt = self._format(head, failures, fs, fmt_name)
            if fmt is None:
                return
            if is_document(head, fmt.name):
                # A whole document is read once, here: its lineage is verified, and its records
                # parsed, from the bytes in memory (a gzipped export is decompressed once); past
                # the limit, pages one after another are read a page at a time.
                document = self._whole_document(first, blocks, fs, failures, paged=is_paged(head))
                if document is None:
                    return
        whole = document if isinstance(document, bytes) else None
        lineage, checkpoint = find_lineage(source, head, self.manifest, self.ingest_id, content=whole)
        start_bytes = checkpoint["bytes"] if checkpoint else 0
        start_lines = checkpoint["lines"] if checkpoint else 0
        # A copy of stored lines (line-based sources only: documents of one kind share their first
        # line, "{"); or Elasticsearch hits, lines or a whole response, once the store holds some:
        # two exports of overlapping time windows share documents, which their ids tell.
        copy = document is None and needs_check(
            self.manifest, head, start_bytes, resumed=checkpoint is not None
        )
        by_id = fmt.name == "elasticsearch" and self._holds_elasticsearch()
        check = copy or by_id
        if document is None and not lineage["checkpoints"]:
            lineage["early"] = early_keys(head)  # a new lineage: what tells a copy of it (see early_keys)
        fs.skipped = start_lines
        fs.lines_read = start_lines
        hasher = ContentHash()
        resumed_from = checkpoint
        if check:
            self._hold()
        try:
            with contextlib.closing(hasher):
                if whole is not None:
                    consumed, line_no = self._document(whole, fmt, fs, hasher, start_bytes, start_lines)
                elif document is not None:
                    consumed, line_no = self._pages(source, fmt, fs, hasher, start_bytes, start_lines)
                else:
                    with source.open() as stream:
                        consumed, line_no = self._stream(
                            stream, source, fmt, fs, hasher, start_bytes, start_lines
                        )
            if check:
                self._stage_held(fs, by_id=by_id)
        finally:
            if self._held is not None:
                self._held.close()
                self.writer.abort(self._held.path.parent)
            self._held = None
        had_checkpoints = bool(lineage["checkpoints"])
        if copy and consumed > start_bytes:
            # Its content gets a lineage of its own: read again, it resumes at its end, unchecked.
            lineage = branch(self.manifest, head, resumed_from, self.ingest_id)
        advance(
            self.manifest,
            lineage,
            start_bytes=start_bytes,
            consumed=consumed,
            lines=line_no,
            digest=hasher.hexdigest,
            path=fs.path,
            fmt=fmt.name,
            ingest_id=self.ingest_id,
        )
        if consumed > start_bytes or (consumed and not had_checkpoints):
            # What this commit's files hold of the lineage: the store's repair forgets exactly this
            # progress if they are lost (see flowlens.store.repair).
            end = next(cp for cp in lineage["checkpoints"] if cp["bytes"] == consumed)
            self._spans.append(
                Span(lineage["id"], lineage["head"], dict(resumed_from) if resumed_from else None, dict(end))
            )

    def _hold(self) -> None:
        """Hold the rows of the source about to be read (see flowlens.ingest.dedupe): what is
        staged so far is committed first, so that the rows held are compared with everything
        stored before them, this run's included."""
        self.parser.flush()
        if self.staged.rows and self._summary is not None:
            if self.options.strict:
                # --strict writes nothing unless every line is good: no commit before the end.
                # The files staged so far are finished instead, and the check reads them too.
                self._staged_files = self.staged.files.seal()
            else:
                self.commit(self._summary, final=False)
        self._held = HeldRows(self.writer.stage(f"{self.staged.commit_id}-held"))

    def _holds_elasticsearch(self) -> bool:
        """Whether the store, or this run before the source about to be read, holds Elasticsearch
        hits: the hits of another export are then checked one by one."""
        return holds_elasticsearch(self.manifest)

    def _stage_held(self, fs: FileSummary, *, by_id: bool = False) -> None:
        """Stage the rows held for ``fs`` that are not stored yet; count the others as already
        stored (they are lines skipped as already ingested). ``by_id``: Elasticsearch hits, whose
        document ids are compared first (:func:`flowlens.ingest.dedupe.only_new`)."""
        self.parser.flush()
        held = self._held
        if held is None or not held.rows:
            return
        days = held.days()
        stored = [
            p
            for p in [*self.writer.stored_flows(days), *self.uncommitted, *self._staged_files]
            if any(f"date={d}" in p.parts for d in days)
        ]
        pieces, dropped = held.take_new(stored, self.con, by_id=by_id)
        for table, keys, hits in pieces:
            self.staged.add(table, keys, hits)
        fs.rows -= dropped
        fs.skipped += dropped
        fs.already_stored += dropped
        self.rows.rows_done -= dropped

    def _format(
        self, head: bytes, failures: list[ReadFailure], fs: FileSummary, fmt_name: str | None
    ) -> Format | None:
        """The format of a source from its first bytes; None (said in ``fs``) when it has none."""
        if not head:
            if not failures:
                fs.warnings.append("empty file")
            elif failures[0].waits:
                fs.warnings.append(f"{failures[0].describe()}: nothing to read yet, it is read once complete")
            else:
                self._fail(fs, failures[0].describe())
            return None
        encoding = other_encoding(head)
        if encoding is not None:
            self._fail(fs, encoding)
            return None
        name = fmt_name or self.options.format or detect(head)
        if name is None:
            first = head.splitlines()[0][:120] if head.strip() else head[:40]
            self._fail(
                fs,
                f"not a Calico flow log flowlens knows (first line: {first!r}); "
                "pass --format enterprise|elasticsearch|goldmane|whisker if it is one",
            )
            return None
        fmt = get_format(name)
        fs.format = fmt.name
        return fmt

    def _whole_document(
        self,
        first: list[bytes],
        rest: Iterator[bytes],
        fs: FileSummary,
        failures: list[ReadFailure],
        *,
        paged: bool,
    ) -> bytes | Paged | None:
        """The whole of a document source, whose ``first`` blocks are read and ``rest`` are to
        come; None (said in ``fs``) when it is larger than the limit or cannot be read to its end
        (it is read whole or not at all: a document cut short waits). ``paged``: past the limit,
        the document is to be read a page at a time instead (PAGED)."""
        blocks: list[bytes] = []
        size = 0
        limit = self.options.max_document_bytes
        for block in itertools.chain(first, rest):
            size += len(block)
            if size > limit:
                if paged:
                    return PAGED
                fs.bytes_read += size
                self._fail(
                    fs,
                    f"a JSON document larger than {limit:,} bytes, which is read whole; pass "
                    "--max-document-bytes to read it",
                )
                return None
            blocks.append(block)
        fs.bytes_read += size
        self.bytes_done += size
        if failures:
            if failures[0].waits:
                fs.warnings.append(f"{failures[0].describe()}: the document is read once complete")
            else:
                self._fail(fs, failures[0].describe())
            return None
        return b"".join(blocks)

    def _document(
        self,
        data: bytes,
        fmt: Format,
        fs: FileSummary,
        hasher: ContentHash,
        start_bytes: int,
        start_lines: int,
    ) -> tuple[int, int]:
        """Ingest a whole-document source (a JSON response) read into ``data`` from its
        checkpoint on; return (bytes consumed, lines). A checkpoint ends a whole document (or
        page), whose bytes its hash verified: what follows can only be more pages (pages appended
        to an export), read on with the numbering of the records before them."""
        if start_bytes == len(data):
            return start_bytes, start_lines  # the same document again: its lines are skipped
        rest = data[start_bytes:]
        try:
            items = document_items(rest, fs, fmt.name) if rest.strip() else b""
        except Incomplete:
            fs.pending_bytes = len(rest)
            fs.warnings.append("the JSON document ends before it is complete: it is read once complete")
            return start_bytes, start_lines
        hasher.update(data)
        line_no = start_lines + self._process(items, start_lines, fmt, fs)
        return len(data), line_no

    def _pages(
        self,
        source: Source,
        fmt: Format,
        fs: FileSummary,
        hasher: ContentHash,
        start_bytes: int,
        start_lines: int,
    ) -> tuple[int, int]:
        """Read a document of pages one after another a page at a time (see
        :mod:`flowlens.ingest.pages`) from its checkpoint on; return (bytes consumed, lines)."""
        failures: list[ReadFailure] = []
        limit = self.options.max_document_bytes
        before = self.bytes_done - start_bytes

        def progress(consumed: int) -> None:
            if self.progress:
                self.progress(before + consumed, self.rows.rows_done)

        with source.open() as stream:
            blocks = read_blocks(stream, failures)
            read = read_pages(blocks, skip=start_bytes, start_lines=start_lines, hasher=hasher, limit=limit,
                              fmt_name=fmt.name, fs=fs, process=lambda lines, at: self._process(lines, at, fmt, fs),
                              progress=progress)  # fmt: skip
        fs.bytes_read += read.consumed + read.waiting
        self.bytes_done += read.consumed - start_bytes
        fs.pending_bytes = read.waiting
        after = f"after record {read.lines:,}"
        if read.too_large:
            self._fail(fs, f"a page of this JSON document {after} is larger than {limit:,} bytes, "
                       "which are read at once; pass --max-document-bytes to read it")  # fmt: skip
        elif failures and not failures[0].waits:
            self._fail(fs, f"{failures[0].describe()} {after}: the pages before it are read")
        elif failures or read.waiting:
            what = failures[0].describe() if failures else f"the page {after} is not complete"
            fs.warnings.append(
                f"{what}: the pages up to record {read.lines:,} are read, the rest once complete"
            )
        return read.consumed, read.lines

    def _stream(
        self,
        stream: IO[bytes],
        source: Source,
        fmt: Format,
        fs: FileSummary,
        hasher: ContentHash,
        start_bytes: int,
        start_lines: int,
        at_start: bool = True,
    ) -> tuple[int, int]:
        """Read a line-oriented source from its checkpoint on (``at_start``: ``stream`` begins at
        the source's first byte, not inside it); return (bytes consumed, lines).
        Only whole lines are consumed: after a cut or read error, and at the end of a plain file,
        the bytes after the last newline wait (they are neither stored, quarantined nor counted)."""
        line_no = start_lines
        reader = LineReader(
            stream,
            self._buffers,
            batch_bytes=self.parser.batch_bytes,
            skip=start_bytes,  # already ingested: read and hashed only
            hasher=hasher,
            max_line=self.options.max_line_bytes,
            at_start=at_start,
        )
        bytes_before = self.bytes_done
        for item in reader:
            if item is None:  # the buffer is full: a batch never spans two buffers
                self.parser.flush(wait=False)
                continue
            if isinstance(item, LongLine):
                line_no += self._long_line(item, line_no, fmt, fs)
                continue
            line_no += self._process(item, line_no, fmt, fs)
            self.bytes_done = bytes_before + reader.bytes_read
            if self.progress:
                self.progress(self.bytes_done, self.rows.rows_done)
        fs.bytes_read += reader.bytes_read
        self.bytes_done = bytes_before + reader.bytes_read
        failure = reader.failure
        whole = failure is None and source.complete  # the last line is whole without a newline
        waiting = len(reader.carry) + (reader.long_carry.length if reader.long_carry else 0)
        if reader.long_carry is not None and whole:
            line_no += self._long_line(reader.finish_long_carry(), line_no, fmt, fs)
            waiting = 0
        elif reader.carry and whole:
            line_no += self._process(reader.carry + b"\n", line_no, fmt, fs)
            hasher.update(reader.carry)
            waiting = 0
        consumed = reader.consumed + (len(reader.carry) if reader.carry and whole else 0)
        if waiting:
            fs.pending_bytes = waiting
        if failure is None:
            if waiting:
                fs.warnings.append(f"{waiting} bytes of an unfinished last line wait for the next run")
        elif failure.waits:
            fs.warnings.append(
                f"{failure.describe()}: read to the end of line {line_no:,}"
                + (f"; the {waiting:,} bytes after it wait for the complete file" if waiting else "")
            )
        else:
            self._fail(
                fs,
                f"{failure.describe()} after line {line_no:,}: the lines before it are read"
                + (f", the {waiting:,} bytes after it are not" if waiting else ""),
            )
        return consumed, line_no

    def _long_line(self, line: LongLine, line_no: int, fmt: Format, fs: FileSummary) -> int:
        """Quarantine a line past the length limit (read past, never held); 1."""
        if self.options.strict:
            self.parser.flush()  # a bad line before it, still being parsed, is the first one
        return self.quarantine.lines(
            [line.head],
            line_no + 1,
            fmt.name,
            fs,
            f"line too long ({line.length} bytes; the limit is {self.options.max_line_bytes})",
            truncated=len(line.head) < line.length,
        )

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

    def commit(self, summary: IngestSummary, *, final: bool, **extra: str) -> None:
        """Make everything staged so far visible, with the manifest that describes it (``final``:
        and the run's record, with ``extra``)."""
        self.parser.flush()
        summary.partitions |= self.staged.close()
        if final:
            record_run(self.manifest, summary, **extra)
        self.staged.commit(self.manifest, merge_spans(self._spans))
        self._spans = []
        if not final:
            self._seq += 1
            self._open_commit()

    def abort(self) -> None:
        self.parser.abandon()  # batches in flight finish before their files are removed
        self.staged.abort()

    def close(self) -> None:
        self.parser.close()


def read_head(blocks: Iterator[bytes], max_line_bytes: int) -> tuple[bytes, list[bytes]]:
    """The first bytes of a source, which tell its format, and the blocks read for them. A first
    line longer than HEAD_BYTES is read whole (up to the line limit), so that its record can tell it."""
    head = b""
    first: list[bytes] = []
    for block in blocks:
        first.append(block)
        limit = HEAD_BYTES if b"\n" in head else max(HEAD_BYTES, max_line_bytes + 1)
        head += block[: limit - len(head)]
        if len(head) >= HEAD_BYTES and (b"\n" in head or len(head) >= limit):
            break
    return head, first


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
    found = check_request(paths, options)
    started = time.perf_counter()
    summary, clock = new_run(store, found, now)
    committed = False
    try:
        with open_writer(store, wait=lock_wait) as writer:
            summary.recovered = writer.recovered
            run = Ingester(writer, options, summary.ingest_id, progress)
            try:
                for path, fmt_name in found.files:
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
            committed = True
            # Compaction of closed days and retention, each in commits of its own.
            summary.maintenance = maintain(writer, options.lifecycle, clock)
    except OSError as exc:  # (reading a source fails per file: this is writing the store)
        raise store_write_error(exc, store, committed=committed) from None
    summary.seconds = time.perf_counter() - started
    return summary
