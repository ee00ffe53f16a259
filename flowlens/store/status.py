"""What a store holds: rows, time range, clusters, formats, size, quarantine, last ingest.

``flowlens status`` prints :func:`describe`'s :class:`StoreStatus` as :func:`render_status`
writes it. It reads the committed files (:mod:`flowlens.store.layout`) with DuckDB, and the
manifest; it never takes the writer lock, so it can run while an ingest writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowlens.errors import StoreError
from flowlens.store.connection import duckdb_connection
from flowlens.store.layout import Store, missing_summaries


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


def human_bytes(n: float) -> str:
    """A size for people: ``512 B``, ``1.5 KB``, ``67.5 MB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def render_status(status: StoreStatus) -> str:
    """What ``flowlens status`` prints for people, one fact per line."""
    info = status.as_dict()
    last = info["last_ingest"] or {}
    lines = [
        f"store:        {info['store']}",
        f"rows:         {info['rows']:,} in {info['files']} Parquet file(s), {human_bytes(info['bytes_on_disk'])} on disk",
        f"time range:   {info['first_start_time'] or '-'} .. {info['last_end_time'] or '-'}",
        f"partitions:   {len(info['dates'])}"
        + (f" ({info['dates'][0]} .. {info['dates'][-1]})" if info["dates"] else ""),
        "clusters:     " + (", ".join(f"{k} ({v:,})" for k, v in info["clusters"].items()) or "-"),
        "formats:      " + (", ".join(f"{k} ({v:,})" for k, v in info["formats"].items()) or "-"),
        f"summaries:    {info['summarised_files']} of {info['files']} Parquet file(s) have their hourly summary"
        + (
            ""
            if info["summarised_files"] == info["files"]
            else " (the next `flowlens ingest` writes the others; until then queries read those records)"
        ),
        f"quarantined:  {info['quarantined']:,} line(s)",
    ]
    lines += [f"  {n:,} x {reason}" for reason, n in info["quarantine_reasons"].items()]
    lines.append(
        f"sources:      {info['sources']} content lineage(s) tracked, {info['ingests']} ingest run(s)"
    )
    if last:
        lines.append(
            f"last ingest:  {last.get('ingest_id')} finished {last.get('finished')}: "
            f"{last.get('rows', 0):,} rows, {last.get('quarantined', 0):,} quarantined, "
            f"{last.get('skipped_already_ingested', 0):,} skipped"
        )
    return "\n".join(lines) + "\n"
