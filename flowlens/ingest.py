"""Ingest: Calico flow-log files into the store, exactly once, losing nothing.

The fast path never parses a line in Python: a file is read in large blocks, split into lines
with numpy, and each block is handed to DuckDB as an Arrow array; DuckDB parses the JSON once
per line (``json_transform``) and computes every canonical column in the same query. Only lines
that a cheap SQL test marks as *suspect* are looked at one by one, to name what is wrong with
them (or to clear them). Label sets and policy traces are few and repeat endlessly, so the query
hands them over as JSON text and each distinct text is converted and checked once in Python; the
results are joined back with Arrow (``take``).

Exactly once: a source is identified by its content, not its name. The manifest keeps, for each
*lineage* of content (a ``flows.log`` and the rotated, gzipped copies of it), checkpoints of
``(bytes, lines, XXH3 of those bytes)`` (see CHECKPOINT_HASH). A file whose first line and prefix
match a checkpoint continues from there, so a re-ingested, renamed, rotated or grown file adds only
its new lines. A partial last line of a plain file waits for the next run.

Accounting, per file: lines read = rows stored + lines quarantined + lines skipped as already
ingested + framing lines ignored (event-stream ``event:``/``id:`` lines and blank separators only).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import io
import json
import os
import shutil
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from flowlens.errors import InputError, StrictModeError, UsageError
from flowlens.formats import FORMATS, detect, get_format
from flowlens.formats.base import INT64_MAX, INT64_MIN, Format
from flowlens.formats.hits import HitParseError, PolicyHit, hit_from_object, parse_hit
from flowlens.schema import ARROW_SCHEMA, LABELS, POLICY_COLUMNS, POLICY_HIT, POLICY_LIST
from flowlens.store import (
    Store,
    StoreWriter,
    configure_session,
    duckdb_connection,
    new_ingest_id,
    open_writer,
    quarantine_schema,
    summary_path,
)
from flowlens.store.summaries import backfill as backfill_summaries
from flowlens.store.summaries import deciding_hits, summarise_table

BLOCK_BYTES = 16 * 1024 * 1024
BATCH_BYTES = 64 * 1024 * 1024
# Batches parsed at once while the next one is read, each query on its own share of the DuckDB
# threads: two single-threaded queries keep two cores busier than one query on two threads (the
# rows are still staged in input order). 1 M records: 15.2-15.5 s instead of 17.4-17.8 s.
MAX_BATCHES_IN_FLIGHT = 2
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
QUARANTINE_RAW_LIMIT = 64 * 1024
ROWS_PER_COMMIT = 4_000_000
ROWS_PER_ROW_GROUP = 128 * 1024
# A day's allowed and denied rows share a row group when together they are fewer than this:
# skipping so few rows saves a query next to nothing, while each row group costs the writer a
# fixed amount per column (its encoders, dictionary and compression set up anew).
MIXED_ROWS = 16 * 1024
MAX_ROWS_QUEUED = 128 * 1024  # rows handed to the Parquet writer thread and not yet written
MAX_CHECKPOINTS = 32
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


@dataclass
class FileSummary:
    """What happened to one source."""

    path: str
    format: str | None = None
    lines_read: int = 0
    rows: int = 0
    quarantined: int = 0
    skipped: int = 0
    ignored: int = 0
    pending_bytes: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.lines_read == self.rows + self.quarantined + self.skipped + self.ignored


@dataclass
class IngestSummary:
    """What one ``ingest`` did. Counts add up: see :attr:`balanced`."""

    ingest_id: str
    store: str
    files: list[FileSummary] = field(default_factory=list)
    passed_over: list[str] = field(default_factory=list)
    partitions: set[str] = field(default_factory=set)
    recovered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return int(sum(getattr(f, name) for f in self.files))

    @property
    def balanced(self) -> bool:
        return all(f.balanced for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ingest_id": self.ingest_id,
            "store": self.store,
            "files": len(self.files),
            "lines_read": self.total("lines_read"),
            "rows": self.total("rows"),
            "quarantined": self.total("quarantined"),
            "skipped_already_ingested": self.total("skipped"),
            "ignored": self.total("ignored"),
            "pending_bytes": self.total("pending_bytes"),
            "bytes_read": self.total("bytes_read"),
            "partitions": sorted(self.partitions),
            "passed_over": self.passed_over,
            "seconds": round(self.seconds, 3),
            "balanced": self.balanced,
            "per_file": [
                {
                    "path": f.path,
                    "format": f.format,
                    "lines_read": f.lines_read,
                    "rows": f.rows,
                    "quarantined": f.quarantined,
                    "skipped_already_ingested": f.skipped,
                    "ignored": f.ignored,
                    "pending_bytes": f.pending_bytes,
                    "reasons": dict(sorted(f.reasons.items())),
                    "warnings": f.warnings,
                }
                for f in self.files
            ],
        }


@dataclass(frozen=True)
class IngestOptions:
    format: str | None = None  # None: detect per file
    cluster: str | None = None  # overrides the record's own cluster
    default_cluster: str = "default"
    strict: bool = False
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    threads: int | None = None


ProgressFn = Callable[[int, int], None]  # (bytes read so far, rows so far)


# --- sources ----------------------------------------------------------------------------------


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


class _Source:
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
            return _GzipStream(raw)  # type: ignore[return-value]
        return raw


class _GzipStream:
    """Decompresses gzip (several members too) and, unlike ``gzip.GzipFile``, hands out every
    byte it could decompress before a truncation or damage, then raises ``EOFError``."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""
        self._error: Exception | None = None
        self._done = False

    def __enter__(self) -> _GzipStream:
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


def _read_blocks(stream: IO[bytes], warnings: list[str]) -> Iterator[bytes]:
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


class _Filler:
    """Reads a source into caller-given memory (``readinto`` for plain files, so that the bytes
    are copied once, from the page cache into the batch buffer); a damaged gzip stream ends the
    file with a warning, as in :func:`_read_blocks`."""

    def __init__(self, stream: IO[bytes], warnings: list[str]) -> None:
        self._stream = stream
        self._warnings = warnings
        self._pending = b""  # decompressed bytes that did not fit
        self._done = False

    def into(self, view: memoryview) -> int:
        """Fill the start of ``view``; 0 at the end of the source."""
        if not self._pending and not self._done:
            try:
                if isinstance(self._stream, _GzipStream):
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


class _Buffers:
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


def _newline_positions(buf: np.ndarray, scratch: np.ndarray) -> np.ndarray:
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


def _last_newline(buf: np.ndarray, end: int, begin: int) -> int:
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


def _join_lines(arrays: list[pa.Array]) -> pa.Array:
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


# Checkpoints identify the bytes consumed by a 128-bit XXH3 of them (about 5 GB/s on one core,
# against 0.4 GB/s for BLAKE2b here). It is not a cryptographic hash: bytes made on purpose to
# collide would make flowlens take a file for one it has read, but whoever can write a flow log's
# bytes can drop its lines anyway. Checkpoints written before carry a BLAKE2b and still verify.
CONTENT_HASHES: dict[str, Callable[[], Any]] = {
    "xxh3_128": xxhash.xxh3_128,
    "blake2b": lambda: hashlib.blake2b(digest_size=32),
}
CHECKPOINT_HASH = "xxh3_128"


class _ContentHash:
    """A running hash (CHECKPOINT_HASH) of the bytes consumed, computed on a worker thread (it
    releases the GIL) so that hashing overlaps with parsing."""

    def __init__(self) -> None:
        self._hash = CONTENT_HASHES[CHECKPOINT_HASH]()
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._last: Future[None] | None = None

    def update(self, data: bytes | memoryview) -> None:
        if data:
            self._last = self._pool.submit(self._hash.update, data)

    def hexdigest(self) -> str:
        if self._last is not None:
            self._last.result()
        return self._hash.hexdigest()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


# --- manifest lineages ------------------------------------------------------------------------


def _head_key(head: bytes) -> str:
    first = head.split(b"\n", 1)[0][:4096]
    return hashlib.sha256(first).hexdigest()


def _find_resume(
    source: _Source, head_key: str, manifest: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The lineage and checkpoint this content continues, verified by hashing its prefix."""
    candidates = [s for s in manifest["sources"] if s["head"] == head_key]
    if not candidates:
        return None, None
    wanted: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for lineage in candidates:
        for cp in lineage["checkpoints"]:
            wanted.append((cp["bytes"], lineage, cp))
    wanted.sort(key=lambda w: w[0])
    best: tuple[dict[str, Any], dict[str, Any]] | None = None
    # only the hashes the checkpoints carry (a checkpoint of an older flowlens: BLAKE2b)
    hashers = {name: make() for name, make in CONTENT_HASHES.items() if any(name in w[2] for w in wanted)}
    done = 0
    idx = 0
    with source.open() as stream:
        for block in _read_blocks(stream, []):
            start = 0
            while idx < len(wanted) and wanted[idx][0] <= done + len(block):
                cut = wanted[idx][0] - done
                for hasher in hashers.values():
                    hasher.update(block[start:cut])
                start = cut
                cp = wanted[idx][2]
                if any(hashers[name].hexdigest() == cp[name] for name in hashers if name in cp):
                    best = (wanted[idx][1], cp)
                idx += 1
            for hasher in hashers.values():
                hasher.update(block[start:])
            done += len(block)
            if idx >= len(wanted):
                break
    if best is None:
        return None, None
    return best


# --- policy hits ------------------------------------------------------------------------------


class _HitMapper:
    """Maps raw hit texts (strings in F0/F1/F2, or JSON objects) to POLICY_HIT structs, parsing
    each distinct text once."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._rows: list[dict[str, Any]] = []
        self._errors: dict[str, str] = {}
        self._row_of: dict[str, dict[str, Any]] = {}
        self._keys = pa.array([], pa.string())
        self._structs = pa.array([], POLICY_HIT)
        self._policy_index = pa.array([], pa.int64())

    def _parse(self, text: str) -> PolicyHit:
        if text.startswith("{"):
            return hit_from_object(json.loads(text))
        return parse_hit(text, strict=False)

    def row(self, text: str) -> dict[str, Any] | str:
        """The POLICY_HIT row of one hit text, or why it is not a hit."""
        found = self._row_of.get(text) or self._errors.get(text)
        if found is None:
            try:
                found = self._row_of[text] = self._parse(text).as_row()
            except (HitParseError, ValueError, TypeError) as exc:
                found = self._errors[text] = str(exc)
        return found

    def _learn(self, texts: list[str]) -> None:
        new = False
        for text in texts:
            if text in self._index or text in self._errors:
                continue
            try:
                hit = self._parse(text)
            except (HitParseError, ValueError, TypeError) as exc:
                self._errors[text] = str(exc)
                continue
            self._index[text] = len(self._rows)
            self._rows.append(hit.as_row())
            new = True
        if new:
            self._keys = pa.array(list(self._index), pa.string())
            self._structs = pa.array(self._rows, POLICY_HIT)
            self._policy_index = pa.array(
                [r["policy_index"] if r["policy_index"] is not None else 0 for r in self._rows], pa.int64()
            )

    def map(self, column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray, dict[int, str]]:
        """The column as LIST<POLICY_HIT>, a mask of rows with an invalid hit, and their reasons."""
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if arr.type != pa.list_(pa.string()):
            arr = arr.cast(pa.list_(pa.string()))
        flat = pc.list_flatten(arr)
        unique = pc.unique(flat).to_pylist()
        self._learn([u for u in unique if u is not None])
        codes = pc.index_in(flat, value_set=self._keys)
        bad_rows = np.zeros(len(arr), dtype=bool)
        reasons: dict[int, str] = {}
        if codes.null_count:
            parents = pc.list_parent_indices(arr).to_numpy()
            bad_flat = np.flatnonzero(codes.is_null().to_numpy(zero_copy_only=False))
            texts = flat.to_pylist()
            for pos in bad_flat:
                row = int(parents[pos])
                bad_rows[row] = True
                text = texts[pos]
                reasons.setdefault(
                    row, f"invalid policy hit {text!r}: {self._errors.get(text, 'null entry')}"
                )
            codes = pc.fill_null(codes, 0)
        if len(self._structs):
            # Calico writes a trace as a set in random order: order each list by policy index.
            idx = self._policy_index.take(codes).to_numpy(zero_copy_only=False)
            parents = pc.list_parent_indices(arr).to_numpy()
            order_key = parents.astype(np.int64) * (1 << 32) + idx
            if len(order_key) > 1 and not np.all(order_key[1:] >= order_key[:-1]):
                codes = codes.take(pa.array(np.argsort(order_key, kind="stable")))
            values = self._structs.take(codes)
        else:
            values = pa.nulls(len(codes), POLICY_HIT)
        result = pa.ListArray.from_arrays(arr.offsets, values, type=pa.list_(POLICY_HIT), mask=arr.is_null())
        return result, bad_rows, reasons


def labels_to_map(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray, dict[int, str]]:
    """``["k=v", ...]`` lists (split on the first '=') as MAP<string, string>; rows where a key
    appears twice, or where a label is null, cannot be a map and are reported instead."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.type != pa.list_(pa.string()):
        arr = arr.cast(pa.list_(pa.string()))
    flat = pc.list_flatten(arr)
    bad = np.zeros(len(arr), dtype=bool)
    reasons: dict[int, str] = {}
    parts = pc.split_pattern(flat, "=", max_splits=1)
    keys = pc.list_element(parts, 0)
    has_value = pc.equal(pc.list_value_length(parts), 2)
    padded = pc.if_else(has_value, parts, pa.scalar(["", ""], pa.list_(pa.string())))
    values = pc.list_element(padded, 1)
    if len(flat):
        parents = pc.list_parent_indices(arr).to_numpy().astype(np.int64)
        if flat.null_count:
            for row in np.unique(parents[flat.is_null().to_numpy(zero_copy_only=False)]):
                bad[row] = True
                reasons[int(row)] = "a label that is null"
        codes = pc.fill_null(pc.dictionary_encode(keys).indices, -1).to_numpy().astype(np.int64)
        combined = parents * (1 << 32) + codes
        if pc.count_distinct(pa.array(combined)).as_py() != len(combined):
            order = np.argsort(combined, kind="stable")
            sorted_c = combined[order]
            dup = order[1:][sorted_c[1:] == sorted_c[:-1]]
            key_list = keys.to_pylist()
            for pos in dup:
                row = int(parents[pos])
                bad[row] = True
                reasons.setdefault(row, f"duplicate label key {key_list[pos]!r}")
    mask = arr.is_null()
    if bad.any():
        # Keep the map valid (readers reject duplicate keys): the row is quarantined anyway.
        mask = pc.or_(mask, pa.array(bad))
        keep_flat = ~bad[pc.list_parent_indices(arr).to_numpy()] if len(flat) else np.zeros(0, dtype=bool)
        keys = keys.filter(pa.array(keep_flat))
        values = values.filter(pa.array(keep_flat))
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy().astype(np.int64)
        lengths = np.where(bad, 0, lengths)
        offsets = np.zeros(len(arr) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        return pa.MapArray.from_arrays(pa.array(offsets), keys, values, mask=mask), bad, reasons
    return pa.MapArray.from_arrays(arr.offsets, keys, values, mask=mask), bad, reasons


# --- dictionary-encoded leaves of the nested columns --------------------------------------------

# Label sets and policy traces repeat endlessly and hold few distinct strings. Their string leaves
# are dictionary-encoded, each against a dictionary that lasts from batch to batch: a take of a
# label set or trace then copies 4-byte codes instead of strings, and the Parquet writer puts the
# codes straight into its dictionary pages instead of hashing every string again (1 M records:
# about 1 s less CPU). The files hold the same Parquet columns as with plain strings.
ENCODED_COLUMNS = ("source_labels", "dest_labels", *POLICY_COLUMNS)
# Distinct strings a leaf's dictionary may hold before it starts again from the strings of the
# batch at hand. Each row group's dictionary page holds the whole dictionary, used or not.
LEAF_DICTIONARY_LIMIT = 1024
_CODED_STRING = pa.dictionary(pa.int32(), pa.string())


def _encoded_type(type_: pa.DataType) -> pa.DataType:
    """``type_`` with each string inside it dictionary-encoded."""
    if pa.types.is_string(type_):
        return _CODED_STRING
    if pa.types.is_map(type_):
        return pa.map_(_encoded_type(type_.key_type), _encoded_type(type_.item_type))
    if pa.types.is_list(type_):
        field = type_.value_field
        return pa.list_(pa.field(field.name, _encoded_type(field.type), field.nullable))
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, _encoded_type(f.type), f.nullable) for f in type_])
    return type_


# Provenance columns hold one value (or one per file) for a whole batch: codes into that value.
CODED_PROVENANCE = ("format", "ingest_id", "source_file")

#: What the writer is handed: ARROW_SCHEMA with the strings of ENCODED_COLUMNS and
#: CODED_PROVENANCE dictionary-encoded.
WRITE_SCHEMA = pa.schema(
    [
        pa.field(f.name, _encoded_type(f.type)) if f.name in ENCODED_COLUMNS + CODED_PROVENANCE else f
        for f in ARROW_SCHEMA
    ]
)


class _LeafDictionaries:
    """One lasting dictionary per string leaf of the nested columns (see ENCODED_COLUMNS), and
    per provenance column (CODED_PROVENANCE)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[dict[str, int], pa.Array]] = {}

    def _codes(self, leaf: str, strings: pa.Array) -> pa.Array:
        index, dictionary = self._known.get(leaf, ({}, pa.array([], pa.string())))
        unique = [s for s in pc.unique(strings).to_pylist() if s is not None]
        new = [s for s in unique if s not in index]
        if new:
            if len(index) + len(new) > LEAF_DICTIONARY_LIMIT:
                index, new = {}, unique
            for s in new:
                index[s] = len(index)
            dictionary = pa.array(list(index), pa.string())
            self._known[leaf] = (index, dictionary)
        codes = pc.index_in(strings, value_set=dictionary).cast(pa.int32())
        return pa.DictionaryArray.from_arrays(codes, dictionary)

    def encode(self, leaf: str, arr: pa.Array) -> pa.Array:
        """``arr`` (not a slice) with each string inside it dictionary-encoded."""
        type_ = arr.type
        mask = arr.is_null() if arr.null_count else None
        if pa.types.is_string(type_):
            return self._codes(leaf, arr)
        if pa.types.is_map(type_):
            keys = self.encode(leaf + ".key", arr.keys)
            items = self.encode(leaf + ".value", arr.items)
            return pa.MapArray.from_arrays(arr.offsets, keys, items, mask=mask)
        if pa.types.is_list(type_):
            values = self.encode(leaf + "[]", arr.values)
            return pa.ListArray.from_arrays(arr.offsets, values, type=_encoded_type(type_), mask=mask)
        if pa.types.is_struct(type_):
            children = [self.encode(f"{leaf}.{f.name}", arr.field(i)) for i, f in enumerate(type_)]
            return pa.StructArray.from_arrays(children, fields=list(_encoded_type(type_)), mask=mask)
        return arr

    def repeat(self, leaf: str, value: str, n: int) -> pa.Array:
        """``value`` ``n`` times, as codes into the leaf's dictionary."""
        return self.encode(leaf, pa.array([value], pa.string())).take(pa.array(np.zeros(n, dtype=np.int32)))


# Why the rows holding a distinct JSON text are looked at one by one: the value has the wrong shape,
# and the full diagnosis of the record names the field (as for any suspect record).
_WRONG_SHAPE = "\0wrong shape"
JSON_PREFIX = "json__"  # result columns of Format.json_columns
_DISTINCT_CACHE_LIMIT = 100_000


class _DistinctJson:
    """Label sets and policy traces from their JSON text (``Format.json_columns``), converted and
    checked once per distinct text: a cluster has few label sets and traces, repeated endlessly.

    Each conversion gives the value(s) for the rows holding that text and, for a bad value, the
    reason its rows are quarantined (``_WRONG_SHAPE``: diagnose the record)."""

    def __init__(self, hits: _HitMapper) -> None:
        self.hits = hits
        self._cache: dict[tuple[str, str], tuple[Any, str | None]] = {}

    def _convert(self, kind: str, text: str) -> tuple[Any, str | None]:
        key = (kind, text)
        done = self._cache.get(key)
        if done is None:
            if len(self._cache) >= _DISTINCT_CACHE_LIMIT:
                self._cache.clear()
            done = self._cache[key] = self._policies(text) if kind == "policies" else self._labels(text, kind)
        return done

    @staticmethod
    def _labels(text: str, name: str) -> tuple[Any, str | None]:
        """``{"labels": ["k=v", ...]}`` as map items (split on the first '='); null labels: None."""
        value = json.loads(text)
        if value is None:
            return None, None
        if not isinstance(value, dict):
            return None, _WRONG_SHAPE
        items = value.get("labels")
        if items is None:
            return None, None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            return None, _WRONG_SHAPE
        pairs = [item.partition("=")[::2] for item in items]
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            return None, f"duplicate label key {dup!r} in '{name}'"
        return pairs, None

    def _policies(self, text: str) -> tuple[Any, str | None]:
        """The four traces of a policies object, each ordered by policy index (Calico writes a
        trace as a set in random order); a trace that was not logged: None."""
        value = json.loads(text)
        if value is None:
            return (None,) * len(POLICY_COLUMNS), None
        if not isinstance(value, dict):
            return None, _WRONG_SHAPE
        traces: list[list[dict[str, Any]] | None] = []
        for key in POLICY_COLUMNS:
            hits = value.get(key)
            if hits is None:
                traces.append(None)
                continue
            if not isinstance(hits, list) or not all(h is None or isinstance(h, str) for h in hits):
                return None, _WRONG_SHAPE
            rows = []
            for h in hits:
                row = self.hits.row(h) if h is not None else "null entry"
                if isinstance(row, str):
                    return None, f"invalid policy hit {h!r}: {row}"
                rows.append(row)
            rows.sort(key=lambda r: r["policy_index"] if r["policy_index"] is not None else 0)
            traces.append(rows)
        return tuple(traces), None

    def map(
        self, kind: str, column: pa.ChunkedArray
    ) -> tuple[list[Any], pa.Array, np.ndarray, dict[int, str], np.ndarray]:
        """For a column of JSON texts: the converted value of each distinct text, the index of
        each row's text in that list (null for a null text), a mask of bad rows with their
        reasons, and a mask of rows of the wrong shape (to be diagnosed)."""
        values: list[Any] = []
        reasons_of: list[str | None] = []
        codes_parts = []
        for chunk in column.chunks:
            enc = pc.dictionary_encode(chunk)
            base = len(values)
            for text in enc.dictionary.to_pylist():
                value, reason = self._convert(kind, text)
                values.append(value)
                reasons_of.append(reason)
            indices = enc.indices.cast(pa.int32())
            codes_parts.append(pc.add(indices, pa.scalar(base, pa.int32())) if base else indices)
        codes = pa.concat_arrays(codes_parts) if codes_parts else pa.array([], pa.int32())
        n = len(codes)
        bad = np.zeros(n, dtype=bool)
        shape = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        if any(r is not None for r in reasons_of):
            # the last slot stands for a null text
            dense = pc.fill_null(codes, len(values)).to_numpy(zero_copy_only=False)
            shape = np.array([r == _WRONG_SHAPE for r in reasons_of] + [False])[dense]
            bad = np.array([r is not None and r != _WRONG_SHAPE for r in reasons_of] + [False])[dense]
            for row in np.flatnonzero(bad):
                reasons[int(row)] = reasons_of[dense[row]]
        return values, codes, bad, reasons, shape


# --- the pipeline -----------------------------------------------------------------------------


def _select_sql(fmt: Format, max_line: int, *, guarded: bool = True) -> str:
    """The query that parses a batch of lines. ``guarded``: a line that is not UTF-8 or not JSON
    becomes NULL (``try``) instead of failing the query; the unguarded query is cheaper and is
    tried first, as almost every batch is valid, and its result is the same when it succeeds."""
    guard = "try" if guarded else ""
    names = [c.name for c in ARROW_SCHEMA if c.name in fmt.columns]
    cols = ",\n  ".join(
        [f"{fmt.columns[n]} AS {n}" for n in names]
        + [f"{expr} AS {JSON_PREFIX}{n}" for n, expr in fmt.json_columns.items()]
    )
    structure = fmt.structure_json.replace("'", "''")
    return f"""
WITH d AS (
  SELECT line_no, {guard}(decode(line)) AS t, octet_length(line) - 1 AS n FROM raw_lines
), r AS (
  SELECT line_no, n, t, {fmt.record_sql} AS rec FROM d
), p AS (
  SELECT line_no, n, rec, CASE WHEN n <= {int(max_line)} THEN {guard}(json_transform(rec, '{structure}')) END AS j FROM r
)
SELECT line_no, (n > {int(max_line)} OR rec IS NULL OR {fmt.suspect}) AS suspect,
  {cols}
FROM p
"""


# First bytes of DuckDB's text of a JSON list, object or boolean
_MAY_NOT_BE_TEXT = np.zeros(256, dtype=bool)
_MAY_NOT_BE_TEXT[[ord("["), ord("{"), ord("t"), ord("f")]] = True
_OPENS = np.zeros(256, dtype=bool)
_OPENS[[ord("["), ord("{")]] = True
_OFFSET_TYPES: dict[pa.DataType, np.dtype[Any]] = {
    pa.string(): np.dtype(np.int32),
    pa.large_string(): np.dtype(np.int64),
}


def _not_text(value: str | None) -> bool:
    return value is not None and (value[:1] in ("[", "{") or value in ("true", "false"))


def _texts_not_strings(chunk: pa.Array) -> np.ndarray:
    """Rows of a text array whose value may be DuckDB's text of a JSON list, object or boolean:
    it starts with ``[`` or ``{``, or it is ``true`` or ``false``. The first bytes are read off
    the array's offsets with numpy (some microseconds for thousands of rows); only the few rows
    they leave are looked at as strings."""
    offset_type = _OFFSET_TYPES.get(chunk.type)
    if offset_type is None:  # another text layout (string_view, dictionary)
        return _texts_not_strings(chunk.cast(pa.large_string()))
    n = len(chunk)
    odd = np.zeros(n, dtype=bool)
    _, offsets_buf, data_buf = chunk.buffers()
    if n == 0 or data_buf is None or data_buf.size == 0:
        return odd
    offsets = np.frombuffer(
        offsets_buf, dtype=offset_type, count=n + 1, offset=chunk.offset * offset_type.itemsize
    )
    data = np.frombuffer(data_buf, dtype=np.uint8)
    # (an empty or null value may point past the end: clipped, and dropped by its length)
    first = data.take(offsets[:-1], mode="clip")
    rows = np.flatnonzero(_MAY_NOT_BE_TEXT[first])
    lengths = offsets[rows + 1] - offsets[rows]
    opens = _OPENS[first[rows]]
    rows = rows[(lengths > 0) & (opens | (lengths == 4) | (lengths == 5))]
    if rows.size:  # "tcp0" or "fast!" are fine, and a null is no value
        odd[rows] = [_not_text(v) for v in chunk.take(rows).to_pylist()]
    return odd


def _labels_not_strings(chunk: pa.Array) -> np.ndarray:
    """Rows of a list-of-labels array with an item that may not have been a ``k=v`` string: it
    starts with ``[`` or ``{`` (a list or an object), it has no ``=`` (a number, a boolean), or
    it is null."""
    items = pc.list_flatten(chunk)
    odd = pc.or_(
        pc.or_(pc.starts_with(items, "["), pc.starts_with(items, "{")),
        pc.invert(pc.match_substring(items, "=")),
    )
    rows = np.zeros(len(chunk), dtype=bool)
    rows[pc.list_parent_indices(chunk).filter(pc.fill_null(odd, True)).to_numpy()] = True  # null: JSON null
    return rows


def _plain_ints(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The integers a column of JSON texts of integers holds, and the rows whose text is not a
    plain integer. Each distinct odd text is read as JSON once: a whole number such as ``80.0``
    keeps its value (the diagnosis lets it pass), anything else (a string, a boolean, a fraction,
    an integer beyond 64 bits) is null."""
    try:
        return pc.cast(texts, pa.int64()), np.zeros(len(texts), dtype=bool)  # the usual case
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    encoded = pc.dictionary_encode(texts)
    values: list[int | None] = []
    odd: list[bool] = []
    for text in encoded.dictionary.to_pylist():
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        plain = isinstance(value, int) and not isinstance(value, bool)
        whole = isinstance(value, float) and value.is_integer()
        number = int(value) if plain or whole else None
        fits = number is not None and INT64_MIN <= number <= INT64_MAX
        values.append(number if fits else None)
        odd.append(not (plain and fits))
    codes = encoded.indices
    rows = pc.fill_null(pc.take(pa.array(odd, pa.bool_()), codes), False).to_numpy(zero_copy_only=False)
    return pc.take(pa.array(values, pa.int64()), codes), rows


def _check_by_arrow(fmt: Format, out: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """The rows that the checks ``fmt`` declares on the query's result make suspect
    (``text_columns``, ``json_ints``, ``not_null``, ``not_null_with``), and the result with each
    of ``json_ints`` an integer column (null where it was not an integer in range)."""
    suspect = np.zeros(out.num_rows, dtype=bool)
    if out.num_rows == 0:
        return suspect, out
    for name in fmt.text_columns:
        column = out[name]
        check = _labels_not_strings if pa.types.is_list(column.type) else _texts_not_strings
        suspect |= np.concatenate([check(chunk) for chunk in column.chunks])
    for name, (low, high) in fmt.json_ints.items():
        values, odd = _plain_ints(out[name].combine_chunks())
        outside = pc.fill_null(pc.or_(pc.less(values, low), pc.greater(values, high)), False)
        suspect |= odd | outside.to_numpy(zero_copy_only=False)
        values = pc.if_else(outside, pa.scalar(None, pa.int64()), values)
        out = out.set_column(
            out.schema.get_field_index(name), name, values.cast(ARROW_SCHEMA.field(name).type)
        )
    for name in fmt.not_null:
        suspect |= out[name].is_null().to_numpy(zero_copy_only=False)
    for name, together in fmt.not_null_with.items():
        present = out[name].is_valid().to_numpy(zero_copy_only=False)
        if present.any():
            for other in together:
                suspect |= present & out[other].is_null().to_numpy(zero_copy_only=False)
    return suspect, out


def _day_numbers(times: pa.ChunkedArray) -> np.ndarray:
    """The UTC day (days since 1970-01-01) of each timestamp of a column without nulls."""
    micros = times.combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    return micros // 86_400_000_000


# Min/max statistics for the flat columns, which queries filter on and readers prune row groups
# by; none for the values inside labels and traces, which no reader prunes by (they cost about
# a tenth of the writing time).
_STATISTICS = [f.name for f in ARROW_SCHEMA if not pa.types.is_nested(f.type)]


def _leaf_paths(name: str, type_: pa.DataType) -> list[str]:
    """The Parquet column paths of the leaves of a column (as pyarrow names them)."""
    if pa.types.is_map(type_):
        return _leaf_paths(f"{name}.key_value.key", type_.key_type) + _leaf_paths(
            f"{name}.key_value.value", type_.item_type
        )
    if pa.types.is_list(type_):
        return _leaf_paths(f"{name}.list.element", type_.value_type)
    if pa.types.is_struct(type_):
        return [path for f in type_ for path in _leaf_paths(f"{name}.{f.name}", f.type)]
    return [name]


# Columns that hold a new value in almost every row: a dictionary would only grow until the
# writer gives it up, so they are written plain (a store about 12 % smaller). Plain, not
# delta-encoded: every Parquet reader reads it (Spark before 3.3 cannot read delta encoding).
_PLAIN_COLUMNS = (
    "start_time",
    "end_time",
    "es_timestamp",
    "source_line",
    "bytes_in",
    "bytes_out",
    "packets_in",
    "packets_out",
)
_DICTIONARY_COLUMNS = [
    path for f in ARROW_SCHEMA for path in _leaf_paths(f.name, f.type) if path not in _PLAIN_COLUMNS
]


def _write_keys(start_time: pa.ChunkedArray, action: pa.ChunkedArray) -> np.ndarray:
    """Per row, the row group it belongs in: its UTC day times two, plus one if it was denied."""
    denied = pc.equal(action, "deny").fill_null(False).combine_chunks()
    return _day_numbers(start_time) * 2 + denied.to_numpy(zero_copy_only=False).astype(np.int64)


def _write_order(out: pa.Table, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the kept rows (whose start time is known) in the order the writer stores
    them, grouped by :func:`_write_keys` and in input order within a group, and their keys."""
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        return rows, rows
    picks = pa.array(rows)
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


class _FileWriter:
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
        # The hourly summary of what each file holds (see flowlens.summary): each batch is
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
        :func:`_write_keys`; a table in :func:`_write_order` is cut into slices without a copy)
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
            writer = pq.ParquetWriter(
                path,
                WRITE_SCHEMA,
                compression="zstd",
                compression_level=1,
                write_statistics=_STATISTICS,
                use_dictionary=_DICTIONARY_COLUMNS,
                # No Arrow schema in the file (it would be WRITE_SCHEMA's dictionaries): its
                # Parquet schema alone reads back as ARROW_SCHEMA.
                store_schema=False,
            )
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
        # DuckDB's threads (by default as many as it finds cores for this process) shared by the
        # batches parsed at once
        self.con = duckdb_connection(options.threads)
        setting = self.con.execute("SELECT current_setting('threads')").fetchone()
        threads = int(setting[0]) if setting else 1
        self._parallel = max(1, min(MAX_BATCHES_IN_FLIGHT, threads))
        self.con.execute(f"SET threads = {max(1, threads // self._parallel)}")  # an int: no values
        self.hits = _HitMapper()
        self.distinct = _DistinctJson(self.hits)
        self.leaves = _LeafDictionaries()
        self.manifest = json.loads(json.dumps(writer.manifest))
        self._seq = 0
        self._open_commit()
        self.bytes_done = 0
        self.rows_done = 0
        self.quarantine: list[dict[str, Any]] = []
        self._sql_cache: dict[str, tuple[str, ...]] = {}
        self._batch: list[tuple[pa.Array, int, Format, FileSummary]] = []
        self._batch_bytes = 0
        self._buffers = _Buffers(BATCH_BYTES + BLOCK_BYTES, keep=MAX_BATCHES_IN_FLIGHT + 2)
        self._newlines = np.empty(NEWLINE_SCAN_BYTES, dtype=bool)  # scratch for splitting lines
        self._workers = ThreadPoolExecutor(max_workers=self._parallel)
        self._inflight: list[Future[None]] = []
        # Batches are parsed side by side but staged one after the other, in the order they were
        # read: a turnstile of sequence numbers.
        self._turn = threading.Condition()
        self._next_seq = 0
        self._staging_seq = 0
        self._quarantine_lock = threading.Lock()

    def _open_commit(self) -> None:
        self.commit_id = f"{self.ingest_id}-{self._seq:03d}"
        self.stage = self.writer.stage(self.commit_id)
        self.files = _FileWriter(self.stage, self.commit_id)
        self._pending_sources: list[dict[str, Any]] = []

    # --- one source ---------------------------------------------------------------------

    def ingest_source(
        self, path: str, stdin: IO[bytes] | None, summary: IngestSummary, fmt_name: str | None = None
    ) -> FileSummary:
        fs = FileSummary(path=path)
        summary.files.append(fs)
        source = _Source(path, stdin)
        problems: list[str] = []
        with source.open() as stream:
            head = b""
            for block in _read_blocks(stream, problems):
                head += block[: HEAD_BYTES - len(head)]
                if len(head) >= HEAD_BYTES:
                    break
        if not head:
            if problems:
                # Compressed data that yields not one byte: keep what the file holds, so that
                # nothing disappears without a trace.
                fs.warnings.extend(problems)
                raw = source.raw_head(QUARANTINE_RAW_LIMIT + 1)
                self._quarantine_lines(
                    [raw], 1, get_format(fmt_name or self.options.format or "enterprise"), fs, problems[0]
                )
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
        key = _head_key(head)
        lineage, checkpoint = _find_resume(source, key, self.manifest)
        start_bytes = checkpoint["bytes"] if checkpoint else 0
        start_lines = checkpoint["lines"] if checkpoint else 0
        if lineage is None:
            lineage = {
                "id": f"{self.ingest_id}:{len(self.manifest['sources'])}",
                "head": key,
                "checkpoints": [],
            }
        fs.skipped = start_lines
        fs.lines_read = start_lines
        whole_document = _is_document(head, fmt.name)
        hasher = _ContentHash()
        consumed = 0
        line_no = start_lines
        with source.open() as stream, contextlib.closing(hasher):
            if whole_document:
                data = b"".join(_read_blocks(stream, fs.warnings))
                fs.bytes_read = len(data)
                self.bytes_done += len(data)
                hasher.update(data)
                consumed = len(data)
                if start_bytes != len(data):
                    fs.skipped = fs.lines_read = 0  # a changed document is read whole again
                    line_no = self._process(_document_items(data, fs), 0, fmt, fs)
            else:
                consumed, line_no = self._stream(stream, source, fmt, fs, hasher, start_bytes, start_lines)
        if consumed > start_bytes or (consumed and not lineage["checkpoints"]):
            if lineage not in self.manifest["sources"]:
                self.manifest["sources"].append(lineage)
            lineage["checkpoints"] = _keep_checkpoints(
                [
                    *lineage["checkpoints"],
                    {"bytes": consumed, "lines": line_no, CHECKPOINT_HASH: hasher.hexdigest()},
                ]
            )
            lineage["path"] = path
            lineage["format"] = fmt.name
            lineage["last_ingest"] = self.ingest_id
        return fs

    def _stream(
        self,
        stream: IO[bytes],
        source: _Source,
        fmt: Format,
        fs: FileSummary,
        hasher: Any,
        start_bytes: int,
        start_lines: int,
    ) -> tuple[int, int]:
        """Read a line-oriented source from its checkpoint on; return (bytes consumed, lines).

        Blocks are read straight into a batch buffer, one after the other, and the whole lines of
        each are handed over in place; a partial line stays where it is and is completed by the
        next block. The lines of one buffer are thus contiguous and reach DuckDB without a copy
        (see :func:`_join_lines`). A full buffer's partial line moves to the next buffer."""
        consumed = 0
        line_no = start_lines
        filler = _Filler(stream, fs.warnings)
        skip = start_bytes  # already ingested: read and hashed only
        buf = self._buffers.get()
        fill = 0  # bytes in the buffer
        done = 0  # bytes of it handed over
        while True:
            if fill == len(buf):  # a line longer than the buffer
                bigger = np.empty(2 * len(buf), dtype=np.uint8)
                bigger[:fill] = buf[:fill]
                buf = bigger
            got = filler.into(buf.data[fill : fill + min(BLOCK_BYTES, len(buf) - fill)])
            if not got:
                break
            fs.bytes_read += got
            self.bytes_done += got
            if skip:
                n = min(skip, got)
                hasher.update(buf[fill : fill + n].tobytes())  # a copy: this memory is reused now
                buf[fill : fill + got - n] = buf[fill + n : fill + got].copy()
                skip -= n
                consumed += n
                got -= n
            cut = _last_newline(buf, fill + got, max(done, fill)) + 1
            fill += got
            if cut:
                chunk = buf.data[done:cut]  # no copy: the lines point into the buffer
                line_no += self._process(chunk, line_no, fmt, fs)
                hasher.update(chunk)
                consumed += cut - done
                done = cut
                del chunk
                if self.progress:
                    self.progress(self.bytes_done, self.rows_done)
            if fill >= BATCH_BYTES:
                self.flush_batch(wait=False)  # a batch never spans two buffers
                following = self._buffers.get()
                following[: fill - done] = buf[done:fill]
                buf, fill, done = following, fill - done, 0
        carry_from = done
        if fill > carry_from:
            carry = buf[carry_from:fill].tobytes()
            if any("damaged" in w for w in fs.warnings):
                line_no += self._quarantine_lines(
                    [carry], line_no + 1, fmt, fs, "truncated: the compressed data ends inside this line"
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

    # --- one block of lines -------------------------------------------------------------

    def _process(self, chunk: bytes | memoryview, first_line: int, fmt: Format, fs: FileSummary) -> int:
        """Queue ``chunk`` (whole lines, each ending in a newline); return how many lines it had.

        Lines are parsed in batches of at least BATCH_BYTES, across files of one format, so that
        many small rotated files cost no more than one large one."""
        buf = np.frombuffer(chunk, dtype=np.uint8)
        ends = _newline_positions(buf, self._newlines)
        count = len(ends)
        if count == 0:
            return 0
        # Zero-copy: each line keeps its newline (JSON ignores trailing white space) and the
        # Arrow array points straight into the chunk.
        offsets = np.empty(count + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends + 1
        lines = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(chunk)]
        )
        fs.lines_read += count
        if self._batch and self._batch[0][2] is not fmt:
            self.flush_batch(wait=False)
        self._batch.append((lines, first_line, fmt, fs))
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= BATCH_BYTES:
            self.flush_batch(wait=False)
        return count

    def flush_batch(self, *, wait: bool = True) -> None:
        """Hand the queued lines to a worker; with ``wait``, also finish every batch in flight.

        Workers parse batches (DuckDB releases the GIL) while this thread reads and splits the
        next one; at most MAX_BATCHES_IN_FLIGHT are in flight, which bounds memory."""
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            while len(self._inflight) >= self._parallel:
                self._inflight.pop(0).result()
            self._inflight.append(self._workers.submit(self._run_batch, batch, self._next_seq))
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

    def _run_batch(self, batch: list[tuple[pa.Array, int, Format, FileSummary]], seq: int) -> None:
        """Parse one batch with one DuckDB query (on this thread's own cursor), then stage its rows
        when every batch read before it has been staged."""
        try:
            fmt, lines, line_nos, file_idx, out = self._parse(batch)
            checked, out = _check_by_arrow(fmt, out)
            # NULL (a NULL compared with a set) is not suspect
            suspect = pc.fill_null(out["suspect"], False).to_numpy(zero_copy_only=False) | checked
            with self._turn:
                self._turn.wait_for(lambda: self._staging_seq == seq)
            # Only this batch stages now; the rest touches shared state (hit cache, row writer,
            # counters, quarantine).
            self._stage_rows(batch, fmt, lines, line_nos, file_idx, out, suspect)
        finally:
            with self._turn:
                self._turn.wait_for(lambda: self._staging_seq == seq)
                self._staging_seq += 1
                self._turn.notify_all()

    def _parse(
        self, batch: list[tuple[pa.Array, int, Format, FileSummary]]
    ) -> tuple[Format, pa.Array, np.ndarray, np.ndarray, pa.Table]:
        fmt = batch[0][2]
        lines = _join_lines([item[0] for item in batch])
        line_nos = np.concatenate(
            [np.arange(first + 1, first + len(arr) + 1, dtype=np.int64) for arr, first, _, _ in batch]
        )
        file_idx = np.repeat(np.arange(len(batch), dtype=np.int64), [len(item[0]) for item in batch])
        raw = pa.Table.from_arrays([lines, pa.array(line_nos)], names=["line", "line_no"])
        import duckdb

        queries = self._sql_cache.get(fmt.name)
        if queries is None:
            queries = self._sql_cache[fmt.name] = tuple(
                _select_sql(fmt, self.options.max_line_bytes, guarded=guarded) for guarded in (False, True)
            )
        params = {"cluster_override": self.options.cluster, "cluster_default": self.options.default_cluster}
        with self._turn:  # one cursor made at a time from the shared connection
            cursor = configure_session(self.con.cursor())
        try:
            cursor.register("raw_lines", pa.Table.from_batches(raw.to_batches(max_chunksize=4096)))
            try:
                out = cursor.sql(queries[0], params=params).to_arrow_table()
            except duckdb.Error:  # a line that is not UTF-8 or not JSON: the guarded query
                out = cursor.sql(queries[1], params=params).to_arrow_table()
        finally:
            cursor.close()
        return fmt, lines, line_nos, file_idx, out

    def _stage_rows(
        self,
        batch: list[tuple[pa.Array, int, Format, FileSummary]],
        fmt: Format,
        lines: pa.Array,
        line_nos: np.ndarray,
        file_idx: np.ndarray,
        out: pa.Table,
        suspect: np.ndarray,
    ) -> None:
        files = [item[3] for item in batch]
        count = len(lines)
        bad = np.zeros(count, dtype=bool)
        reasons: dict[int, str] = {}
        ignored = np.zeros(count, dtype=bool)

        def mark(rows: np.ndarray, why: dict[int, str], suffix: str = "") -> None:
            for idx in np.flatnonzero(rows & ~bad & ~ignored):
                bad[idx] = True
                reasons[int(idx)] = why[int(idx)] + suffix

        # Columns from JSON text, converted once per distinct text. A value of the wrong shape
        # makes its record suspect, so that the diagnosis names the field.
        converted: dict[str, tuple[list[Any], pa.Array, np.ndarray, dict[int, str]]] = {}
        wrong_shape = np.zeros(count, dtype=bool)
        for name in fmt.json_columns:
            values, codes, bad_rows, why, shape = self.distinct.map(name, out[JSON_PREFIX + name])
            converted[name] = (values, codes, bad_rows, why)
            wrong_shape |= shape
        suspect = suspect | wrong_shape
        if suspect.any():
            for idx in np.flatnonzero(suspect):
                verdict = self._diagnose(_line_bytes(lines, int(idx)), fmt)
                if verdict == "":
                    ignored[idx] = True
                elif verdict is not None:
                    bad[idx] = True
                    reasons[int(idx)] = verdict
        # A value of the wrong shape that the diagnosis lets pass still has no column value.
        for idx in np.flatnonzero(wrong_shape & ~bad & ~ignored):
            bad[idx] = True
            reasons[int(idx)] = (
                "the record could not be converted (labels or policies of an unexpected shape)"
            )
        # Rows the SQL could not turn into a timestamp are never stored, whatever the diagnosis.
        no_time = out["start_time"].is_null().to_numpy(zero_copy_only=False) & ~bad & ~ignored
        for idx in np.flatnonzero(no_time):
            bad[idx] = True
            reasons[int(idx)] = "the record could not be converted (start_time missing or invalid)"
        # Converted columns: the distinct values and each row's code (None: a value per row).
        columns: dict[str, tuple[pa.Array, pa.Array | None]] = {}
        for col in POLICY_COLUMNS:
            if col in out.column_names:
                mapped, bad_hits, hit_reasons = self.hits.map(out[col])
                columns[col] = (mapped, None)
                mark(bad_hits, hit_reasons)
        if "policies" in converted:
            values, codes, bad_rows, why = converted["policies"]
            for i, col in enumerate(POLICY_COLUMNS):
                traces = [v[i] if v is not None else None for v in values]
                columns[col] = (pa.array(traces, POLICY_LIST), codes)
            mark(bad_rows, why)
        for col in ("source_labels", "dest_labels"):
            if col in converted:
                values, codes, bad_rows, why = converted[col]
                columns[col] = (pa.array(values, LABELS), codes)
                mark(bad_rows, why)
            else:
                mapped, bad_labels, label_reasons = labels_to_map(out[col])
                columns[col] = (mapped, None)
                mark(bad_labels, label_reasons, f" in '{col}'")
        keep = ~bad & ~ignored
        for idx in np.flatnonzero(bad):
            fs = files[file_idx[idx]]
            self._quarantine_one(_line_bytes(lines, int(idx)), int(line_nos[idx]), reasons[int(idx)], fmt, fs)
        # The kept rows, put in the writer's order by the one take each column needs anyway (the
        # nested columns are built by a take of their distinct values): the writer then cuts
        # the batch into its row groups without copying it again.
        order, keys = _write_order(out, keep)
        picks = pa.array(order)
        row_codes: dict[int, pa.Array] = {}  # the policy columns share one array of codes

        def rows_of(codes: pa.Array | None) -> pa.Array:
            if codes is None:
                return picks
            if id(codes) not in row_codes:
                row_codes[id(codes)] = codes.take(picks)
            return row_codes[id(codes)]

        # Distinct values are encoded before their take; values per row after the summary's hits
        # are picked from their plain strings (below).
        built = {
            name: (self.leaves.encode(name, values) if codes is not None else values).take(rows_of(codes))
            for name, (values, codes) in columns.items()
        }
        enforced, enforced_codes = columns.get("enforced_policies", (None, None))
        pending, pending_codes = columns.get("pending_policies", (None, None))
        if enforced is not None and pending is not None and enforced_codes is pending_codes is not None:
            # The summary's deciding hits, picked once per distinct pair of traces.
            hits = {
                name: per_trace.take(rows_of(enforced_codes))
                for name, per_trace in deciding_hits(enforced, pending).items()
            }
        else:

            def plain(name: str) -> pa.Array:
                if name not in columns:
                    return pa.nulls(len(order), POLICY_LIST)
                values, codes = columns[name]
                return values.take(rows_of(codes)) if codes is not None else built[name]

            hits = deciding_hits(plain("enforced_policies"), plain("pending_policies"))
        for name, (_, codes) in columns.items():
            if codes is None:
                built[name] = self.leaves.encode(name, built[name])
        dropped = [c for c in out.column_names if c in built or c.startswith(JSON_PREFIX) or c == "suspect"]
        # (a file read in several blocks is several entries of ``files``, with one code)
        paths = self.leaves.encode("source_file", pa.array([f.path for f in files], pa.string()))
        paths = paths.take(pa.array(file_idx[order]))
        table = self._to_schema(out.drop_columns(dropped).take(picks), built, fmt, paths, line_nos[order])
        self.files.add(table, keys, hits)
        kept_per_file = np.bincount(file_idx[keep], minlength=len(files))
        ignored_per_file = np.bincount(file_idx[ignored], minlength=len(files))
        for i, fs in enumerate(files):
            fs.rows += int(kept_per_file[i])
            fs.ignored += int(ignored_per_file[i])
        self.rows_done += int(keep.sum())
        if table.num_rows:
            self._note_missing(table, files, file_idx[order])

    def _note_missing(self, table: pa.Table, files: list[FileSummary], file_of_row: np.ndarray) -> None:
        """Warn once per file about columns Felix was told not to log: a column null in every row
        a batch holds of that file."""
        checks = (
            (
                "source_labels",
                "labels were not logged (Felix flowLogsFileIncludeLabels is off): label columns are null",
            ),
            (
                "enforced_policies",
                "policies were not logged (Felix flowLogsFileIncludePolicies is off): policy columns are null",
            ),
            ("dest_service_name", "service fields were not logged (Felix flowLogsFileIncludeService is off)"),
        )
        # A batch lists a file once per block it read from it: count rows per distinct file.
        slot: dict[int, int] = {}
        unique: list[FileSummary] = []
        for fs in files:
            if id(fs) not in slot:
                slot[id(fs)] = len(unique)
                unique.append(fs)
        rows_of = np.array([slot[id(fs)] for fs in files], dtype=np.int64)[file_of_row]
        rows = np.bincount(rows_of, minlength=len(unique))

        def all_null(col: str) -> np.ndarray:
            column = table[col]
            if column.null_count == 0:
                return np.zeros(len(unique), dtype=bool)
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            return (np.bincount(rows_of, weights=nulls, minlength=len(unique)) == rows) & (rows > 0)

        for col, text in checks:
            missing = all_null(col)
            if col == "enforced_policies":
                missing &= all_null("all_policies")
            for i in np.flatnonzero(missing):
                fs = unique[i]
                if fs.format in ("enterprise", "elasticsearch") and text not in fs.warnings:
                    fs.warnings.append(text)

    def _diagnose(self, raw_line: bytes, fmt: Format) -> str | None:
        """Why a suspect line is bad; None if it is fine after all; '' if it carries no record."""
        if len(raw_line) > self.options.max_line_bytes:
            return f"line too long ({len(raw_line)} bytes; the limit is {self.options.max_line_bytes})"
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"invalid UTF-8 at byte {exc.start}"
        stripped = text.strip()
        if fmt.name == "whisker":
            if not stripped or stripped.startswith(fmt.ignorable):
                return ""
            if stripped.startswith("error:"):
                return f"event stream error: {stripped[6:].strip()}"
            if stripped.startswith("data:"):
                stripped = stripped[5:].strip()
        if not stripped:
            return "blank line"
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            return f"invalid JSON: {exc}"
        return fmt.diagnose(doc)

    def _quarantine_lines(
        self, raws: list[bytes], first: int, fmt: Format, fs: FileSummary, reason: str
    ) -> int:
        for i, raw_line in enumerate(raws):
            fs.lines_read += 1
            self._quarantine_one(raw_line, first + i, reason, fmt, fs)
        return len(raws)

    def _quarantine_one(
        self, raw_line: bytes, line_no: int, reason: str, fmt: Format, fs: FileSummary
    ) -> None:
        if self.options.strict:
            raise StrictModeError(f"{fs.path}:{line_no}: {reason} (--strict: nothing was written)")
        # The reading thread quarantines a file's cut last line while a worker may still be
        # staging that file's batches.
        with self._quarantine_lock:
            self._quarantine_locked(raw_line, line_no, reason, fmt, fs)

    def _quarantine_locked(
        self, raw_line: bytes, line_no: int, reason: str, fmt: Format, fs: FileSummary
    ) -> None:
        fs.quarantined += 1
        if len(self.quarantine) >= 10_000:
            self._flush_quarantine_locked()
        key = reason.split(":", 1)[0] if reason.startswith(("invalid JSON", "invalid policy hit")) else reason
        key = key if len(key) <= 80 else key[:77] + "..."
        fs.reasons[key] = fs.reasons.get(key, 0) + 1
        truncated = len(raw_line) > QUARANTINE_RAW_LIMIT
        kept = raw_line[:QUARANTINE_RAW_LIMIT]
        self.quarantine.append(
            {
                "ingest_id": self.ingest_id,
                "source_file": fs.path,
                "source_line": line_no,
                "format": fmt.name,
                "reason": reason,
                "text": kept.decode("utf-8", errors="replace"),
                "raw": kept,
                "raw_truncated": truncated,
            }
        )

    def _to_schema(
        self, out: pa.Table, policy_cols: dict[str, Any], fmt: Format, paths: pa.Array, line_nos: np.ndarray
    ) -> pa.Table:
        n = out.num_rows
        arrays = []
        for f in WRITE_SCHEMA:
            if f.name in policy_cols:
                arrays.append(policy_cols[f.name])
            elif f.name in out.column_names:
                col = out[f.name]
                arrays.append(col if col.type == f.type else col.cast(f.type))
            elif f.name == "format":
                arrays.append(self.leaves.repeat("format", fmt.name, n))
            elif f.name == "ingest_id":
                arrays.append(self.leaves.repeat("ingest_id", self.ingest_id, n))
            elif f.name == "source_file":
                arrays.append(paths)
            elif f.name == "source_line":
                arrays.append(pa.array(line_nos))
            else:
                arrays.append(pa.nulls(n, f.type))
        return pa.Table.from_arrays(arrays, schema=WRITE_SCHEMA)

    # --- commits ------------------------------------------------------------------------

    def maybe_commit(self, summary: IngestSummary) -> None:
        if not self.options.strict and self.files.rows >= ROWS_PER_COMMIT:
            self.commit(summary, final=False)

    def _flush_quarantine(self) -> None:
        with self._quarantine_lock:
            self._flush_quarantine_locked()

    def _flush_quarantine_locked(self) -> None:
        if not self.quarantine:
            return
        self._qseq = getattr(self, "_qseq", 0) + 1
        path = self.stage / "quarantine" / f"{self.commit_id}-{self._qseq:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(self.quarantine, schema=quarantine_schema()), path, compression="zstd"
        )
        self.quarantine = []

    def commit(self, summary: IngestSummary, *, final: bool) -> None:
        """Make everything staged so far visible, with the manifest that describes it."""
        self.flush_batch()
        summary.partitions |= self.files.close()
        self._flush_quarantine()
        if final:
            entry = {k: v for k, v in summary.as_dict().items() if k != "per_file"}
            entry["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self.manifest["ingests"] = [*self.manifest.get("ingests", []), entry][-500:]
        self.writer.commit(self.stage, self.manifest)
        if not final:
            self._seq += 1
            self._open_commit()

    def abort(self) -> None:
        self._batch = []
        with contextlib.suppress(Exception):
            self.flush_batch()  # let batches in flight finish before their files are removed
        self.files.close()
        self.writer.abort(self.stage)

    def close(self) -> None:
        self._workers.shutdown(wait=True)
        self.con.close()


def _line_bytes(lines: pa.Array, idx: int) -> bytes:
    """One line without its line ending."""
    raw: bytes = lines[idx].as_py()
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


def _is_document(head: bytes, fmt: str) -> bool:
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


def _document_items(data: bytes, fs: FileSummary) -> bytes:
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


def _keep_checkpoints(checkpoints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique = {cp["bytes"]: cp for cp in checkpoints}
    ordered = [unique[k] for k in sorted(unique)]
    if len(ordered) > MAX_CHECKPOINTS:
        ordered = ordered[:1] + ordered[-(MAX_CHECKPOINTS - 1) :]
    return ordered


def ingest(
    store: Store,
    paths: Iterable[str | tuple[str, str | None]],
    options: IngestOptions | None = None,
    *,
    stdin: IO[bytes] | None = None,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
) -> IngestSummary:
    """Ingest ``paths`` (files, directories, globs, ``-``; or ``(path, format)`` pairs) into ``store``
    and return the summary. Raises StrictModeError (nothing written) in strict mode on a bad line."""

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
    with open_writer(store) as writer:
        summary.recovered = writer.recovered
        run = Ingester(writer, options, ingest_id, progress)
        try:
            for path, fmt_name in files:
                run.ingest_source(path, stdin, summary, fmt_name)
                run.maybe_commit(summary)
            summary.seconds = time.perf_counter() - started
            run.commit(summary, final=True)
            # A store written before summaries existed gets them now (see flowlens.summary).
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


__all__ = ["FileSummary", "IngestOptions", "IngestSummary", "expand_sources", "ingest"]
