"""Accounting: every line an ingest reads ends up counted once, and nothing is lost.

Per source, :class:`FileSummary` counts the lines read, and they always add up: lines read =
rows stored + lines quarantined + lines skipped as already ingested + framing lines ignored
(event-stream ``event:``/``id:`` lines and blank separators only). :class:`IngestSummary` is the
run's report (and the manifest's record of it). :class:`Quarantine` keeps each bad line, with
its file, line number, reason and raw bytes, for the quarantine files of the commit being
staged (schema: :func:`flowlens.store.quarantine_schema`); in strict mode the first bad line
stops the run instead, before anything is committed.

A live collector counts into a :class:`FileSummary` of its own per stream and quarantines
through the same :class:`Quarantine`, so that its counts add up the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowlens.errors import StrictModeError
from flowlens.store import quarantine_schema

QUARANTINE_RAW_LIMIT = 64 * 1024
# Quarantined lines wait in memory until this many, or this many bytes of them, then go to the
# commit's quarantine file as a row group: the quarantine is held on disk, not in memory.
QUARANTINE_ROWS_BUFFERED = 10_000
QUARANTINE_BYTES_BUFFERED = 16 * 1024 * 1024


@dataclass
class FileSummary:
    """What happened to one source."""

    path: str
    format: str | None = None
    lines_read: int = 0
    rows: int = 0
    quarantined: int = 0
    skipped: int = 0
    #: of the lines skipped, those read past the checkpoint resumed from whose record was found
    #: stored already, one by one (a copy that diverges from what is stored: flowlens.ingest.dedupe)
    already_stored: int = 0
    ignored: int = 0
    pending_bytes: int = 0
    bytes_read: int = 0
    #: lines the fast path could not vouch for, examined one by one in Python (bad lines, and
    #: valid ones a cheap test could not tell from bad: none of the layouts Calico writes)
    diagnosed: int = 0
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    #: why the file could not be read to its end (or at all), when that needs the user: the run
    #: went on with the other files, and ``flowlens ingest`` exits with code 3
    error: str | None = None

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
    maintenance: list[str] = field(default_factory=list)  # compaction and retention after the run
    seconds: float = 0.0

    def total(self, name: str) -> int:
        return int(sum(getattr(f, name) for f in self.files))

    @property
    def balanced(self) -> bool:
        return all(f.balanced for f in self.files)

    @property
    def errors(self) -> list[str]:
        """One line per file that could not be read to its end: ``path: problem``."""
        return [f"{f.path}: {f.error}" for f in self.files if f.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ingest_id": self.ingest_id,
            "store": self.store,
            "files": len(self.files),
            "lines_read": self.total("lines_read"),
            "rows": self.total("rows"),
            "quarantined": self.total("quarantined"),
            "skipped_already_ingested": self.total("skipped"),
            "already_stored": self.total("already_stored"),
            "ignored": self.total("ignored"),
            "pending_bytes": self.total("pending_bytes"),
            "bytes_read": self.total("bytes_read"),
            "partitions": sorted(self.partitions),
            "passed_over": self.passed_over,
            "maintenance": self.maintenance,
            "seconds": round(self.seconds, 3),
            "balanced": self.balanced,
            "errors": self.errors,
            "per_file": [
                {
                    "path": f.path,
                    "format": f.format,
                    "lines_read": f.lines_read,
                    "rows": f.rows,
                    "quarantined": f.quarantined,
                    "skipped_already_ingested": f.skipped,
                    "already_stored": f.already_stored,
                    "ignored": f.ignored,
                    "pending_bytes": f.pending_bytes,
                    "reasons": dict(sorted(f.reasons.items())),
                    "warnings": f.warnings,
                    "error": f.error,
                }
                for f in self.files
            ],
        }


def _coded(type_: pa.DataType) -> pa.DataType:
    return pa.dictionary(pa.int32(), type_) if type_ in (pa.string(), pa.binary()) else type_


def quarantine_write_schema() -> pa.Schema:
    """What the quarantine writer is handed: the quarantine schema with its strings and bytes as
    codes into their distinct values (a million copies of one bad line are one value and a
    million codes). Written without an Arrow schema, the files read back as the plain schema."""
    return pa.schema([pa.field(f.name, _coded(f.type)) for f in quarantine_schema()])


def _codes(codes: np.ndarray | pa.Array, values: pa.Array) -> pa.DictionaryArray:
    indices = codes if isinstance(codes, pa.Array) else pa.array(codes, pa.int32())
    return pa.DictionaryArray.from_arrays(indices.cast(pa.int32()), values)


def reason_key(reason: str) -> str:
    """The reason a quarantined line is counted under in the summary (per kind of JSON error and
    of policy hit, not per message; at most 80 characters)."""
    key = reason.split(":", 1)[0] if reason.startswith(("invalid JSON", "invalid policy hit")) else reason
    return key if len(key) <= 80 else key[:77] + "..."


def without_line_end(raw: bytes) -> bytes:
    """A line without its line ending."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


class Quarantine:
    """Bad lines, counted in their :class:`FileSummary` (in all and by reason) and written, a row
    group at a time, into the quarantine file of the commit being staged (:meth:`stage_into`).
    Memory holds at most QUARANTINE_ROWS_BUFFERED lines or QUARANTINE_BYTES_BUFFERED bytes of
    them; the raw bytes kept per line are at most QUARANTINE_RAW_LIMIT. Thread-safe: the reading
    thread quarantines a line past the length limit while a worker may be staging batches."""

    def __init__(self, ingest_id: str, *, strict: bool) -> None:
        self.ingest_id = ingest_id
        self.strict = strict
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._row_bytes = 0
        self._seq = 0  # quarantine files written by this run, across its commits
        self._stage: Path | None = None
        self._commit_id = ""
        self._writer: pq.ParquetWriter | None = None

    def stage_into(self, stage: Path, commit_id: str) -> None:
        """From now on, write quarantine files into ``stage``, the staging folder of ``commit_id``."""
        with self._lock:
            self._close_locked()
            self._stage, self._commit_id = stage, commit_id

    def lines(
        self,
        raws: list[bytes],
        first: int,
        fmt: str,
        fs: FileSummary,
        reason: str,
        *,
        truncated: bool = False,
    ) -> int:
        """Read and quarantine ``raws`` (lines ``first``, ``first + 1``, ...) for one reason; their
        count. ``truncated``: the raws are only the first bytes of their lines."""
        for i, raw_line in enumerate(raws):
            fs.lines_read += 1
            self.add(raw_line, first + i, reason, fmt, fs, truncated=truncated)
        return len(raws)

    def add(
        self,
        raw_line: bytes,
        line_no: int,
        reason: str,
        fmt: str,
        fs: FileSummary,
        *,
        truncated: bool = False,
    ) -> None:
        """Quarantine one line (already counted as read); in strict mode, stop the run."""
        if self.strict:
            raise StrictModeError(f"{fs.path}:{line_no}: {reason} (--strict: nothing was written)")
        kept = raw_line[:QUARANTINE_RAW_LIMIT]
        with self._lock:
            fs.quarantined += 1
            key = reason_key(reason)
            fs.reasons[key] = fs.reasons.get(key, 0) + 1
            self._rows.append(
                {
                    "ingest_id": self.ingest_id,
                    "source_file": fs.path,
                    "source_line": line_no,
                    "format": fmt,
                    "reason": reason,
                    "text": kept.decode("utf-8", errors="replace"),
                    "raw": kept,
                    "raw_truncated": truncated or len(raw_line) > QUARANTINE_RAW_LIMIT,
                }
            )
            self._row_bytes += 2 * len(kept)
            if len(self._rows) >= QUARANTINE_ROWS_BUFFERED or self._row_bytes >= QUARANTINE_BYTES_BUFFERED:
                self._write_rows_locked()

    def add_rows(
        self,
        lines: pa.Array,
        rows: np.ndarray,
        line_nos: np.ndarray,
        reason_codes: np.ndarray,
        reasons: Sequence[str],
        fmt: str,
        files: Sequence[FileSummary],
        file_idx: np.ndarray,
    ) -> None:
        """Quarantine the lines ``rows`` of ``lines`` (each with its line ending): row ``i`` is line
        ``line_nos[i]`` of ``files[file_idx[i]]``, bad for ``reasons[reason_codes[i]]``. Each
        distinct line is decoded once, so that a million copies of one bad line cost little."""
        if len(rows) == 0:
            return
        if self.strict:
            fs = files[int(file_idx[0])]  # (rows in read order: the first is the first bad line)
            raise StrictModeError(
                f"{fs.path}:{int(line_nos[0])}: {reasons[int(reason_codes[0])]} (--strict: nothing was written)"
            )
        encoded = pc.dictionary_encode(lines.take(pa.array(rows)))
        texts, raws, cut, sizes = [], [], [], []
        for value in encoded.dictionary.to_pylist():
            raw = without_line_end(value)
            kept = raw[:QUARANTINE_RAW_LIMIT]
            raws.append(kept)
            texts.append(kept.decode("utf-8", errors="replace"))
            cut.append(len(raw) > QUARANTINE_RAW_LIMIT)
            sizes.append(2 * len(kept) + 64)
        codes = encoded.indices
        n = len(rows)
        zeros = np.zeros(n, np.int32)
        table = pa.table(
            {
                "ingest_id": _codes(zeros, pa.array([self.ingest_id], pa.string())),
                "source_file": _codes(file_idx, pa.array([f.path for f in files], pa.string())),
                "source_line": pa.array(line_nos, pa.int64()),
                "format": _codes(zeros, pa.array([fmt], pa.string())),
                "reason": _codes(reason_codes, pa.array(list(reasons), pa.string())),
                "text": _codes(codes, pa.array(texts, pa.string())),
                "raw": _codes(codes, pa.array(raws, pa.binary())),
                "raw_truncated": pa.array(cut, pa.bool_()).take(codes),
            },
            schema=quarantine_write_schema(),
        )
        row_bytes = np.asarray(sizes, dtype=np.int64)[codes.to_numpy(zero_copy_only=False)]
        # counted per file and reason
        pair = file_idx.astype(np.int64) * (len(reasons) + 1) + reason_codes
        pairs, counts = np.unique(pair, return_counts=True)
        with self._lock:
            for value, count in zip(pairs.tolist(), counts.tolist(), strict=True):
                fs = files[value // (len(reasons) + 1)]
                key = reason_key(reasons[value % (len(reasons) + 1)])
                fs.quarantined += count
                fs.reasons[key] = fs.reasons.get(key, 0) + count
            self._write_rows_locked()
            # row groups of bounded size (a row keeps up to 64 KiB twice: text and raw)
            ends = np.cumsum(row_bytes)
            start = 0
            while start < n:
                limit = (ends[start - 1] if start else 0) + QUARANTINE_BYTES_BUFFERED
                stop = max(
                    start + 1, min(start + 8 * QUARANTINE_ROWS_BUFFERED, int(np.searchsorted(ends, limit)))
                )
                self._write_locked(table.slice(start, stop - start))
                start = stop

    def flush(self) -> None:
        """Write the lines kept so far and close the commit's quarantine file."""
        with self._lock:
            self._write_rows_locked()
            self._close_locked()

    def abandon(self) -> None:
        """Forget the lines kept so far and close the file, ignoring errors (the commit is being
        thrown away)."""
        with self._lock:
            self._rows, self._row_bytes = [], 0
            writer, self._writer = self._writer, None
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()

    def _write_rows_locked(self) -> None:
        if not self._rows:
            return
        rows, self._rows, self._row_bytes = self._rows, [], 0
        self._write_locked(
            pa.Table.from_pylist(rows, schema=quarantine_schema()).cast(quarantine_write_schema())
        )

    def _write_locked(self, table: pa.Table) -> None:
        if self._writer is None:
            if self._stage is None:
                raise RuntimeError("quarantined lines but no commit is being staged")
            self._seq += 1
            path = self._stage / "quarantine" / f"{self._commit_id}-{self._seq:03d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(
                path, quarantine_write_schema(), compression="zstd", store_schema=False
            )
        self._writer.write_table(table)

    def _close_locked(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
