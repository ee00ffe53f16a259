"""Whole lines of a source, in place: :class:`LineReader` reads a line-oriented source from a byte
offset on into the batch buffers of :mod:`flowlens.ingest.sources` and hands out its whole
lines; :class:`LineSplitter` makes an Arrow array of them that points into the buffer; a line
longer than the limit is never held (:class:`LongLine`: its first bytes, for the quarantine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

import numpy as np
import pyarrow as pa
import xxhash

from flowlens.formats import UTF8_BOM
from flowlens.ingest import sources
from flowlens.ingest.sources import Buffers, Filler, ReadFailure


def newline_positions(buf: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Positions of the newlines in ``buf``, found a piece of ``len(scratch)`` bytes at a time:
    the mask of a piece stays in the CPU cache, while a mask of the whole block goes through
    memory twice (22 ms instead of 32 ms per 64 MB here, and more when other threads use memory)."""
    step = len(scratch)
    found = []
    for start in range(0, len(buf), step):
        piece = buf[start : start + step]
        found.append(np.flatnonzero(np.equal(piece, 10, out=scratch[: len(piece)])) + start)
    if len(found) == 1:
        return found[0]
    return np.concatenate(found) if found else np.empty(0, dtype=np.intp)


def last_newline(buf: np.ndarray, end: int, begin: int) -> int:
    """Index of the last newline in ``buf[begin:end]``, or -1."""
    window = 1 << 16
    while end > begin:
        start = max(begin, end - window)
        found = buf[start:end].tobytes().rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
        window *= 4
    return -1


def first_newline(buf: np.ndarray, begin: int, end: int) -> int:
    """Index of the first newline in ``buf[begin:end]``, or -1."""
    found = np.flatnonzero(buf[begin:end] == 10)
    return begin + int(found[0]) if len(found) else -1


class RunningHash(Protocol):
    """The running hash of the bytes consumed (:class:`flowlens.ingest.checkpoints.ContentHash`)."""

    def update(self, data: bytes | memoryview) -> None: ...

    def fork(self) -> Any: ...

    def adopt(self, fork: Any) -> None: ...


@dataclass(frozen=True)
class LongLine:
    """A line longer than the limit, read past without being held: its first bytes (for the
    quarantine), its length without the newline, and its line key (see
    :func:`flowlens.ingest.linememory.line_keys`)."""

    head: bytes
    length: int
    key: int


class _LongState:
    """A line past the limit while it is being read past."""

    def __init__(self, first: bytes | memoryview, hasher: RunningHash) -> None:
        self.head = bytes(first[: sources.LINE_HEAD_KEPT])
        self.length = 0
        self._key = xxhash.xxh3_64()
        # Its bytes go into a fork of the running hash, adopted once the line is whole: an
        # unfinished line must not count as consumed.
        self.hash = hasher.fork()
        self.feed(first)

    def feed(self, data: bytes | memoryview) -> None:
        if len(self.head) < sources.LINE_HEAD_KEPT:
            self.head += bytes(data[: sources.LINE_HEAD_KEPT - len(self.head)])
        self.length += len(data)
        self._key.update(data)
        self.hash.update(data)

    def line(self) -> LongLine:
        return LongLine(self.head, self.length, self._key.intdigest())


class LineReader:
    """The whole lines of a line-oriented source, from byte ``skip`` on, handed out in place.

    Iterating hands out pieces of whole lines (each ending in a newline) as memory views into a
    batch buffer, a :class:`LongLine` for a line longer than ``max_line`` (its newline excluded),
    or None when the buffer holds ``batch_bytes``: hand the batch over then, because the next
    lines go into another buffer (a batch never spans two). Blocks are read straight into the
    buffer, one after the other; a partial line stays where it is and is completed by the next
    block, so the lines of one buffer are contiguous and reach DuckDB without a copy (see
    :func:`flowlens.ingest.parse.join_lines`). A full buffer's partial line moves to the next
    buffer.

    The ``skip`` bytes before the first line to read were ingested before: they are read and
    hashed only. A UTF-8 byte order mark that starts the source (``at_start``: the stream begins
    at its first byte) is consumed and hashed, not handed out (line 1 is what follows it). ``hasher`` sees every byte consumed, in order: the skipped ones, then each
    piece once the caller has taken it. After the last piece: :attr:`consumed` is the bytes
    skipped or handed out, :attr:`bytes_read` every byte read, :attr:`carry` the bytes after the
    last newline (an unfinished last line, or one cut by a failure), not consumed, and
    :attr:`failure` what stopped the reading early, if anything. A last line past the limit
    without a newline is :attr:`long_carry` (its length), likewise not consumed.
    """

    def __init__(
        self,
        stream: IO[bytes],
        buffers: Buffers,
        *,
        batch_bytes: int,
        skip: int,
        hasher: RunningHash,
        max_line: int,
        at_start: bool = True,
    ) -> None:
        self._filler = Filler(stream)
        self._at_start = at_start  # the stream begins at the source's first byte
        self._buffers = buffers
        self._batch_bytes = batch_bytes
        self._skip = skip
        self._hasher = hasher
        self._max_line = max_line
        self.bytes_read = 0
        self.consumed = 0
        self.carry = b""
        self.long_carry: _LongState | None = None

    @property
    def failure(self) -> ReadFailure | None:
        return self._filler.failure

    def finish_long_carry(self) -> LongLine:
        """Consume the last line past the limit that had no newline (a complete source's)."""
        assert self.long_carry is not None
        state, self.long_carry = self.long_carry, None
        self._hasher.adopt(state.hash)
        self.consumed += state.length
        return state.line()

    def __iter__(self) -> Iterator[memoryview | LongLine | None]:
        skip = self._skip
        buf = self._buffers.get()
        fill = 0  # bytes in the buffer
        done = 0  # bytes of it handed over
        long: _LongState | None = None  # a line past the limit, being read past
        scratch: np.ndarray | None = None  # where such a line is read, a block at a time
        hash_update: Callable[[bytes | memoryview], None] = self._hasher.update
        bom_pending = skip == 0 and self._at_start  # (a source read from its first byte)
        while True:
            if long is None:
                if fill == len(buf):  # a line longer than the buffer (a limit above its size)
                    bigger = np.empty(2 * len(buf), dtype=np.uint8)
                    bigger[:fill] = buf[:fill]
                    buf = bigger
                start = fill
                got = self._filler.into(buf.data[fill : fill + min(sources.BLOCK_BYTES, len(buf) - fill)])
                if not got:
                    break
                self.bytes_read += got
                if skip:
                    n = min(skip, got)
                    hash_update(buf[fill : fill + n].tobytes())  # a copy: this memory is reused now
                    buf[fill : fill + got - n] = buf[fill + n : fill + got].copy()
                    skip -= n
                    self.consumed += n
                    got -= n
                fill += got
                if bom_pending and (fill >= len(UTF8_BOM) or done):
                    # A byte order mark at the very start of the source is no part of line 1:
                    # consumed and hashed, never handed out.
                    bom_pending = False
                    if not done and buf[: len(UTF8_BOM)].tobytes() == UTF8_BOM:
                        hash_update(UTF8_BOM)
                        self.consumed += len(UTF8_BOM)
                        done = len(UTF8_BOM)
            else:
                if scratch is None:
                    scratch = np.empty(sources.BLOCK_BYTES, dtype=np.uint8)
                got = self._filler.into(scratch.data)
                if not got:
                    break
                self.bytes_read += got
                end = first_newline(scratch, 0, got)
                if end < 0:
                    long.feed(scratch.data[:got])
                    continue
                long.feed(scratch.data[:end])
                long.hash.update(b"\n")
                self._hasher.adopt(long.hash)
                self.consumed += long.length + 1
                yield long.line()
                long = None
                start = fill  # (== done: nothing waits in the buffer)
                rest = got - end - 1
                buf[fill : fill + rest] = scratch[end + 1 : got]
                fill += rest
            cut = last_newline(buf, fill, max(done, start)) + 1
            if cut:
                chunk = buf.data[done:cut]  # no copy: the lines point into the buffer
                yield chunk
                hash_update(chunk)
                self.consumed += cut - done
                done = cut
                del chunk
            if fill - done > self._max_line:  # the line so far is already too long
                long = _LongState(buf.data[done:fill], self._hasher)
                fill = done
            if fill >= self._batch_bytes and done:
                yield None  # the caller hands its batch over before the buffer changes
                following = self._buffers.get(fill - done + sources.BLOCK_BYTES)
                following[: fill - done] = buf[done:fill]
                buf, fill, done = following, fill - done, 0
        if long is not None:
            self.long_carry = long
        elif fill > done:
            self.carry = buf[done:fill].tobytes()


class LineSplitter:
    """Whole lines (each ending in a newline) as an Arrow array that points into their memory."""

    def __init__(self) -> None:
        self._scratch = np.empty(sources.NEWLINE_SCAN_BYTES, dtype=bool)  # for finding newlines

    def split(self, chunk: bytes | memoryview) -> pa.Array:
        """The lines of ``chunk`` (LargeBinary; empty when it holds none). Zero-copy: each line
        keeps its newline (JSON ignores trailing white space) and the array points straight into
        the chunk."""
        ends = newline_positions(np.frombuffer(chunk, dtype=np.uint8), self._scratch)
        count = len(ends)
        offsets = np.empty(count + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends + 1
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(chunk)]
        )
