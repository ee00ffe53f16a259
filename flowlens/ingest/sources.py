"""Sources: which files an ingest reads, and their bytes as whole lines, without a copy.

* :func:`expand_sources` turns paths, folders (recursive), globs and ``-`` (standard input) into
  the files to read, passing over what lives beside logs and is not one (README, YAML, ...).
* :class:`Source` opens one input, decompressing gzip (also several members, also cut short:
  :class:`GzipStream` hands out every byte before the damage).
* :class:`LineReader` reads a line-oriented source from a byte offset on (the bytes before it
  were ingested before: they are read and hashed only) into large batch buffers
  (:class:`Buffers`) and hands out its whole lines in place; :class:`LineSplitter` makes an Arrow
  array of those lines that points into the buffer. Lines thus reach DuckDB without a copy.
* :func:`is_document` and :func:`document_items`: inputs that are one JSON document (a Whisker
  ``/flows`` response, an Elasticsearch ``_search`` response) become one record per line.

Where each source's reading resumes is decided by :mod:`flowlens.ingest.checkpoints`; what
happens to the lines, by :mod:`flowlens.ingest.parse` and the modules after it.
"""

from __future__ import annotations

import glob
import io
import json
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa

from flowlens.errors import InputError
from flowlens.ingest.accounting import FileSummary

BLOCK_BYTES = 16 * 1024 * 1024
NEWLINE_SCAN_BYTES = 256 * 1024  # newlines are looked for a piece of this size at a time
HEAD_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b\x08"  # the magic bytes and the only compression method gzip defines
STDIN = "-"

# Files that live beside logs and are not logs: passed over with a note, never quarantined.
NOT_LOGS = {
    ".yaml",
    ".yml",
    ".md",
    ".txt",
    ".rst",
    ".py",
    ".toml",
    ".cfg",
    ".ini",
    ".sh",
    ".png",
    ".svg",
    ".html",
}


def expand_sources(
    paths: Iterable[str | tuple[str, str | None]],
) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Files to read with their format (None: detect), sorted and each once, and the files passed
    over as not logs, from paths, directories (recursive) and globs. ``-`` is standard input.
    Inside directories and globs, documentation and manifests (README, *.yaml, *.md, ...) and
    hidden files are passed over; a file named explicitly is always read."""
    files: list[tuple[str, str | None]] = []
    passed: list[str] = []
    seen: set[str] = set()

    def add(path: Path, fmt: str | None, explicit: bool = False) -> None:
        key = str(path)
        if key in seen:
            return
        seen.add(key)
        suffixes = [s.lower() for s in path.suffixes]
        not_log = (suffixes and suffixes[-1] in NOT_LOGS) or path.name.startswith(("README", "."))
        if not_log and not explicit:
            passed.append(key)
        else:
            files.append((key, fmt))

    for item in paths:
        raw, fmt = item if isinstance(item, tuple) else (item, None)
        if raw == STDIN:
            files.append((STDIN, fmt))
            continue
        matches = sorted(glob.glob(raw, recursive=True)) if glob.has_magic(raw) else [raw]
        if not matches:
            raise InputError(f"no file matches {raw!r}")
        for match in matches:
            p = Path(match)
            if p.is_dir():
                for child in sorted(q for q in p.rglob("*") if q.is_file()):
                    if not any(part.startswith(".") for part in child.relative_to(p).parts):
                        add(child, fmt)
            elif p.is_file():
                add(p, fmt, explicit=not glob.has_magic(raw))
            else:
                raise InputError(f"{match}: no such file or directory")
    return files, passed


class Source:
    """A decompressed byte stream over one input, reopenable (for the checkpoint pass)."""

    def __init__(self, path: str, stdin: IO[bytes] | None) -> None:
        self.path = path
        self._stdin_data: bytes | None = None
        if path == STDIN:
            # Standard input cannot be read twice; it is held in memory (pipes are small).
            self._stdin_data = (stdin or io.BytesIO()).read()
            self.compressed = self._stdin_data[:3] == GZIP_MAGIC
        else:
            try:
                with open(path, "rb") as fh:
                    self.compressed = fh.read(3) == GZIP_MAGIC
            except OSError as exc:
                raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc

    def raw_head(self, size: int) -> bytes:
        """The first ``size`` bytes as stored (before decompression)."""
        if self._stdin_data is not None:
            return self._stdin_data[:size]
        with open(self.path, "rb") as fh:
            return fh.read(size)

    @property
    def complete(self) -> bool:
        """Compressed files and standard input are complete: their last line does not wait."""
        return self.compressed or self.path == STDIN

    def open(self) -> IO[bytes]:
        raw: IO[bytes] = (
            io.BytesIO(self._stdin_data) if self._stdin_data is not None else open(self.path, "rb")  # noqa: SIM115 - the caller closes the returned stream
        )
        if self.compressed:
            return GzipStream(raw)  # type: ignore[return-value]
        return raw


class GzipStream:
    """Decompresses gzip (several members too) and, unlike ``gzip.GzipFile``, hands out every
    byte it could decompress before a truncation or damage, then raises ``EOFError``."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._error: Exception | None = None
        self._done = False

    def __enter__(self) -> GzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def close(self) -> None:
        self._raw.close()

    def read(self, size: int) -> bytes:
        out: list[bytes] = [self._pending] if self._pending else []
        have = len(self._pending)
        self._pending = b""
        while have < size and not self._done:
            compressed = self._raw.read(1024 * 1024)
            try:
                if not compressed:
                    self._done = True
                    if not self._d.eof:
                        self._error = EOFError(
                            "compressed file ended before the end-of-stream marker was reached"
                        )
                    break
                piece = self._d.decompress(compressed)
                while self._d.eof and self._d.unused_data:
                    rest = self._d.unused_data
                    self._d = zlib.decompressobj(wbits=31)
                    if rest.strip(b"\x00"):
                        piece += self._d.decompress(rest)
            except zlib.error as exc:
                self._done = True
                self._error = exc
                break
            out.append(piece)
            have += len(piece)
        data = b"".join(out)
        if data:
            return data
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return b""


def read_blocks(stream: IO[bytes], warnings: list[str]) -> Iterator[bytes]:
    """Blocks of decompressed bytes; a damaged gzip stream ends the file with a warning."""
    while True:
        try:
            block = stream.read(BLOCK_BYTES)
        except (EOFError, zlib.error, OSError) as exc:
            warnings.append(
                f"compressed data damaged or truncated ({exc}); the rest of the file cannot be read"
            )
            return
        if not block:
            return
        yield block


class Filler:
    """Reads a source into caller-given memory (``readinto`` for plain files, so that the bytes
    are copied once, from the page cache into the batch buffer); a damaged gzip stream ends the
    file with a warning, as in :func:`read_blocks`."""

    def __init__(self, stream: IO[bytes], warnings: list[str]) -> None:
        self._stream = stream
        self._warnings = warnings
        self._pending = b""  # decompressed bytes that did not fit
        self._done = False

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
            except (EOFError, zlib.error, OSError) as exc:
                self._warnings.append(
                    f"compressed data damaged or truncated ({exc}); the rest of the file cannot be read"
                )
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

    def get(self) -> np.ndarray:
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


class LineReader:
    """The whole lines of a line-oriented source, from byte ``skip`` on, handed out in place.

    Iterating hands out pieces of whole lines (each ending in a newline) as memory views into a
    batch buffer, or None when it holds ``batch_bytes``: hand the batch over then, because the next
    lines go into another buffer (a batch never spans two). Blocks are read straight into the
    buffer, one after the other; a partial line stays where it is and is completed by the next
    block, so the lines of one buffer are contiguous and reach DuckDB without a copy (see
    :func:`flowlens.ingest.parse.join_lines`). A full buffer's partial line moves to the next
    buffer.

    The ``skip`` bytes before the first line to read were ingested before: they are read and
    hashed only. ``hash_update`` sees every byte consumed, in order: the skipped ones, then each
    piece once the caller has taken it. After the last piece: :attr:`consumed` is the bytes
    skipped or handed out, :attr:`bytes_read` every byte read, and :attr:`carry` the bytes after
    the last newline (an unfinished last line, or one cut by damage), not yet consumed.
    """

    def __init__(
        self,
        stream: IO[bytes],
        warnings: list[str],
        buffers: Buffers,
        *,
        batch_bytes: int,
        skip: int,
        hash_update: Callable[[bytes | memoryview], None],
    ) -> None:
        self._filler = Filler(stream, warnings)
        self._buffers = buffers
        self._batch_bytes = batch_bytes
        self._skip = skip
        self._hash = hash_update
        self.bytes_read = 0
        self.consumed = 0
        self.carry = b""

    def __iter__(self) -> Iterator[memoryview | None]:
        skip = self._skip
        buf = self._buffers.get()
        fill = 0  # bytes in the buffer
        done = 0  # bytes of it handed over
        while True:
            if fill == len(buf):  # a line longer than the buffer
                bigger = np.empty(2 * len(buf), dtype=np.uint8)
                bigger[:fill] = buf[:fill]
                buf = bigger
            got = self._filler.into(buf.data[fill : fill + min(BLOCK_BYTES, len(buf) - fill)])
            if not got:
                break
            self.bytes_read += got
            if skip:
                n = min(skip, got)
                self._hash(buf[fill : fill + n].tobytes())  # a copy: this memory is reused now
                buf[fill : fill + got - n] = buf[fill + n : fill + got].copy()
                skip -= n
                self.consumed += n
                got -= n
            cut = last_newline(buf, fill + got, max(done, fill)) + 1
            fill += got
            if cut:
                chunk = buf.data[done:cut]  # no copy: the lines point into the buffer
                yield chunk
                self._hash(chunk)
                self.consumed += cut - done
                done = cut
                del chunk
            if fill >= self._batch_bytes:
                yield None  # the caller hands its batch over before the buffer changes
                following = self._buffers.get()
                following[: fill - done] = buf[done:fill]
                buf, fill, done = following, fill - done, 0
        if fill > done:
            self.carry = buf[done:fill].tobytes()


class LineSplitter:
    """Whole lines (each ending in a newline) as an Arrow array that points into their memory."""

    def __init__(self) -> None:
        self._scratch = np.empty(NEWLINE_SCAN_BYTES, dtype=bool)  # for finding newlines

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


def is_document(head: bytes, fmt: str) -> bool:
    """A whole JSON response rather than one record per line: a Whisker ``/flows`` list response
    or an Elasticsearch ``_search`` response (possibly pretty-printed)."""
    text = head.lstrip()
    if text[:1] != b"{":
        return False
    if fmt == "whisker":
        return b'"items"' in head[:4096]
    if fmt == "elasticsearch":
        first = text.split(b"\n", 1)[0]
        return b'"hits"' in head[:4096] and (
            first.strip() == b"{" or b'"took"' in first or b'"_shards"' in first
        )
    return False


def document_items(data: bytes, fs: FileSummary) -> bytes:
    """The records of a whole-document response, one per line (line N = record N)."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        fs.warnings.append(f"not a complete JSON document: {exc}")
        return data.replace(b"\n", b" ") + b"\n"
    items: Any = None
    if isinstance(doc, dict):
        items = doc.get("items")
        hits = doc.get("hits")
        if items is None and isinstance(hits, dict):
            items = hits.get("hits")
    if not isinstance(items, list):
        fs.warnings.append('a response without an "items" or "hits.hits" list')
        return json.dumps(doc).encode() + b"\n"
    return b"".join(json.dumps(item, separators=(",", ":")).encode() + b"\n" for item in items)
