"""The store on disk: hive-partitioned Parquet, a manifest that lists every committed file, a
journal, atomic commits under one writer lock, and checks, repair, compaction and pruning.

One module per concern, each importing only those above it in this list (a test checks that no
two modules of flowlens import each other, even inside functions):

* :mod:`~flowlens.store.lock`: the one-writer lock and the readers' leases.
* :mod:`~flowlens.store.files`: the store's file operations (:class:`StoreFiles`), local, or
  refused for a Hadoop URL until the Spark engine opens it.
* :mod:`~flowlens.store.manifest`: ``manifest.json``, the committed files (rows, size, XXH3,
  spans of source content) and what was ingested (lineages, ingests).
* :mod:`~flowlens.store.urls`: a store or source given as a URL: a ``file://`` URL as a local
  path, a Hadoop URL as its ``scheme://authority`` and path.
* :mod:`~flowlens.store.layout`: :class:`Store`, where each part lives on disk, and
  :class:`Snapshot`, the committed files of one manifest: readers take their files from one.
* :mod:`~flowlens.store.journal`: what each commit changed; rebuilds a lost or stale manifest.
* :mod:`~flowlens.store.facts`: a data file's rows, size and XXH3-64.
* :mod:`~flowlens.store.integrity`: :func:`check` (``flowlens verify`` and the quick check of
  ``status`` and of every writer), :func:`reading`, the checked snapshot every reader uses.
* :mod:`~flowlens.store.commit`: :func:`open_writer` and :class:`StoreWriter`, staging and the
  atomic commit, recovery of interrupted commits. Every writer commits through it.
* :mod:`~flowlens.store.connection`: DuckDB connections as flowlens opens them.
* :mod:`~flowlens.store.quarantine`: the schema of quarantined lines, and reading them back.
* :mod:`~flowlens.store.collectors`: each live collector's position in the manifest, which its
  commits record with their rows (the positions themselves belong to :mod:`flowlens.collect`).
* :mod:`~flowlens.store.lifecycle`: which days compaction takes, retention and ``flowlens prune``.
* :mod:`~flowlens.store.status`: :func:`describe`, what a store holds (``flowlens status``).

On top of these, and not imported here (they load pyarrow, which opening a store does not
need): :mod:`~flowlens.store.parquet` (the rules every flows file is written with),
:mod:`~flowlens.store.summaries` (the hourly summaries written beside each flows file),
:mod:`~flowlens.store.repair` (``flowlens repair``), :mod:`~flowlens.store.compact`
(``flowlens compact`` and the compaction ingest runs on its own), :mod:`~flowlens.store.hadoop`
(a store's files through Hadoop's ``FileSystem``, in a Spark session's JVM).
"""

from flowlens.store.commit import StoreWriter, new_ingest_id, open_writer, write_atomic
from flowlens.store.connection import configure_session, duckdb_connection
from flowlens.store.integrity import (
    IntegrityReport,
    Problem,
    check,
    read_snapshot,
    reading,
    require_present,
    usable_summaries,
)
from flowlens.store.layout import (
    DEFAULT_STORE,
    SUMMARY_DIR,
    SUMMARY_VERSION,
    Snapshot,
    Store,
    missing_summaries,
    summary_path,
)
from flowlens.store.manifest import MANIFEST_VERSION, FileEntry, Span, read_manifest
from flowlens.store.quarantine import QuarantinedLine, quarantine_schema, read_quarantine, render_quarantine
from flowlens.store.status import StoreStatus, describe, human_bytes, render_status

__all__ = [
    "DEFAULT_STORE",
    "MANIFEST_VERSION",
    "SUMMARY_DIR",
    "SUMMARY_VERSION",
    "FileEntry",
    "IntegrityReport",
    "Problem",
    "QuarantinedLine",
    "Snapshot",
    "Span",
    "Store",
    "StoreStatus",
    "StoreWriter",
    "check",
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
    "read_snapshot",
    "reading",
    "render_quarantine",
    "render_status",
    "require_present",
    "summary_path",
    "usable_summaries",
    "write_atomic",
]
