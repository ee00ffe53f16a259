"""What a store holds: rows, files, time range, clusters, formats, size, quarantine, last ingest,
what compaction would gain, and whether the store is intact.

``flowlens status`` prints :func:`describe`'s :class:`StoreStatus` as :func:`render_status`
writes it. Counts of rows and files come from the manifest; the time range, clusters and formats
from the committed files with DuckDB (only those the quick integrity check passes: a damaged store
is described, with its problems, never a crash). It never takes the writer lock, so it can run
while an ingest writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class RowFacts:
    """What status learns by reading the committed files' rows (the rest is in the manifest):
    the time range, rows per cluster and per format, quarantined lines per reason (the 20 most
    frequent), and the counts of rows and of quarantined lines (None: not counted)."""

    first_start: str | None = None
    last_end: str | None = None
    clusters: tuple[tuple[str, int], ...] = ()
    formats: tuple[tuple[str, int], ...] = ()
    reasons: tuple[tuple[str, int], ...] = ()
    rows: int | None = None
    quarantined: int | None = None


#: Reads :class:`RowFacts` of a store from its flows files and quarantine files (DuckDB's
#: :func:`duckdb_facts` by default; the Spark engine has its own).
FactsReader = Callable[[Store, list[Path], list[Path]], RowFacts]

#: The reasons of quarantined lines, grouped as status shows them (SQL both engines run).
REASONS_SQL = (
    "SELECT CASE WHEN reason LIKE 'invalid JSON%' THEN 'invalid JSON' "
    "WHEN reason LIKE 'invalid policy hit%' THEN 'invalid policy hit' ELSE reason END AS r, count(*) AS n "
    "FROM q GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
)
#: Counts and time range of the flows, and rows per cluster and per format.
RANGE_SQL = "SELECT count(*), min(start_time), max(end_time) FROM f"
CLUSTERS_SQL = "SELECT cluster, count(*) AS n FROM f GROUP BY 1 ORDER BY 1"
FORMATS_SQL = "SELECT format, count(*) AS n FROM f GROUP BY 1 ORDER BY 1"


def duckdb_facts(store: Store, flows: list[Path], quarantine: list[Path]) -> RowFacts:
    """:class:`RowFacts` read with DuckDB, in this process."""
    import duckdb

    con = duckdb_connection()
    try:
        first = last = None
        counted: int | None = None
        quarantined: int | None = None
        clusters: list[tuple[str, int]] = []
        formats: list[tuple[str, int]] = []
        reasons: list[tuple[str, int]] = []
        if flows:
            con.register("f", con.read_parquet([str(p) for p in flows]))
            n, first_ts, last_ts = con.execute(RANGE_SQL).fetchone() or (0, None, None)
            counted = int(n)
            first = first_ts.isoformat() if first_ts else None
            last = last_ts.isoformat() if last_ts else None
            clusters = _counts(con, CLUSTERS_SQL)
            formats = _counts(con, FORMATS_SQL)
        if quarantine:
            con.register("q", con.read_parquet([str(p) for p in quarantine]))
            quarantined = int((con.execute("SELECT count(*) FROM q").fetchone() or (0,))[0])
            reasons = _counts(con, REASONS_SQL)
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot read the files of the store {store.root} ({exc}); run `flowlens verify`"
        ) from None
    finally:
        con.close()
    return RowFacts(first, last, tuple(clusters), tuple(formats), tuple(reasons), counted, quarantined)


def describe(
    store: Store,
    *,
    now: dt.datetime | None = None,
    lifecycle: Lifecycle | None = None,
    read_facts: FactsReader | None = None,
) -> StoreStatus:
    """Rows, files, time range, clusters, size on disk, quarantine, last ingest, compaction and
    integrity of ``store`` (``now`` and ``lifecycle`` decide which days compaction would take;
    ``read_facts`` reads the rows' facts: DuckDB's :func:`duckdb_facts` unless given)."""
    if not store.exists():
        raise StoreError(
            f"no flowlens store at {store.location}; run `flowlens ingest PATH --store {store.location}` first"
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
    size = store.files.total_size(store.root)
    legacy = snapshot is not None and snapshot.legacy
    facts = (read_facts or duckdb_facts)(
        store, [store.root / rel for rel in sorted(flows)], [store.root / rel for rel in sorted(quarantine)]
    )
    if legacy:
        rows = facts.rows if facts.rows is not None else rows
        quarantined = facts.quarantined if facts.quarantined is not None else quarantined
    first, last = facts.first_start, facts.last_end
    clusters, formats, reasons = list(facts.clusters), list(facts.formats), list(facts.reasons)
    ingests = manifest.get("ingests", [])
    return StoreStatus(
        root=store.location,
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


def human_bytes(n: float) -> str:
    """A size for people: ``512 B``, ``1.5 KB``, ``67.5 MB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def render_status(status: StoreStatus) -> str:
    """What ``flowlens status`` prints for people, one fact per line; the problems of a damaged
    store last (at most ten, `flowlens verify` lists them all)."""
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
    ]
    gain = info.get("compaction")
    if gain:
        if gain["days_to_compact"]:
            lines.append(
                f"compaction:   {gain['small_files']:,} small file(s); `flowlens compact` would turn "
                f"{gain['files']:,} flows file(s) into {gain['files_after_compaction']:,} "
                f"({gain['days_to_compact']} day(s)); {gain['days_ingest_would_compact']} closed day(s) are due "
                "for the next ingest"
            )
        else:
            lines.append(
                f"compaction:   nothing to gain ({gain['small_files']:,} small file(s), at most one a day)"
            )
    lines.append(f"quarantined:  {info['quarantined']:,} line(s)")
    lines += [f"  {n:,} x {reason}" for reason, n in info["quarantine_reasons"].items()]
    lines.append(
        f"sources:      {info['sources']} content lineage(s) tracked, {info['ingests']} ingest run(s)"
    )
    if last:
        lines.append(
            f"last ingest:  {last.get('ingest_id')} finished {last.get('finished')}: "
            f"{last.get('rows', 0):,} rows, {last.get('quarantined', 0):,} quarantined, "
            f"{last.get('skipped_already_ingested', 0):,} skipped"
            + (f" ({last['already_stored']:,} already stored)" if last.get("already_stored") else "")
        )
    integrity = info.get("integrity") or {}
    problems = integrity.get("problems", [])
    blocking = [p for p in problems if p["blocking"]]
    if blocking:
        lines.append(f"integrity:    DAMAGED ({len(blocking)} problem(s), quick check):")
    else:
        lines.append("integrity:    ok (quick check; `flowlens verify` reads every file)")
    lines += [
        f"  {p['code']}: {p['path'] + ': ' if p['path'] else ''}{p['message']}"
        for p in (blocking[:10] + [p for p in problems if not p["blocking"]][:5])
    ]
    if len(blocking) > 10:
        lines.append(f"  ... and {len(blocking) - 10} more: see `flowlens verify`")
    return "\n".join(lines) + "\n"
