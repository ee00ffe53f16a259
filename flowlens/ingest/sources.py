"""Sources: the bytes of one input as whole lines, without a copy, and where reading must stop.

* :class:`Source` opens one input: a file (plain or gzip, also several members) or standard
  input (spooled to a temporary file past 64 MiB, so that it can be read twice in bounded
  memory).
* :class:`GzipStream` decompresses with bounded output per call and hands out every byte before
  damage or a cut; what stopped it is a :class:`ReadFailure`: the compressed data ends early
  (``truncated``: a rotation still being written, an interrupted copy), is damaged, expands
  beyond the limit, or the disk failed to read (``read error``).
* :class:`~flowlens.ingest.lines.LineReader` reads a line-oriented source from a byte offset on (the bytes before it
  were ingested before: they are read and hashed only) into large batch buffers
  (:class:`Buffers`) and hands out its whole lines in place; :class:`~flowlens.ingest.lines.LineSplitter` makes an Arrow
  array of those lines that points into the buffer. A line longer than the limit is never held:
  its first bytes are kept for the quarantine and the rest is read past (:class:`~flowlens.ingest.lines.LongLine`).

What a reader *consumed* is always whole lines: after a failure or at the end of a plain file,
the bytes after the last newline (:attr:`LineReader.carry`) are neither consumed nor hashed, so a
checkpoint never covers part of a line, and the complete file, when it comes, gives that line
whole (see :mod:`flowlens.ingest.pipeline`). Which files to read is decided by
:mod:`flowlens.ingest.paths`; whole JSON documents are read by :mod:`flowlens.ingest.documents`.
"""

from __future__ import annotations

import io
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from flowlens.errors import InputError
from flowlens.ingest.documents import document_items, is_document
from flowlens.ingest.options import DEFAULT_MAX_EXPANSION
from flowlens.ingest.paths import NOT_LOGS, STDIN, find_sources

BLOCK_BYTES = 16 * 1024 * 1024
NEWLINE_SCAN_BYTES = 256 * 1024  # newlines are looked for a piece of this size at a time
HEAD_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b\x08"  # the magic bytes and the only compression method gzip defines
STDIN_IN_MEMORY = 64 * 1024 * 1024  # standard input past this goes to a temporary file
COMPRESSED_PIECE = 64 * 1024  # compressed bytes per call: damage loses at most the output of one
DECOMPRESSED_PIECE = 1024 * 1024  # output per call: the expansion limit is checked between calls
# A compressed file may expand max_expansion times its size; one that decompresses to less than
# EXPANSION_FLOOR bytes is always read (small files of repeated lines compress well).
EXPANSION_FLOOR = 64 * 1024 * 1024
LINE_HEAD_KEPT = 64 * 1024  # of a line past the limit, what is kept for the quarantine

__all__ = [
    "BLOCK_BYTES",
    "HEAD_BYTES",
    "NOT_LOGS",
    "STDIN",
    "Buffers",
    "GzipStream",
    "ReadFailure",
    "Source",
    "SourceCut",
    "Unreadable",
    "document_items",
    "expand_sources",
    "is_document",
    "read_blocks",
]


def expand_sources(
    paths: Any,
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Files to read with their format (None: detect), and the files passed over as not logs
    (see :func:`flowlens.ingest.paths.find_sources`); the first path that yields nothing raises
    :class:`InputError`."""
    found = find_sources(paths)
    if found.problems:
        path, problem = found.problems[0]
        raise InputError(f"{path}: {problem}")
    return found.files, found.passed


@dataclass(frozen=True)
class ReadFailure:
    """Why a source could not be read to its end. ``truncated``: the compressed data ends before
    its end marker (the rest may still come); ``damaged``: it cannot be decompressed from here
    on; ``too large``: it expands beyond the limit; ``read error``: the system could not read it."""

    kind: str
    detail: str

    @property
    def waits(self) -> bool:
        """The rest of the file may still arrive: a warning, not an error."""
        return self.kind == "truncated"

    def describe(self) -> str:
        return {
            "truncated": "the compressed data ends before its end marker (a file still being written, or a copy cut short)",
            "damaged": f"the compressed data is damaged ({self.detail})",
            "too large": self.detail,
            "read error": f"read error ({self.detail})",
        }[self.kind]


class Unreadable(InputError):
    """A source that cannot be opened or kept: ``problem`` says why (without the path)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.problem = problem


class SourceCut(Exception):
    """Raised by a stream after the last good byte: the source stops here (see ReadFailure)."""

    def __init__(self, failure: ReadFailure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def _read_error(exc: OSError) -> ReadFailure:
    return ReadFailure("read error", exc.strerror or str(exc))


class Source:
    """A decompressed byte stream over one input, reopenable (for the checkpoint pass). Close it
    (it may hold standard input in a temporary file).

    ``content``: the bytes of ``path`` read by someone else (a file at a Hadoop URL, which a
    Spark task is handed): kept as standard input is, and read as the file ``path`` would be."""

    def __init__(
        self,
        path: str,
        stdin: IO[bytes] | None,
        *,
        max_expansion: int = DEFAULT_MAX_EXPANSION,
        content: IO[bytes] | None = None,
    ) -> None:
        self.path = path
        self.max_expansion = max_expansion
        self._spool: IO[bytes] | None = None
        if content is not None:
            stdin = content
        if path == STDIN or content is not None:
            # Standard input cannot be read twice: it is kept, in memory up to 64 MiB and in a
            # temporary file (deleted when closed) past that.
            self._spool = tempfile.SpooledTemporaryFile(max_size=STDIN_IN_MEMORY)  # noqa: SIM115 - closed by close()
            try:
                source = stdin or io.BytesIO()
                while True:
                    block = source.read(BLOCK_BYTES)
                    if not block:
                        break
                    self._spool.write(block)
            except OSError as exc:
                self.close()
                raise Unreadable(path, f"cannot be kept for reading ({exc.strerror or exc})") from None
            head = self._read_at(0, 3)
        else:
            try:
                with open(path, "rb") as fh:
                    head = fh.read(3)
            except OSError as exc:
                raise Unreadable(path, f"cannot be read ({exc.strerror or exc})") from None
        self.compressed = head == GZIP_MAGIC

    def _read_at(self, offset: int, size: int) -> bytes:
        assert self._spool is not None
        self._spool.seek(offset)
        return self._spool.read(size)

    def raw_head(self, size: int) -> bytes:
        """The first ``size`` bytes as stored (before decompression)."""
        if self._spool is not None:
            return self._read_at(0, size)
        with open(self.path, "rb") as fh:
            return fh.read(size)

    @property
    def complete(self) -> bool:
        """Compressed files and standard input are complete when they end cleanly: their last
        line does not wait for more."""
        return self.compressed or self.path == STDIN

    def open(self) -> IO[bytes]:
        raw: IO[bytes]
        if self._spool is not None:
            self._spool.seek(0)
            raw = _Unclosed(self._spool)  # type: ignore[assignment]
        else:
            try:
                raw = open(self.path, "rb")  # noqa: SIM115 - the caller closes the returned stream
            except OSError as exc:
                raise Unreadable(self.path, f"cannot be read ({exc.strerror or exc})") from None
        if self.compressed:
            return GzipStream(raw, self.max_expansion)  # type: ignore[return-value]
        return raw

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class _Unclosed:
    """A view of the spooled standard input that its readers may close (the spool stays open)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, view: memoryview) -> int:
        return self._inner.readinto(view)  # type: ignore[attr-defined]

    def close(self) -> None:
        pass

    def __enter__(self) -> _Unclosed:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class GzipStream:
    """Decompresses gzip (several members too) with bounded output per call and, unlike
    ``gzip.GzipFile``, hands out every byte it could decompress before a truncation or damage,
    then raises :class:`SourceCut`. Output beyond ``max_expansion`` times the compressed bytes
    (past EXPANSION_FLOOR) stops it too."""

    def __init__(self, raw: IO[bytes], max_expansion: int = DEFAULT_MAX_EXPANSION) -> None:
        self._raw = raw
        self._max_expansion = max_expansion
        self._d = zlib.decompressobj(wbits=31)
        self._tail = b""  # compressed bytes given to the decompressor and not used yet
        self._in_member = False
        self._pending = b""
        self._failure: ReadFailure | None = None
        self._done = False
        self.compressed_read = 0
        self.decompressed = 0

    def __enter__(self) -> GzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def close(self) -> None:
        self._raw.close()

    def _next_input(self) -> bytes | None:
        if self._tail:
            data, self._tail = self._tail, b""
            return data
        try:
            data = self._raw.read(COMPRESSED_PIECE)
        except OSError as exc:
            self._stop(_read_error(exc))
            return None
        self.compressed_read += len(data)
        if not data:
            self._done = True
            if self._in_member and not self._d.eof:
                self._failure = ReadFailure("truncated", "no end-of-stream marker")
            return None
        return data

    def _stop(self, failure: ReadFailure) -> None:
        self._done = True
        self._failure = failure

    def read(self, size: int) -> bytes:
        out: list[bytes] = [self._pending] if self._pending else []
        have = len(self._pending)
        self._pending = b""
        while have < size and not self._done:
            # (checked before more is decompressed: a file that ends within the limit is whole)
            if self.decompressed > EXPANSION_FLOOR and self.decompressed > self._max_expansion * max(
                1, self.compressed_read
            ):
                self._stop(
                    ReadFailure(
                        "too large",
                        f"it expands more than {self._max_expansion} times its compressed size "
                        f"(stopped after {self.decompressed:,} bytes; --max-expansion raises the limit)",
                    )
                )
                break
            data = self._next_input()
            if data is None:
                break
            if not self._in_member and not data.strip(b"\x00"):
                continue  # zero padding after the last member
            self._in_member = True
            try:
                piece = self._d.decompress(data, min(size - have, DECOMPRESSED_PIECE))
            except zlib.error as exc:
                self._stop(ReadFailure("damaged", str(exc)))
                break
            self._tail = self._d.unconsumed_tail
            if self._d.eof:  # the end of a member: the next one starts with its unused data
                self._tail = self._d.unused_data + self._tail
                self._d = zlib.decompressobj(wbits=31)
                self._in_member = False
            out.append(piece)
            have += len(piece)
            self.decompressed += len(piece)
        data = b"".join(out)
        if data:
            return data
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise SourceCut(failure)
        return b""


def read_blocks(stream: IO[bytes], failures: list[ReadFailure]) -> Iterator[bytes]:
    """Blocks of decompressed bytes; a cut or read error ends the file and is added to ``failures``."""
    while True:
        try:
            block = stream.read(BLOCK_BYTES)
        except SourceCut as exc:
            failures.append(exc.failure)
            return
        except OSError as exc:
            failures.append(_read_error(exc))
            return
        if not block:
            return
        yield block


class Filler:
    """Reads a source into caller-given memory (``readinto`` for plain files, so that the bytes
    are copied once, from the page cache into the batch buffer); a cut or read error ends the
    file and is kept in :attr:`failure`."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._pending = b""  # decompressed bytes that did not fit
        self._done = False
        self.failure: ReadFailure | None = None

    def into(self, view: memoryview) -> int:
        """Fill the start of ``view``; 0 at the end of the source."""
        if not self._pending and not self._done:
            try:
                if isinstance(self._stream, GzipStream):
                    self._pending = self._stream.read(len(view))
                else:
                    got = self._stream.readinto(view)  # type: ignore[attr-defined]
                    if got:
                        return int(got)
            except SourceCut as exc:
                self.failure = exc.failure
            except OSError as exc:
                self.failure = _read_error(exc)
            if not self._pending:
                self._done = True
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class Buffers:
    """Batch-sized read buffers, reused once nothing refers to them any more (their batch parsed
    and hashed): a batch's lines point into its buffer, and reusing it spares allocating and
    zeroing fresh pages for every batch. A buffer still referenced is never touched."""

    def __init__(self, size: int, keep: int = 3) -> None:
        self.size = size
        self._keep = keep
        self._pool: list[np.ndarray] = []

    def get(self, at_least: int = 0) -> np.ndarray:
        """A free buffer of at least ``at_least`` bytes (a new one when it must be larger)."""
        if at_least > self.size:
            return np.empty(at_least, dtype=np.uint8)
        for i in range(len(self._pool)):
            if sys.getrefcount(self._pool[i]) == 2:  # the pool's reference and the argument
                return self._pool[i]
        buf = np.empty(self.size, dtype=np.uint8)
        if len(self._pool) < self._keep:
            self._pool.append(buf)
        return buf

    @classmethod
    def for_batches(cls, batch_bytes: int, keep: int) -> Buffers:
        """Buffers that hold a batch of ``batch_bytes`` and the block that completes it."""
        return cls(batch_bytes + BLOCK_BYTES, keep)
