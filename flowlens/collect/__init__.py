"""Live collection: Calico's flows into the store as they happen, exactly once.

Two collectors, one way of committing:

* :mod:`~flowlens.collect.goldmane` (``flowlens collect goldmane``): pulls from Goldmane's gRPC
  ``goldmane.Flows`` API (``List`` what the store lacks, then ``Stream``), positioned by
  15-second buckets (:mod:`~flowlens.collect.buckets`; flows converted by
  :mod:`~flowlens.collect.goldmane_json`). Needs the ``collect`` extra (grpcio, protobuf), loaded
  only when it starts: importing this package never loads grpc.
* :mod:`~flowlens.collect.receiver` (``flowlens collect serve``): takes pushed NDJSON (Goldmane's
  emitter, Fluent Bit, any format flowlens reads) over HTTP(S), served by
  :mod:`~flowlens.collect.http`, and recognises a retried batch by its digest
  (:mod:`~flowlens.collect.batches`).

Both hand lines and their position to a :class:`~flowlens.collect.committer.Committer`, which
commits them through the same parser, checks, quarantine, writer and atomic commit as
``flowlens ingest``, with the collector's position recorded in the manifest in the same commit
(:mod:`flowlens.store.collectors`), holding the store's writer lock for one micro-batch at a
time. :mod:`~flowlens.collect.metrics` renders their numbers for Prometheus;
:mod:`~flowlens.collect.status` describes them for ``flowlens status``. Logs go to the
``flowlens.collect`` logger, each record with an ``event`` and its ``fields``: the command line
writes them to stderr as JSON lines.

The generated gRPC modules live in :mod:`flowlens.collect.proto`.
"""
