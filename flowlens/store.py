"""The store on disk: layout, manifest, atomic commit, lock, quarantine.

Layout::

    <store>/flows/date=YYYY-MM-DD/<ingest>-<n>.parquet   hive-partitioned flow rows
    <store>/quarantine/<ingest>-<n>.parquet              bad lines: file, line, reason, raw bytes
    <store>/manifest.json                                what was ingested: sources and ingests
    <store>/.staging/<ingest>-<n>/                       a commit being prepared (never read)
    <store>/.lock                                        held by the one writer

A commit is made visible in three steps: its files are written under ``.staging``, then a
``commit.json`` naming every move and the new manifest is written atomically, then the moves
and the manifest are applied. Whoever opens the store for writing next finishes a commit whose
``commit.json`` exists (every step is idempotent) and throws away one without it. A SIGKILL at
any moment therefore leaves either the old or the new state, never a duplicate or a loss.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import functools
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError, StoreLockedError

DEFAULT_STORE = ".flowlens"
MANIFEST_VERSION = 1


@functools.cache
def quarantine_schema() -> Any:
    """The Arrow schema of quarantine files (pyarrow is loaded only when it is needed)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("ingest_id", pa.string()),
            pa.field("source_file", pa.string()),
            pa.field("source_line", pa.int64()),
            pa.field("format", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("text", pa.string()),
            pa.field("raw", pa.binary()),
            pa.field("raw_truncated", pa.bool_()),
        ]
    )


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def duckdb_connection(threads: int | None = None) -> Any:
    """A DuckDB connection as every part of flowlens uses it: UTC session time zone, and no
    progress bar (the library never prints; stderr belongs to the command line)."""
    import duckdb

    con = duckdb.connect(config={"threads": threads} if threads is not None else {})
    return configure_session(con)


def configure_session(con: Any) -> Any:
    """UTC and no progress bar on a connection or cursor (session settings are not inherited)."""
    con.execute("SET TimeZone = 'UTC'")  # constant text, no values
    con.execute("SET enable_progress_bar = false")
    return con


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def new_ingest_id(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Store:
    """A store rooted at ``root`` (a path or a string)."""

    root: Path

    def __post_init__(self) -> None:
        if not isinstance(self.root, Path):
            object.__setattr__(self, "root", Path(self.root))

    @property
    def flows_dir(self) -> Path:
        return self.root / "flows"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    def exists(self) -> bool:
        return self.flows_dir.is_dir() or self.manifest_path.is_file()

    def flow_files(self) -> list[Path]:
        """Every committed Parquet file, sorted."""
        if not self.flows_dir.is_dir():
            return []
        return sorted(self.flows_dir.glob("date=*/*.parquet"))

    def partition_dates(self) -> list[str]:
        """The ``YYYY-MM-DD`` of every date partition that holds at least one file."""
        return sorted({p.parent.name.removeprefix("date=") for p in self.flow_files()})

    def quarantine_files(self) -> list[Path]:
        if not self.quarantine_dir.is_dir():
            return []
        return sorted(self.quarantine_dir.glob("*.parquet"))

    # --- manifest ------------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.is_file():
            return {"version": MANIFEST_VERSION, "sources": [], "ingests": []}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"the store manifest {self.manifest_path} cannot be read ({exc}); restore it from a backup "
                "or start a new store"
            ) from exc
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            raise StoreError(f"{self.manifest_path} is not a flowlens manifest of version {MANIFEST_VERSION}")
        return data

    # --- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        """Hold the store's lock, finish or discard interrupted commits, and yield a writer."""
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise StoreLockedError(
                    f"the store {self.root} is being written by {holder}; wait for it to finish and run "
                    "the command again"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(
                f"flowlens pid {os.getpid()} since {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
            )
            fh.flush()
            recovered = self.recover()
            yield StoreWriter(self, recovered)
        finally:
            with contextlib.suppress(OSError):
                fh.seek(0)
                fh.truncate()
            fh.close()

    def recover(self) -> list[str]:
        """Finish commits that were decided, discard the others. Call with the lock held."""
        done: list[str] = []
        if not self.staging_dir.is_dir():
            return done
        for stage in sorted(self.staging_dir.iterdir()):
            commit = stage / "commit.json"
            if commit.is_file():
                try:
                    plan = json.loads(commit.read_text(encoding="utf-8"))
                except ValueError:
                    plan = None
                if plan is not None:
                    self._apply(stage, plan)
                    done.append(f"finished interrupted commit {stage.name}")
                    continue
            shutil.rmtree(stage, ignore_errors=True)
            done.append(f"discarded unfinished ingest {stage.name}")
        return done

    def _apply(self, stage: Path, plan: dict[str, Any]) -> None:
        moved_into: set[Path] = set()
        for src_rel, dst_rel in plan["moves"]:
            src, dst = stage / src_rel, self.root / dst_rel
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                moved_into.add(dst.parent)
        for folder in sorted(moved_into):  # each folder once, before the manifest names the files
            _fsync_dir(folder)
        write_atomic(self.manifest_path, json.dumps(plan["manifest"], indent=1, sort_keys=True).encode())
        shutil.rmtree(stage, ignore_errors=True)


class StoreWriter:
    """Stages Parquet files and commits them, together with a new manifest, atomically."""

    def __init__(self, store: Store, recovered: list[str] | None = None) -> None:
        self.store = store
        self.manifest = store.read_manifest()
        self.recovered = recovered or []

    def stage(self, commit_id: str) -> Path:
        path = self.store.staging_dir / commit_id
        path.mkdir(parents=True, exist_ok=False)
        return path

    def commit(self, stage: Path, manifest: dict[str, Any]) -> list[str]:
        """Move every file staged under ``stage`` into the store and replace the manifest.

        Returns the store-relative paths of the new files."""
        moves: list[tuple[str, str]] = []
        for path in sorted(stage.rglob("*.parquet")):
            rel = path.relative_to(stage).as_posix()
            moves.append((rel, rel))
        plan = {"moves": moves, "manifest": manifest}
        write_atomic(stage / "commit.json", json.dumps(plan, sort_keys=True).encode())
        self.store._apply(stage, plan)
        self.manifest = manifest
        return [dst for _, dst in moves]

    def abort(self, stage: Path) -> None:
        """Throw away a commit that was not decided; a decided one is left for recovery to finish."""
        if not (stage / "commit.json").is_file():
            shutil.rmtree(stage, ignore_errors=True)


@dataclass(frozen=True)
class StoreStatus:
    """What a store holds."""

    root: str
    rows: int
    files: int
    bytes_on_disk: int
    first_start: str | None
    last_end: str | None
    dates: tuple[str, ...]
    clusters: tuple[tuple[str, int], ...]
    formats: tuple[tuple[str, int], ...]
    quarantined: int
    quarantine_reasons: tuple[tuple[str, int], ...]
    sources: int
    ingests: int
    last_ingest: dict[str, Any] | None
    summarised_files: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.root,
            "rows": self.rows,
            "files": self.files,
            "bytes_on_disk": self.bytes_on_disk,
            "first_start_time": self.first_start,
            "last_end_time": self.last_end,
            "dates": list(self.dates),
            "clusters": dict(self.clusters),
            "formats": dict(self.formats),
            "quarantined": self.quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "sources": self.sources,
            "ingests": self.ingests,
            "last_ingest": self.last_ingest,
            "summarised_files": self.summarised_files,
        }


def describe(store: Store) -> StoreStatus:
    """Rows, time range, clusters, size on disk, quarantine and last ingest of ``store``."""
    if not store.exists():
        raise StoreError(
            f"no flowlens store at {store.root}; run `flowlens ingest PATH --store {store.root}` first"
        )
    from flowlens.summary import missing as missing_summaries

    manifest = store.read_manifest()
    files = store.flow_files()
    qfiles = store.quarantine_files()
    size = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    con = duckdb_connection()
    rows, first, last = 0, None, None
    clusters: list[tuple[str, int]] = []
    formats: list[tuple[str, int]] = []
    if files:
        rel = con.read_parquet([str(p) for p in files])
        con.register("f", rel)
        rows, first_ts, last_ts = con.execute(
            "SELECT count(*), min(start_time), max(end_time) FROM f"
        ).fetchone() or (
            0,
            None,
            None,
        )
        first = first_ts.isoformat() if first_ts else None
        last = last_ts.isoformat() if last_ts else None
        clusters = [
            (str(c), int(n))
            for c, n in con.execute("SELECT cluster, count(*) FROM f GROUP BY 1 ORDER BY 1").fetchall()
        ]
        formats = [
            (str(c), int(n))
            for c, n in con.execute("SELECT format, count(*) FROM f GROUP BY 1 ORDER BY 1").fetchall()
        ]
    quarantined = 0
    reasons: list[tuple[str, int]] = []
    if qfiles:
        qrel = con.read_parquet([str(p) for p in qfiles])
        con.register("q", qrel)
        quarantined = int((con.execute("SELECT count(*) FROM q").fetchone() or (0,))[0])
        reasons = [
            (str(r), int(n))
            for r, n in con.execute(
                "SELECT CASE WHEN reason LIKE 'invalid JSON%' THEN 'invalid JSON' "
                "WHEN reason LIKE 'invalid policy hit%' THEN 'invalid policy hit' ELSE reason END AS r, count(*) "
                "FROM q GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
            ).fetchall()
        ]
    con.close()
    ingests = manifest.get("ingests", [])
    return StoreStatus(
        root=str(store.root),
        rows=int(rows),
        files=len(files),
        bytes_on_disk=size,
        first_start=first,
        last_end=last,
        dates=tuple(store.partition_dates()),
        clusters=tuple(clusters),
        formats=tuple(formats),
        quarantined=quarantined,
        quarantine_reasons=tuple(reasons),
        sources=len(manifest.get("sources", [])),
        ingests=len(ingests),
        last_ingest=ingests[-1] if ingests else None,
        summarised_files=len(files) - len(missing_summaries(store.root, files)),
    )
