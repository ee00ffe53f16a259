"""What a store holds: rows, files, time range, clusters, formats, size, quarantine, last ingest,
what compaction would gain, and whether the store is intact.

``flowlens status`` prints :func:`describe`'s :class:`StoreStatus`. Counts of rows and files come
from the manifest; the time range, clusters and formats from the committed files with DuckDB
(only those the quick integrity check passes: a damaged store is described, with its problems,
never a crash). It never takes the writer lock, so it can run while an ingest writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowlens.errors import StoreError
from flowlens.store.connection import duckdb_connection
from flowlens.store.integrity import IntegrityReport, check, usable_summaries
from flowlens.store.layout import Store
from flowlens.store.lifecycle import CompactionGain, Lifecycle, compaction_gain

if TYPE_CHECKING:
    import duckdb


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
    generation: int | None = None
    compaction: CompactionGain | None = None
    integrity: IntegrityReport | None = None

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
            "generation": self.generation,
            "compaction": self.compaction.as_dict() if self.compaction else None,
            "integrity": self.integrity.as_dict() if self.integrity else None,
        }


def describe(
    store: Store, *, now: dt.datetime | None = None, lifecycle: Lifecycle | None = None
) -> StoreStatus:
    """Rows, files, time range, clusters, size on disk, quarantine, last ingest, compaction and
    integrity of ``store`` (``now`` and ``lifecycle`` decide which days compaction would take)."""
    if not store.exists():
        raise StoreError(
            f"no flowlens store at {store.root}; run `flowlens ingest PATH --store {store.root}` first"
        )
    report = check(store)
    damaged_paths = {p.path for p in report.problems if p.code in _UNREADABLE}
    manifest: dict[str, Any] = {}
    flows: list[str] = []
    quarantine: list[str] = []
    rows = quarantined = summarised = 0
    snapshot = None
    if not any(p.code in ("manifest-unreadable", "manifest-missing") for p in report.problems):
        manifest = store.read_manifest()
        snapshot = store.snapshot()
        flows = [e.path for e in snapshot.flow_entries() if e.path not in damaged_paths]
        quarantine = [
            e.path
            for e in snapshot.entries.values()
            if e.kind == "quarantine" and e.path not in damaged_paths
        ]
        rows = snapshot.rows("flows")
        quarantined = snapshot.rows("quarantine")
        summarised = len(usable_summaries(snapshot, snapshot.flows()))
    size = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    import duckdb

    con = duckdb_connection()
    first = last = None
    clusters: list[tuple[str, int]] = []
    formats: list[tuple[str, int]] = []
    reasons: list[tuple[str, int]] = []
    try:
        if flows:
            con.register("f", con.read_parquet([str(store.root / rel) for rel in sorted(flows)]))
            counted, first_ts, last_ts = con.execute(
                "SELECT count(*), min(start_time), max(end_time) FROM f"
            ).fetchone() or (0, None, None)
            if snapshot is not None and snapshot.legacy:
                rows = int(counted)
            first = first_ts.isoformat() if first_ts else None
            last = last_ts.isoformat() if last_ts else None
            clusters = _counts(con, "SELECT cluster, count(*) FROM f GROUP BY 1 ORDER BY 1")
            formats = _counts(con, "SELECT format, count(*) FROM f GROUP BY 1 ORDER BY 1")
        if quarantine:
            con.register("q", con.read_parquet([str(store.root / rel) for rel in sorted(quarantine)]))
            if snapshot is not None and snapshot.legacy:
                quarantined = int((con.execute("SELECT count(*) FROM q").fetchone() or (0,))[0])
            reasons = _counts(
                con,
                "SELECT CASE WHEN reason LIKE 'invalid JSON%' THEN 'invalid JSON' "
                "WHEN reason LIKE 'invalid policy hit%' THEN 'invalid policy hit' ELSE reason END AS r, count(*) "
                "FROM q GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20",
            )
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot read the files of the store {store.root} ({exc}); run `flowlens verify`"
        ) from None
    finally:
        con.close()
    ingests = manifest.get("ingests", [])
    return StoreStatus(
        root=str(store.root),
        rows=int(rows),
        files=len(snapshot.flow_entries()) if snapshot is not None else 0,
        bytes_on_disk=size,
        first_start=first,
        last_end=last,
        dates=tuple(snapshot.dates()) if snapshot is not None else (),
        clusters=tuple(clusters),
        formats=tuple(formats),
        quarantined=int(quarantined),
        quarantine_reasons=tuple(reasons),
        sources=len(manifest.get("sources", [])),
        ingests=len(ingests),
        last_ingest=ingests[-1] if ingests else None,
        summarised_files=summarised,
        generation=snapshot.generation if snapshot is not None else None,
        compaction=compaction_gain(snapshot, now or dt.datetime.now(dt.UTC), lifecycle or Lifecycle())
        if snapshot is not None
        else None,
        integrity=report,
    )


_UNREADABLE = ("missing", "empty", "resized", "unreadable")


def _counts(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, int]]:
    return [(str(key), int(n)) for key, n in con.execute(sql).fetchall()]
