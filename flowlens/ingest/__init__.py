"""Ingest: Calico flow logs into the store, exactly once, losing nothing.

Use :func:`ingest` (what ``flowlens ingest`` runs)::

    from flowlens.ingest import IngestOptions, ingest
    from flowlens.store import Store

    summary = ingest(Store(".flowlens"), ["/var/log/calico/flowlogs/"], IngestOptions(cluster="prod"))
    assert summary.balanced  # lines read = rows + quarantined + skipped + ignored, per file

The fast path never parses a line in Python: a file is read in large blocks, split into lines
with numpy, and each batch is handed to DuckDB as an Arrow array; DuckDB parses the JSON once per
line and computes every canonical column in the same query. Only lines that a cheap test marks
as *suspect* are looked at one by one. One module per step, in the order the data flows:

* :mod:`~flowlens.ingest.sources`: files, folders, globs and standard input; gzip; reading whole
  lines into batch buffers without a copy, skipping what was ingested before.
* :mod:`~flowlens.ingest.checkpoints`: exactly once for files, by content lineages and
  checkpoints in the manifest.
* :mod:`~flowlens.ingest.parse`: the DuckDB query over a batch of lines, on worker threads.
* :mod:`~flowlens.ingest.checks`: which lines are suspect, and why a bad one is bad.
* :mod:`~flowlens.ingest.traces`: label sets and policy traces from text to nested columns.
* :mod:`~flowlens.ingest.dictionaries`: lasting dictionaries for the strings of nested columns.
* :mod:`~flowlens.ingest.rows`: a parsed batch into stored rows and quarantined lines.
* :mod:`~flowlens.ingest.writer`: Parquet files per day, row groups, writer threads; the
  commit being staged.
* :mod:`~flowlens.ingest.accounting`: per-file counts that add up, and the quarantine.
* :mod:`~flowlens.ingest.options`: :class:`IngestOptions`.
* :mod:`~flowlens.ingest.pipeline`: :func:`ingest` and :class:`Ingester`, on top of the others.
* :mod:`~flowlens.ingest.spark`: :func:`~flowlens.ingest.spark.ingest_spark`, the same on Spark:
  an :class:`Ingester` per Spark task on the executors, one commit by the driver (needs pyspark).

Live collectors produce lines of records and positions instead of files and checkpoints; they
reuse everything from the parser on (parse, checks, rows, writer, accounting) and the store's
atomic commit. :mod:`~flowlens.ingest.pipeline` describes that seam.
"""

from flowlens.ingest.accounting import FileSummary, IngestSummary
from flowlens.ingest.options import IngestOptions, ProgressFn
from flowlens.ingest.pipeline import Ingester, ingest
from flowlens.ingest.sources import expand_sources

__all__ = [
    "FileSummary",
    "IngestOptions",
    "IngestSummary",
    "Ingester",
    "ProgressFn",
    "expand_sources",
    "ingest",
]
