"""``flowlens collect serve``: flow logs pushed over HTTP, each batch committed exactly once.

:class:`Receiver` takes request bodies (from :mod:`flowlens.collect.http`) and answers each only
once its records are committed, so that a 200 means stored and anything else means "send it
again":

* a body is decoded (``Content-Encoding: gzip`` included, never past ``max_body_bytes``), its
  format read from ``?format=`` or detected like a file's (:func:`flowlens.formats.detect`);
  Goldmane's emitter windows, Fluent Bit ``json_lines`` of Calico Enterprise ``flows.log``,
  Elasticsearch hits and Whisker responses all arrive the same way;
* a body whose digest the :class:`~flowlens.collect.batches.BatchLog` knows (a retry of a batch
  already committed, or one being committed right now) adds nothing and is answered 200;
* the others wait in memory (at most ``max_pending_bytes`` in all: past that a request gets
  503 with ``Retry-After``, which every sender retries), and a commit thread commits them
  together, *group commit*: every ``commit_every`` seconds, or at once when ``commit_flows``
  records wait, in one atomic commit with the digests they add to the log
  (:class:`~flowlens.collect.committer.Committer`). Bad lines go to the quarantine, as in ingest.

A failed commit answers its requests 503 (their digests were not recorded, so their retries
are stored). A kill before the commit loses nothing the sender does not still hold; a kill
after it leaves the digest in the store, and the retry adds nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from flowlens.collect.batches import DEFAULT_LIMIT, DEFAULT_WINDOW, BatchLog, batch_digest
from flowlens.collect.committer import CommitResult, Committer, Lines, maintain_and_log
from flowlens.collect.metrics import Metrics
from flowlens.errors import FlowlensError
from flowlens.formats import FORMATS, detect
from flowlens.ingest.accounting import FileSummary
from flowlens.ingest.sources import HEAD_BYTES, document_items, is_document

log = logging.getLogger("flowlens.collect")

DEFAULT_MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class ServeOptions:
    """How the push receiver accepts and commits batches (``flowlens collect serve`` options)."""

    commit_every: float = 1.0
    commit_flows: int = 200_000
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_pending_bytes: int = 512 * 1024 * 1024
    pending_wait: float = 10.0  # seconds a request waits for room before 503
    dedupe_window: float = DEFAULT_WINDOW
    dedupe_limit: int = DEFAULT_LIMIT
    format: str | None = None  # every body in this format instead of detecting it


@dataclass(frozen=True)
class Outcome:
    """The answer to one request: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]
    retry_after: int | None = None


class BadRequest(FlowlensError):
    """A request the receiver refuses for good (a 4xx answer); the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body as sent before compression (``gzip``, ``x-gzip`` or none), never longer
    than ``limit`` bytes."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return raw
    if coding not in ("gzip", "x-gzip"):
        raise BadRequest(415, f"Content-Encoding {encoding!r} is not supported (send gzip or none)")
    out: list[bytes] = []
    size = 0
    data = raw
    while data:
        inflater = zlib.decompressobj(wbits=31)  # one gzip member; bodies may hold several
        try:
            while data:
                chunk = inflater.decompress(data, max(1, limit + 1 - size))
                size += len(chunk)
                out.append(chunk)
                if size > limit:
                    raise BadRequest(
                        413, f"the body decompresses to more than {limit} bytes (--max-body-bytes)"
                    )
                data = inflater.unconsumed_tail
                if inflater.eof:
                    break
        except zlib.error as exc:
            raise BadRequest(400, f"the gzip body cannot be decompressed: {exc}") from None
        if not inflater.eof:
            raise BadRequest(400, "the gzip body is truncated: it ends inside the compressed data")
        data = inflater.unused_data
    return b"".join(out)


def records_of(data: bytes, fmt_hint: str | None) -> tuple[bytes, str]:
    """The body's records as lines, and their format."""
    head = data[:HEAD_BYTES]
    if fmt_hint is not None:
        if fmt_hint not in FORMATS:
            raise BadRequest(400, f"unknown format {fmt_hint!r}; choose one of: {', '.join(FORMATS)}")
        name = fmt_hint
    else:
        found = detect(head)
        if found is None:
            first = head.splitlines()[0][:120] if head.strip() else b""
            raise BadRequest(
                400,
                f"not a Calico flow log flowlens knows (first line: {first!r}); send one JSON flow per "
                "line, or name the format with ?format=enterprise|elasticsearch|goldmane|whisker",
            )
        name = found
    if is_document(head, name):
        fs = FileSummary(path="body")
        data = document_items(data, fs, name)
        if fs.warnings and not data:
            raise BadRequest(400, f"the body cannot be read: {fs.warnings[0]}")
    return data, name


@dataclass
class _Pending:
    lines: Lines
    count: int  # lines
    digest: bytes
    size: int
    received: float
    done: threading.Event = field(default_factory=threading.Event)
    result: CommitResult | None = None
    error: str | None = None


class Receiver:
    """Commits pushed batches, exactly once; :meth:`submit` from any number of threads."""

    def __init__(self, committer: Committer, options: ServeOptions, metrics: Metrics, source: str) -> None:
        self.committer = committer
        self.options = options
        self.metrics = metrics
        self.source = source
        recorded = committer.resumed or {}
        self.log = BatchLog.from_json(recorded.get("batches"), options.dedupe_window, options.dedupe_limit)
        self.totals = {
            k: int(recorded.get("totals", {}).get(k, 0))
            for k in ("batches", "rows", "quarantined", "duplicates")
        }
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._inflight: dict[bytes, _Pending] = {}  # digest -> pending or being committed
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._commit_loop, name="receiver-commit", daemon=True)
        self.heartbeat = time.monotonic()
        self.ready = True
        self._stop_wait: float | None = None

    def start(self) -> Receiver:
        self._thread.start()
        return self

    # --- requests ---------------------------------------------------------------------------

    def submit(self, raw: bytes, *, encoding: str | None, fmt: str | None, peer: str) -> Outcome:
        """Decode, deduplicate and commit one request body; the answer to send."""
        self.metrics.add("batches_received_total")
        try:
            data = decode_body(raw, encoding, self.options.max_body_bytes)
            data, name = records_of(data, fmt or self.options.format)
        except BadRequest as exc:
            self.metrics.add("batches_rejected_total")
            log.warning(
                "refused a batch from %s: %s",
                peer,
                exc,
                extra={
                    "event": "rejected",
                    "fields": {"peer": peer, "status": exc.status, "reason": str(exc)},
                },
            )
            return Outcome(exc.status, {"error": str(exc)})
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        if lines == 0:
            return Outcome(200, {"status": "empty", "lines": 0})
        self.metrics.add("flows_received_total", lines)
        digest = batch_digest(data, name)
        with self._cond:
            pending = self._inflight.get(digest)
            if pending is None and digest in self.log:
                return self._duplicate(lines)
            if pending is None:
                deadline = time.monotonic() + self.options.pending_wait
                while self._pending_bytes + len(data) > self.options.max_pending_bytes and self._pending:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.is_set():
                        self.metrics.add("batches_rejected_total")
                        return Outcome(
                            503,
                            {"error": "the receiver is busy committing; send the batch again"},
                            retry_after=2,
                        )
                    self._cond.wait(left)
                if self._stop.is_set():
                    self.metrics.add("batches_rejected_total")
                    return Outcome(
                        503, {"error": "the receiver is shutting down; send the batch again"}, retry_after=5
                    )
                pending = _Pending(
                    Lines(data, name, f"push:{peer}"), lines, digest, len(data), time.monotonic()
                )
                self._pending.append(pending)
                self._inflight[digest] = pending
                self._pending_bytes += len(data)
                self.metrics.set("pending_bytes", self._pending_bytes)
                self.metrics.add("pending_flows", lines)
                self._cond.notify_all()
                mine = True
            else:
                mine = False  # the same batch is being committed for an earlier request
        pending.done.wait()
        if pending.error is not None:
            self.metrics.add("batches_rejected_total")
            return Outcome(503, {"error": pending.error}, retry_after=5)
        if not mine:
            with self._cond:
                return self._duplicate(lines)
        result = pending.result
        assert result is not None
        return Outcome(
            200,
            {"status": "committed", "commit": result.commit_id, "lines": lines, "format": name},
        )

    def _duplicate(self, lines: int) -> Outcome:
        self.metrics.add("duplicates_dropped_total", lines)
        self.totals["duplicates"] += lines
        return Outcome(200, {"status": "duplicate", "lines": lines, "stored": 0})

    # --- the commit thread ------------------------------------------------------------------

    def _due(self) -> bool:
        if not self._pending:
            return False
        if self._stop.is_set():
            return True
        waiting = sum(p.count for p in self._pending) >= self.options.commit_flows
        return waiting or time.monotonic() - self._pending[0].received >= self.options.commit_every

    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if self._stop.is_set():
                        self._record_totals()
                        return
                    timeout = self.options.commit_every
                    if self._pending:
                        timeout = max(
                            0.0, self._pending[0].received + self.options.commit_every - time.monotonic()
                        )
                    self._cond.wait(timeout)
                    self.heartbeat = time.monotonic()
                group, self._pending = self._pending, []
            self._commit(group)

    def _record_totals(self) -> None:
        """On stopping: duplicates dropped since the last commit go into the running totals (a
        commit of the position alone)."""
        recorded = (self.committer.position() or {}).get("totals", {})
        if int(recorded.get("duplicates", 0)) == self.totals["duplicates"]:
            return
        record = {
            "kind": "push",
            "source": self.source,
            "batches": self.log.to_json(),
            "totals": dict(self.totals),
        }
        try:
            self.committer.commit([], record, wait=self._stop_wait)
        except Exception as exc:  # only counts are at stake
            log.warning(
                "could not record the final counts: %s",
                exc,
                extra={"event": "commit_failed", "fields": {"error": str(exc)}},
            )

    def _commit(self, group: list[_Pending]) -> None:
        now = time.time()
        digests = [p.digest for p in group]
        log_after = BatchLog.from_json(
            self.log.to_json(), self.options.dedupe_window, self.options.dedupe_limit
        )
        log_after.add(now, digests)
        totals = dict(self.totals)
        totals["batches"] += len(group)
        record = {"kind": "push", "source": self.source, "batches": log_after.to_json(), "totals": totals}
        self.metrics.set("lag_seconds", time.monotonic() - group[0].received)
        try:
            wait = self._stop_wait if self._stop.is_set() else None
            result = self.committer.commit([p.lines for p in group], record, wait=wait)
        except Exception as exc:  # the store is locked past the wait, the disk is full, ...
            self.metrics.add("commit_failures_total")
            log.error(
                "commit of %d batch(es) failed: %s; the senders are told to send them again",
                len(group),
                exc,
                extra={"event": "commit_failed", "fields": {"batches": len(group), "error": str(exc)}},
                exc_info=not isinstance(exc, FlowlensError),
            )
            self._finish(group, None, f"the batch could not be committed ({exc}); send it again")
            return
        except BaseException:  # interrupted: answer the senders, then stop
            self._finish(group, None, "the receiver stopped before the batch was committed; send it again")
            raise
        self.log = log_after
        self.totals["batches"] = totals["batches"]
        self.metrics.committed(result.rows, result.quarantined, result.ignored, result.seconds, time.time())
        log.info(
            "committed %d batch(es): %d row(s), %d quarantined",
            len(group),
            result.rows,
            result.quarantined,
            extra={
                "event": "commit",
                "fields": {
                    "commit": result.commit_id,
                    "batches": len(group),
                    "rows": result.rows,
                    "quarantined": result.quarantined,
                    "seconds": round(result.seconds, 3),
                },
            },
        )
        self._finish(group, result, None)
        maintain_and_log(self.committer)

    def _finish(self, group: list[_Pending], result: CommitResult | None, error: str | None) -> None:
        with self._cond:
            for p in group:
                p.result, p.error = result, error
                self._inflight.pop(p.digest, None)
                self._pending_bytes -= p.size
            self.metrics.set("pending_bytes", self._pending_bytes)
            self.metrics.set("pending_flows", sum(p.count for p in self._pending))
            self._cond.notify_all()
        for p in group:
            p.done.set()

    def close(self, wait: float | None = None) -> None:
        """Stop taking batches; commit the ones waiting (their senders get their answers; the
        commit waits up to ``wait`` seconds for the store) and return once the commit thread has
        ended."""
        self.ready = False
        self._stop_wait = wait
        with self._cond:
            self._stop.set()
            self._cond.notify_all()
        self._thread.join()
