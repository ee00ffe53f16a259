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

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.errors import StrictModeError
from flowlens.store import quarantine_schema

QUARANTINE_RAW_LIMIT = 64 * 1024
QUARANTINE_ROWS_BUFFERED = 10_000  # written out to a file of their own when this many wait


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
    #: lines the fast path could not vouch for, examined one by one in Python (bad lines, and
    #: valid ones a cheap test could not tell from bad: none of the layouts Calico writes)
    diagnosed: int = 0
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


class Quarantine:
    """Bad lines, counted in their :class:`FileSummary` (in all and by reason) and kept for the
    quarantine files of the commit being staged (:meth:`stage_into`). Thread-safe: the reading
    thread quarantines a file's cut last line while a worker may still be staging that file's
    batches."""

    def __init__(self, ingest_id: str, *, strict: bool) -> None:
        self.ingest_id = ingest_id
        self.strict = strict
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._seq = 0  # quarantine files written by this run, across its commits
        self._stage: Path | None = None
        self._commit_id = ""

    def stage_into(self, stage: Path, commit_id: str) -> None:
        """From now on, write quarantine files into ``stage``, the staging folder of ``commit_id``."""
        with self._lock:
            self._stage, self._commit_id = stage, commit_id

    def lines(self, raws: list[bytes], first: int, fmt: str, fs: FileSummary, reason: str) -> int:
        """Read and quarantine ``raws`` (lines ``first``, ``first + 1``, ...) for one reason; their count."""
        for i, raw_line in enumerate(raws):
            fs.lines_read += 1
            self.add(raw_line, first + i, reason, fmt, fs)
        return len(raws)

    def add(self, raw_line: bytes, line_no: int, reason: str, fmt: str, fs: FileSummary) -> None:
        """Quarantine one line (already counted as read); in strict mode, stop the run."""
        if self.strict:
            raise StrictModeError(f"{fs.path}:{line_no}: {reason} (--strict: nothing was written)")
        with self._lock:
            fs.quarantined += 1
            if len(self._rows) >= QUARANTINE_ROWS_BUFFERED:
                self._flush_locked()
            key = (
                reason.split(":", 1)[0]
                if reason.startswith(("invalid JSON", "invalid policy hit"))
                else reason
            )
            key = key if len(key) <= 80 else key[:77] + "..."
            fs.reasons[key] = fs.reasons.get(key, 0) + 1
            truncated = len(raw_line) > QUARANTINE_RAW_LIMIT
            kept = raw_line[:QUARANTINE_RAW_LIMIT]
            self._rows.append(
                {
                    "ingest_id": self.ingest_id,
                    "source_file": fs.path,
                    "source_line": line_no,
                    "format": fmt,
                    "reason": reason,
                    "text": kept.decode("utf-8", errors="replace"),
                    "raw": kept,
                    "raw_truncated": truncated,
                }
            )

    def flush(self) -> None:
        """Write the lines kept so far into a quarantine file of the commit being staged."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._rows:
            return
        if self._stage is None:
            raise RuntimeError("quarantined lines but no commit is being staged")
        self._seq += 1
        path = self._stage / "quarantine" / f"{self._commit_id}-{self._seq:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self._rows, schema=quarantine_schema()), path, compression="zstd")
        self._rows = []
