"""What an ingest is asked to do: :class:`IngestOptions`, and the progress callback's shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flowlens.store.lifecycle import Lifecycle

DEFAULT_MAX_LINE_BYTES = 1024 * 1024
DEFAULT_MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EXPANSION = 200


@dataclass(frozen=True)
class IngestOptions:
    """How to ingest (the options of ``flowlens ingest``)."""

    format: str | None = None  # None: detect per file
    cluster: str | None = None  # overrides the record's own cluster
    default_cluster: str = "default"
    strict: bool = False
    #: a longer line is quarantined as too long, and never held in memory whole
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: a whole JSON document (a Whisker or Elasticsearch response) is read into memory: up to this size
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    #: a compressed file stops expanding at this many times its size (past 64 MiB decompressed)
    max_expansion: int = DEFAULT_MAX_EXPANSION
    threads: int | None = None
    #: compaction of closed days and retention, applied after the run (see flowlens.store.lifecycle)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)


ProgressFn = Callable[[int, int], None]  # (bytes read so far, rows so far)
