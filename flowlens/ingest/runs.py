"""What every ingest run does around reading its sources, on either engine: checking the request
and finding the sources (:func:`check_request`), the run's summary and clock (:func:`new_run`),
its record in the manifest (:func:`record_run`), and the error a failed write of the store is
reported with (:func:`store_write_error`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from flowlens.errors import InputError, StoreWriteError, UsageError
from flowlens.formats import FORMATS
from flowlens.ingest.accounting import FileSummary, IngestSummary
from flowlens.ingest.options import IngestOptions
from flowlens.ingest.paths import FoundSources, find_sources
from flowlens.store import Store, new_ingest_id
from flowlens.store.commit import is_disk_full, write_failure
from flowlens.store.urls import local_path


def record_run(manifest: dict[str, Any], summary: IngestSummary, **extra: str) -> None:
    """Add the run's record (its summary without the per-file part, when it finished, ``extra``)
    to the ``ingests`` of ``manifest``, which keeps the last 500."""
    entry: dict[str, Any] = {k: v for k, v in summary.as_dict().items() if k != "per_file"}
    entry["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entry.update(extra)
    manifest["ingests"] = [*manifest.get("ingests", []), entry][-500:]


def store_write_error(exc: OSError, store: Store, *, committed: bool) -> StoreWriteError:
    """The error writing the store failed with, after the run's commit (``committed``: while
    compacting or pruning) or before it."""
    if committed:
        return StoreWriteError(
            f"this run's rows are committed, but compacting or pruning {store.root} then stopped "
            f"({'no space left on device' if is_disk_full(exc) else exc}); the store reads as "
            "before that step: free space and run `flowlens compact` (or the next ingest does it)"
        )
    return write_failure(exc, store, decided=False)


def new_run(store: Store, found: FoundSources, now: dt.datetime | None) -> tuple[IngestSummary, dt.datetime]:
    """A run's summary (its id, the sources that could not be read) and its clock (``now``)."""
    clock = now or dt.datetime.now(dt.UTC)
    summary = IngestSummary(ingest_id=new_ingest_id(clock), store=store.location, passed_over=found.passed)
    summary.files.extend(FileSummary(path=path, error=problem) for path, problem in found.problems)
    return summary, clock


def holds_elasticsearch(manifest: dict[str, Any]) -> bool:
    """Whether ``manifest`` records a lineage of Elasticsearch hits (an export was ingested)."""
    return any(lineage.get("format") == "elasticsearch" for lineage in manifest["sources"])


def check_request(
    paths: Iterable[str | tuple[str, str | None]],
    options: IngestOptions,
    find: Callable[[list[str | tuple[str, str | None]]], FoundSources] | None = None,
) -> FoundSources:
    """The sources to read (``file://`` URLs as local paths), after checking ``options``: what every
    ingest, on either engine, checks before it takes the store's lock. ``find``: what finds the
    sources (default: :func:`local_sources`; Spark ingest also finds them at Hadoop URLs)."""
    if options.format is not None and options.format not in FORMATS:
        raise UsageError(f"unknown format {options.format!r}; choose one of: {', '.join(FORMATS)}")
    if options.max_line_bytes < 1024:
        raise UsageError("--max-line-bytes must be at least 1024")
    if options.max_document_bytes < 1024:
        raise UsageError("--max-document-bytes must be at least 1024")
    if options.max_expansion < 2:
        raise UsageError("--max-expansion must be at least 2")
    found = (find or local_sources)(list(paths))
    if found.problems and (options.strict or not found.files):
        raise InputError("; ".join(f"{path}: {problem}" for path, problem in found.problems[:5]))
    if not found.files:
        raise InputError(
            "no flow-log files to ingest"
            + (f" (passed over: {', '.join(found.passed)})" if found.passed else "")
        )
    return found


def local_sources(paths: list[str | tuple[str, str | None]]) -> FoundSources:
    """The sources of ``paths`` on this machine (``file://`` URLs as local paths)."""
    return find_sources(
        [
            (local_path(p[0], "the source"), p[1]) if isinstance(p, tuple) else local_path(p, "the source")
            for p in paths
        ]
    )
