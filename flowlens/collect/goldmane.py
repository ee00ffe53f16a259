"""``flowlens collect goldmane``: Calico's flows, pulled from Goldmane's gRPC API as they happen.

:class:`GoldmaneCollector` connects to Goldmane (``goldmane.Flows``, mutual TLS), and on each
connection:

1. finds the oldest flow Goldmane still holds and says so when the collector's position is
   older (:func:`flowlens.collect.buckets.lost_window`: the collector was down longer than
   Goldmane's history): a log line, the ``lost_seconds_total`` metric and the position's
   ``losses``, which ``flowlens status`` shows;
2. ``List`` s every whole bucket it does not have yet, one 15-second bucket per request, page
   after page, up to a minute ago (older buckets are complete in Goldmane: it streams a bucket
   15-30 s after it ends);
3. ``Stream`` s from the first bucket it did not list: Goldmane sends the buckets between (its
   backfill), then each new bucket as it rolls over.

Each flow is checked against the position (:class:`flowlens.collect.buckets.BucketPosition`)
and, if new, converted to an emitter line (:mod:`flowlens.collect.goldmane_json`) and kept
pending. A commit thread commits the pending lines with the position they bring it to every
``commit_every`` seconds or ``commit_flows`` flows (:class:`flowlens.collect.committer.Committer`).
Receiving never waits for a commit (Goldmane drops flows for a stream that does not read them
within a second); pending flows are bounded (``max_pending_flows``), past which the stream is
read no faster than commits go.

A failed connection, a stream error or a Goldmane restart is retried with exponential backoff
(1 s doubling up to ``backoff_max``), resuming from what the collector has, committed or
pending. After a kill, the next run resumes from the last commit. On :meth:`stop`, the pending
flows are committed (or, if the store stays locked past the grace time, discarded: they are
still in Goldmane and the next run lists them again, if it starts within the hour).

grpcio and protobuf come with the ``collect`` extra; this module imports them only when a
collector starts.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from flowlens.collect.buckets import (
    BUCKET_SECONDS,
    GOLDMANE_HISTORY_SECONDS,
    BucketPosition,
    bucket_of,
    lost_window,
)
from flowlens.collect.committer import Committer, Lines, maintain_and_log
from flowlens.collect.goldmane_json import flow_digest, flow_line
from flowlens.collect.metrics import Metrics
from flowlens.errors import CollectError, FlowlensError

log = logging.getLogger("flowlens.collect")

#: Buckets that ended this long ago are complete in Goldmane (it streams a bucket 15-30 s after
#: its end); newer ones are read from the stream. The margin allows for clocks that differ.
LIST_MARGIN = 60
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class GoldmaneOptions:
    """How to reach Goldmane and how often to commit (``flowlens collect goldmane`` options)."""

    address: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    commit_every: float = 15.0
    commit_flows: int = 50_000
    page_size: int = 1000
    history: int = GOLDMANE_HISTORY_SECONDS
    backoff_max: float = 60.0
    max_pending_flows: int = 500_000
    request_timeout: float = 60.0


def load_grpc() -> tuple[ModuleType, ModuleType, ModuleType]:
    """grpc and the generated Goldmane modules, or a CollectError that says how to install them."""
    try:
        import grpc

        from flowlens.collect.proto import goldmane_pb2, goldmane_pb2_grpc
    except ImportError as exc:
        raise CollectError(
            f"flowlens collect goldmane needs the collect extra ({exc}); install it with "
            "pip install 'flowlens[collect]'"
        ) from None
    return grpc, goldmane_pb2, goldmane_pb2_grpc


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CollectError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def channel_credentials(options: GoldmaneOptions) -> Any:
    """The TLS credentials of the channel: Goldmane requires a client certificate."""
    grpc, _, _ = load_grpc()
    if (options.cert is None) != (options.key is None):
        raise CollectError("--cert and --key go together: give both (Goldmane requires a client certificate)")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(options.ca, "CA bundle (--ca)"),
        private_key=_read(options.key, "client key (--key)"),
        certificate_chain=_read(options.cert, "client certificate (--cert)"),
    )


class GoldmaneCollector:
    """Pulls flows from one Goldmane into the store, exactly once. :meth:`run` until :meth:`stop`."""

    def __init__(
        self,
        committer: Committer,
        options: GoldmaneOptions,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.grpc, self.pb2, self.pb2_grpc = load_grpc()
        self.committer = committer
        self.options = options
        self.metrics = metrics
        self.clock = clock
        self._credentials = channel_credentials(options)
        recorded = committer.resumed or {}
        self.position = BucketPosition.from_json(recorded)
        self.committed = self.position.copy()
        self.totals = {
            k: int(recorded.get("totals", {}).get(k, 0)) for k in ("rows", "quarantined", "duplicates")
        }
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._dirty = False  # the position moved since the last commit
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._call: Any = None  # the stream being read, cancelled by stop()
        self._channel: Any = None
        self.heartbeat = time.monotonic()
        self.last_commit = 0.0
        self.connected = False

    # --- receiving --------------------------------------------------------------------------

    def receive(self, flow: Any) -> bool:
        """Take one ``goldmane.Flow``; whether it was new (else a duplicate, dropped)."""
        line = flow_line(flow)
        digest = flow_digest(flow)
        with self._cond:
            self.metrics.add("flows_received_total")
            if not self.position.accept(int(flow.start_time), int(flow.end_time), digest):
                self.metrics.add("duplicates_dropped_total")
                self.totals["duplicates"] += 1
                self._dirty = True  # the running totals change with the next commit
                return False
            self._pending.append(line)
            self._pending_bytes += len(line)
            self._dirty = True
            self.metrics.set("pending_flows", len(self._pending))
            self.metrics.set("pending_bytes", self._pending_bytes)
            if len(self._pending) >= self.options.commit_flows:
                self._cond.notify_all()
            # Bounded memory: past the limit, read no faster than the commits go.
            while len(self._pending) >= self.options.max_pending_flows and not self._stop.is_set():
                self._cond.wait(1.0)
        return True

    def _complete_until(self, boundary: int) -> None:
        with self._cond:
            before = self.position.complete_before
            self.position.complete_until(boundary)
            self._dirty = self._dirty or self.position.complete_before != before

    # --- one connection ---------------------------------------------------------------------

    def _connect(self) -> Any:
        grpc = self.grpc
        channel_options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
        ]
        if self.options.server_name:
            channel_options.append(("grpc.ssl_target_name_override", self.options.server_name))
        channel = grpc.secure_channel(self.options.address, self._credentials, channel_options)
        self._channel = channel
        return self.pb2_grpc.FlowsStub(channel)

    def _held(self, stub: Any) -> tuple[int, int] | None:
        """The starts of the oldest and the newest flow Goldmane holds (None: it holds none).
        Goldmane lists newest first, so with one flow a page, page 0 is the newest and the last
        page the oldest."""
        request = self.pb2.FlowListRequest
        timeout = self.options.request_timeout
        first = stub.List(request(start_time_gte=0, start_time_lt=0, page=0, page_size=1), timeout=timeout)
        pages = int(first.meta.totalPages)
        if pages == 0 or not first.flows:
            return None
        last = stub.List(
            request(start_time_gte=0, start_time_lt=0, page=pages - 1, page_size=1), timeout=timeout
        )
        flows = last.flows or first.flows
        return int(flows[-1].flow.start_time), int(first.flows[0].flow.start_time)

    def _check_loss(self, stub: Any) -> int | None:
        """Say what was lost (see :func:`lost_window`); the start of the newest flow held."""
        now = int(self.clock())
        held = self._held(stub)
        oldest, newest = held if held is not None else (None, None)
        with self._cond:
            start = self.position.complete_before
        lost = lost_window(start, oldest, now, self.options.history)
        if lost is not None:
            seconds = lost[1] - lost[0]
            with self._cond:
                self.position.record_loss(*lost)
                self.position.complete_until(lost[1])
                self._dirty = True
            self.metrics.add("lost_seconds_total", seconds)
            self.metrics.set("last_loss_timestamp_seconds", self.clock())
            log.error(
                "data lost: Goldmane no longer holds the flows of %s to %s (%d s); the collector was "
                "down longer than Goldmane keeps flows (about %d minutes)",
                _iso(lost[0]),
                _iso(lost[1]),
                seconds,
                self.options.history // 60,
                extra={"event": "data_lost", "fields": {"from": lost[0], "to": lost[1], "seconds": seconds}},
            )
        elif start == 0 and oldest is not None:
            # A first run takes everything Goldmane holds.
            self._complete_until(bucket_of(oldest))
        return newest

    def _backfill(self, stub: Any, newest: int | None) -> int:
        """List every whole bucket not had yet; the first bucket to stream from."""
        now = int(self.clock())
        list_end = bucket_of(now - LIST_MARGIN)
        if newest is not None:
            # Goldmane's clock may be behind this one: never list past the bucket before its
            # newest (the one it streams next at the earliest), or the stream would start after
            # buckets it has not streamed yet.
            list_end = min(list_end, bucket_of(newest) - BUCKET_SECONDS)
        with self._cond:
            start = self.position.complete_before
        if start == 0:
            return list_end  # Goldmane holds nothing: stream from a minute ago
        bucket = bucket_of(start)
        request = self.pb2.FlowListRequest
        timeout = self.options.request_timeout
        listed = 0
        if bucket < list_end:
            # Anything at all to list? (Goldmane idle: one request instead of one per bucket)
            probe = stub.List(
                request(start_time_gte=bucket, start_time_lt=list_end, page=0, page_size=1), timeout=timeout
            )
            if int(probe.meta.totalResults) == 0:
                bucket = list_end
        while bucket < list_end and not self._stop.is_set():
            page = 0
            while not self._stop.is_set():
                result = stub.List(
                    request(
                        start_time_gte=bucket,
                        start_time_lt=bucket + BUCKET_SECONDS,
                        page=page,
                        page_size=self.options.page_size,
                        aggregation_interval=BUCKET_SECONDS,
                    ),
                    timeout=timeout,
                )
                for item in result.flows:
                    self.receive(item.flow)
                    listed += 1
                page += 1
                if page >= int(result.meta.totalPages):
                    break
            if self._stop.is_set():
                break
            self._complete_until(bucket + BUCKET_SECONDS)
            bucket += BUCKET_SECONDS
        if not self._stop.is_set():
            self._complete_until(list_end)
        log.info(
            "listed %d flow(s) Goldmane held up to %s",
            listed,
            _iso(list_end),
            extra={"event": "backfill", "fields": {"flows": listed, "until": list_end}},
        )
        with self._cond:
            return max(self.position.complete_before, list_end)

    def _session(self) -> int:
        """One connection: loss check, backfill, stream. Returns the flows streamed."""
        stub = self._connect()
        newest = self._check_loss(stub)
        stream_from = self._backfill(stub, newest)
        if self._stop.is_set():
            return 0
        request = self.pb2.FlowStreamRequest(start_time_gte=stream_from, aggregation_interval=BUCKET_SECONDS)
        call = stub.Stream(request)
        self._call = call
        self.connected = True
        self.metrics.set("connected", 1)
        log.info(
            "streaming from %s",
            _iso(stream_from),
            extra={"event": "stream", "fields": {"address": self.options.address, "from": stream_from}},
        )
        streamed = 0
        for item in call:
            self.heartbeat = time.monotonic()
            self.receive(item.flow)
            streamed += 1
            if self._stop.is_set():
                break
        return streamed

    def _read_loop(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._session()
                reason = "the stream ended"
            except self.grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if self._stop.is_set() and code == self.grpc.StatusCode.CANCELLED:
                    break
                details = exc.details() if hasattr(exc, "details") else str(exc)
                reason = f"{getattr(code, 'name', code)}: {details}"
            finally:
                self.connected = False
                self.metrics.set("connected", 0)
                self._close_channel()
            if self._stop.is_set():
                break
            if time.monotonic() - started > 60:
                backoff = 1.0  # it worked for a while: retry soon
            self.metrics.add("reconnects_total")
            wait = backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security
            log.warning(
                "Goldmane at %s: %s; reconnecting in %.1f s",
                self.options.address,
                reason,
                wait,
                extra={"event": "reconnect", "fields": {"reason": reason, "wait_seconds": round(wait, 1)}},
            )
            self._stop.wait(wait)
            backoff = min(backoff * 2, self.options.backoff_max)

    def _close_channel(self) -> None:
        channel, self._channel, self._call = self._channel, None, None
        if channel is not None:
            channel.close()

    # --- commits ----------------------------------------------------------------------------

    def commit(self, wait: float | None = None) -> bool:
        """Commit the pending flows and the position; whether anything was committed."""
        with self._cond:
            if not self._pending and not self._dirty:
                return False
            lines, self._pending = self._pending, []
            size, self._pending_bytes = self._pending_bytes, 0
            snapshot = self.position.copy()
            self._dirty = False
            self._cond.notify_all()
        record = {
            "kind": "goldmane",
            "source": self.options.address,
            **snapshot.to_json(),
            "totals": dict(self.totals),
        }
        try:
            result = self.committer.commit(
                [Lines(b"".join(lines), "goldmane", self._source())], record, wait=wait
            )
        except BaseException:
            with self._cond:  # keep them for the next try: the position in memory has them
                self._pending = lines + self._pending
                self._pending_bytes += size
                self._dirty = True
            raise
        with self._cond:
            self.metrics.set("pending_flows", len(self._pending))
            self.metrics.set("pending_bytes", self._pending_bytes)
        self.committed = snapshot
        self.last_commit = time.monotonic()
        self.metrics.add("batches_received_total")
        self.metrics.committed(result.rows, result.quarantined, result.ignored, result.seconds, self.clock())
        self._update_lag()
        log.info(
            "committed %d row(s), %d quarantined, up to %s",
            result.rows,
            result.quarantined,
            _iso(snapshot.newest_end) if snapshot.newest_end else "-",
            extra={
                "event": "commit",
                "fields": {
                    "commit": result.commit_id,
                    "rows": result.rows,
                    "quarantined": result.quarantined,
                    "complete_before": snapshot.complete_before,
                    "open_flows": snapshot.open_flows(),
                    "seconds": round(result.seconds, 3),
                },
            },
        )
        return True

    def _update_lag(self) -> None:
        newest = self.committed.newest_end
        self.metrics.set("lag_seconds", max(0.0, self.clock() - newest) if newest else 0.0)

    def _source(self) -> str:
        return f"goldmane://{self.options.address}"

    def _commit_loop(self) -> None:
        every = self.options.commit_every
        failures = 0
        next_due = time.monotonic() + every
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stop.is_set() or len(self._pending) >= self.options.commit_flows,
                    timeout=max(0.0, next_due - time.monotonic()),
                )
            if self._stop.is_set():
                break
            self.heartbeat = time.monotonic()
            self._update_lag()
            try:
                self.commit()
                failures = 0
                maintain_and_log(self.committer)
            except FlowlensError as exc:
                failures += 1
                self.metrics.add("commit_failures_total")
                log.error(
                    "commit failed (%s); the flows stay pending and are committed with the next try",
                    exc,
                    extra={"event": "commit_failed", "fields": {"error": str(exc), "failures": failures}},
                )
            next_due = time.monotonic() + (
                every if failures == 0 else min(every * 2 ** min(failures, 10), 300.0)
            )

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> None:
        """Collect until :meth:`stop`; then commit what is pending (see :meth:`finish`)."""
        reader = threading.Thread(target=self._read_loop, name="goldmane-stream", daemon=True)
        reader.start()
        try:
            self._commit_loop()
        finally:
            self.stop()
            reader.join(timeout=30)

    def stop(self) -> None:
        """Ask :meth:`run` to return (from a signal handler or another thread)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        call = self._call
        if call is not None:
            call.cancel()

    def finish(self, commit: bool = True, wait: float | None = None) -> str:
        """After :meth:`run`: commit the pending flows (``commit``, waiting up to ``wait`` seconds
        for the store) or discard them; what happened."""
        with self._cond:
            pending = len(self._pending)
        if not commit or (pending == 0 and not self._dirty):
            return f"discarded {pending} pending flow(s)" if pending else "nothing pending"
        try:
            self.commit(wait)
        except FlowlensError as exc:
            return f"discarded {pending} pending flow(s): {exc} (Goldmane still holds them for the next run)"
        return f"committed {pending} pending flow(s)"


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
