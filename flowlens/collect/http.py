"""The collectors' HTTP endpoint: ``POST /flows`` (push), ``/healthz``, ``/readyz``, ``/metrics``.

Why the standard library's threaded HTTP server: the receiver's cost is in parsing and writing
the records (DuckDB and Arrow, in C++, off the GIL), not in HTTP. Senders post large batches
(Goldmane's emitter a 5-minute window per request, Fluent Bit a chunk of up to a few MB), so a
few dozen requests a second carry 50,000 flows a second, and a thread per connection with
keep-alive handles that with room to spare (``bench/bench_collect.py`` measures it); an
asynchronous server would add a dependency and save nothing that shows. TLS is the standard
``ssl`` module's, the handshake done in each connection's own thread.

Limits, so that no sender can exhaust the collector: a body over ``max_body_bytes`` is refused
(413) before it is read; bodies being read take room in a byte budget (``max_reading_bytes``)
first, and a request that finds none within ``pending_wait`` seconds gets 503 with
``Retry-After``; at most ``max_connections`` connections are served at once; an idle or slow
connection is closed after ``timeout`` seconds. Bad requests get a 4xx status and a JSON body
that says why.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flowlens.collect.metrics import CONTENT_TYPE, Metrics
from flowlens.collect.receiver import Outcome, Receiver
from flowlens.errors import CollectError, UsageError

log = logging.getLogger("flowlens.collect")

#: Where flows are posted: flowlens' own path and the one Calico's operator gives the emitter.
FLOW_PATHS = ("/flows", "/api/v1/flows/bulk")


@dataclass(frozen=True)
class TLSOptions:
    """HTTPS: the server's certificate and key, and the CA that client certificates must chain to
    (None: no client certificate asked for)."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True)
class HTTPOptions:
    max_body_bytes: int
    max_reading_bytes: int = 512 * 1024 * 1024
    pending_wait: float = 10.0
    max_connections: int = 256
    timeout: float = 120.0


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` and ``/readyz`` answer: whether the collector works, and its numbers."""

    alive: Callable[[], bool]
    ready: Callable[[], bool]
    details: Callable[[], dict[str, Any]]


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8443`` for IPv6, ``:8080`` for every address) as (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {listen!r}: give HOST:PORT, e.g. 0.0.0.0:8443")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - the user's choice


def server_context(tls: TLSOptions) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(tls.cert), str(tls.key))
        if tls.client_ca is not None:
            context.load_verify_locations(str(tls.client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise CollectError(f"cannot load the TLS certificate, key or client CA: {exc}") from None
    return context


class _ByteBudget:
    """Room for bodies being read: at most ``total`` bytes at once."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.used and self.used + n > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class CollectorServer(ThreadingHTTPServer):
    """One thread per connection, TLS done in that thread, at most ``max_connections`` of them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self,
        listen: str,
        *,
        metrics: Metrics,
        health: Health,
        receiver: Receiver | None = None,
        tls: TLSOptions | None = None,
        options: HTTPOptions | None = None,
    ) -> None:
        self.metrics = metrics
        self.health = health
        self.receiver = receiver
        self.options = options or HTTPOptions(max_body_bytes=64 * 1024 * 1024)
        self.ssl_context = server_context(tls) if tls is not None else None
        self.budget = _ByteBudget(self.options.max_reading_bytes)
        self._slots = threading.BoundedSemaphore(self.options.max_connections)
        host, port = parse_listen(listen)
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise CollectError(f"cannot listen on {listen}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many connections: the sender retries
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            if self.ssl_context is not None:
                request.settimeout(self.options.timeout)
                try:
                    request = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    log.info(
                        "TLS handshake with %s failed: %s",
                        client_address[0],
                        exc,
                        extra={
                            "event": "tls_failed",
                            "fields": {"peer": client_address[0], "error": str(exc)},
                        },
                    )
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "flowlens"
    server: CollectorServer

    def setup(self) -> None:
        self.request.settimeout(self.server.options.timeout)  # an idle or slow sender is let go
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args, extra={"event": "http", "fields": {"peer": self.client_address[0]}})

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body, sort_keys=True).encode() + b"\n", "application/json", headers)

    def _refuse(
        self, status: int, message: str, *, close: bool = False, retry_after: int | None = None
    ) -> None:
        headers = {}
        if close:
            headers["Connection"] = "close"
            self.close_connection = True
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.server.metrics.add("batches_rejected_total")
        self._json(status, {"error": message}, headers)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        health = self.server.health
        if path == "/healthz":
            alive = health.alive()
            self._json(200 if alive else 503, {"status": "ok" if alive else "stalled", **health.details()})
        elif path == "/readyz":
            ready = health.ready()
            self._json(200 if ready else 503, {"status": "ready" if ready else "not ready"})
        elif path == "/metrics":
            self._send(200, self.server.metrics.render().encode(), CONTENT_TYPE)
        elif path in FLOW_PATHS and self.server.receiver is not None:
            self._json(405, {"error": "POST flows here"}, {"Allow": "POST"})
        else:
            self._json(404, {"error": f"no such path {path!r}"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        receiver = self.server.receiver
        if parts.path not in FLOW_PATHS or receiver is None:
            self._refuse(
                404, f"no such path {parts.path!r}; POST flows to {' or '.join(FLOW_PATHS)}", close=True
            )
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "send a Content-Length (chunked bodies are not accepted)", close=True)
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.strip().isdigit():
            self._refuse(411, "send a Content-Length", close=True)
            return
        length = int(length_text)
        limit = self.server.options.max_body_bytes
        if length > limit:
            self._refuse(413, f"the body is {length} bytes, more than {limit} (--max-body-bytes)", close=True)
            return
        budget = self.server.budget
        if not budget.acquire(length, self.server.options.pending_wait):
            self._refuse(503, "the receiver is busy; send the batch again", close=True, retry_after=2)
            return
        try:
            raw = self.rfile.read(length)
            if len(raw) != length:
                self.close_connection = True  # the sender went away mid-body: nothing to answer
                return
            query = parse_qs(parts.query)
            fmt = (query.get("format") or [self.headers.get("X-Flowlens-Format") or ""])[0] or None
            outcome = receiver.submit(
                raw, encoding=self.headers.get("Content-Encoding"), fmt=fmt, peer=self._peer()
            )
        finally:
            budget.release(length)
        self._answer(outcome)

    def _answer(self, outcome: Outcome) -> None:
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after is not None else None
        self._json(outcome.status, outcome.body, headers)

    def _peer(self) -> str:
        """Who sent the batch: the client certificate's common name, else the address."""
        connection = self.connection
        if isinstance(connection, ssl.SSLSocket):
            cert = connection.getpeercert()
            for rdn in (cert or {}).get("subject", ()):
                for attribute in rdn:
                    if attribute[0] == "commonName":
                        return str(attribute[1])
        return str(self.client_address[0])
