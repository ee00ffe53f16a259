"""The sample's log files on disk: each node's ``flows.log`` rotated as Felix's lumberjack rotates
it (``flows.log.1.gz`` newest), written with vectored writes in large pieces."""

from __future__ import annotations

import gzip
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO


def gzip_file(src: Path, dst: Path, level: int = 1) -> None:
    """Deterministic gzip (no name, mtime 0): the same content gives the same bytes."""
    with (
        open(src, "rb") as fin,
        open(dst, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as gz,
    ):
        while chunk := fin.read(1 << 20):
            gz.write(chunk)


#: bytes of a flows.log gathered before they are written (about what one writev takes)
WRITE_BYTES = 512 * 1024
_IOV_MAX = 1024


def _write_parts(fd: int, flushes: list[tuple[list[bytes], int]]) -> None:
    """Write flushes (parts of lines, and their size) to a file, in order, without joining them:
    one ``writev`` for up to :data:`_IOV_MAX` parts."""
    batch: list[bytes] = []
    size = 0
    for parts, n in flushes:
        if len(batch) + len(parts) > _IOV_MAX and batch:
            _writev(fd, batch, size)
            batch, size = [], 0
        batch += parts
        size += n
    if batch:
        _writev(fd, batch, size)


def _writev(fd: int, parts: list[bytes], size: int) -> None:
    written = os.writev(fd, parts) if len(parts) <= _IOV_MAX and hasattr(os, "writev") else 0
    if written != size:  # a short write (or a long list): the rest, the simple way
        rest = memoryview(b"".join(parts))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


class RotatingLog:
    """``flows.log`` rotated by size into ``flows.log.1.gz`` (newest) ... ``flows.log.N.gz``.

    Felix writes a flush (one interval) at a time; the file is rotated before a flush that would
    take it past ``max_bytes``, so each file holds whole intervals. Rotated files are compressed
    on a worker thread (zlib releases the GIL), while generation goes on. Flushes are gathered
    and written :data:`WRITE_BYTES` at a time.
    """

    def __init__(self, path: Path, max_bytes: int, level: int, pool: ThreadPoolExecutor) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.level = level
        self.pool = pool
        self.parts: list[tuple[Path, int, Future[None]]] = []
        self.size = 0
        self.lines = 0
        self.pending: list[tuple[list[bytes], int]] = []
        self.pending_bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh: IO[bytes] = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()

    def _flush(self) -> None:
        if self.pending:
            _write_parts(self.fh.fileno(), self.pending)
            self.pending = []
            self.pending_bytes = 0

    def write(self, parts: list[bytes], lines: int) -> None:
        """Write one flush (the parts of whole lines)."""
        size = sum(map(len, parts))
        if self.size and self.size + size > self.max_bytes:
            self._flush()
            self.fh.close()
            n = len(self.parts)
            plain = self.path.with_name(f".{self.path.name}.part{n:06d}")
            os.replace(self.path, plain)
            part = plain.with_name(plain.name + ".gz")
            self.parts.append((part, self.lines, self.pool.submit(_gzip_and_remove, plain, part, self.level)))
            self.fh = open(self.path, "wb", buffering=0)  # noqa: SIM115
            self.size = self.lines = 0
        self.pending.append((parts, size))
        self.pending_bytes += size
        if self.pending_bytes >= WRITE_BYTES:
            self._flush()
        self.size += size
        self.lines += lines

    def close(self) -> list[tuple[Path, int]]:
        self._flush()
        self.fh.close()
        final = [(self.path, self.lines)]
        n = len(self.parts)
        for i, (part, lines, done) in enumerate(self.parts):
            done.result()
            target = self.path.with_name(f"{self.path.name}.{n - i}.gz")
            os.replace(part, target)
            final.append((target, lines))
        return final


def _gzip_and_remove(plain: Path, part: Path, level: int) -> None:
    gzip_file(plain, part, level)
    plain.unlink()
