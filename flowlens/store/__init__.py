"""The store on disk: hive-partitioned Parquet, a manifest, atomic commits under one writer lock.

One module per concern, each importing only those above it in this list (a test checks that no
two modules of flowlens import each other, even inside functions):

* :mod:`~flowlens.store.manifest`: ``manifest.json``, what was ingested (lineages, ingests).
* :mod:`~flowlens.store.layout`: :class:`Store`, where each part lives on disk and which files
  are committed; readers take their file list from here.
* :mod:`~flowlens.store.lock`: the one-writer lock.
* :mod:`~flowlens.store.commit`: :func:`open_writer` and :class:`StoreWriter`, staging and the
  atomic commit, recovery of interrupted commits. Every writer (ingest today; collectors,
  compaction and pruning next) commits through it.
* :mod:`~flowlens.store.connection`: DuckDB connections as flowlens opens them.
* :mod:`~flowlens.store.quarantine`: the schema of quarantined lines, and reading them back.
* :mod:`~flowlens.store.status`: :func:`describe`, what a store holds (``flowlens status``).
* :mod:`~flowlens.store.collectors`: each live collector's position in the manifest, which its
  commits record with their rows (the positions themselves belong to :mod:`flowlens.collect`).
* :mod:`~flowlens.store.summaries`: the hourly summaries written beside each flows file (on top
  of the others, and not imported here: it loads pyarrow and numpy, which opening a store does
  not need).

Verifying and repairing a store, compaction and pruning belong in modules of their own here,
beside ``commit``, whose writer they use.
"""

from flowlens.store.commit import StoreWriter, new_ingest_id, open_writer, write_atomic
from flowlens.store.connection import configure_session, duckdb_connection
from flowlens.store.layout import (
    DEFAULT_STORE,
    SUMMARY_DIR,
    SUMMARY_VERSION,
    Store,
    missing_summaries,
    summary_path,
)
from flowlens.store.manifest import MANIFEST_VERSION, read_manifest
from flowlens.store.quarantine import QuarantinedLine, quarantine_schema, read_quarantine, render_quarantine
from flowlens.store.status import StoreStatus, describe, human_bytes, render_status

__all__ = [
    "DEFAULT_STORE",
    "MANIFEST_VERSION",
    "SUMMARY_DIR",
    "SUMMARY_VERSION",
    "QuarantinedLine",
    "Store",
    "StoreStatus",
    "StoreWriter",
    "configure_session",
    "describe",
    "duckdb_connection",
    "human_bytes",
    "missing_summaries",
    "new_ingest_id",
    "open_writer",
    "quarantine_schema",
    "read_manifest",
    "read_quarantine",
    "render_quarantine",
    "render_status",
    "summary_path",
    "write_atomic",
]
