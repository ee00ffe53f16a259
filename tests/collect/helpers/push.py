"""Test helpers for the push receiver: a receiver served on 127.0.0.1, and a client that posts
like Goldmane's emitter (retrying on any answer but 200) over HTTP or HTTPS."""

from __future__ import annotations

import gzip
import http.client
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlens.collect.committer import CollectOptions, Committer
from flowlens.collect.http import CollectorServer, Health, HTTPOptions, TLSOptions
from flowlens.collect.metrics import Metrics
from flowlens.collect.receiver import Receiver, ServeOptions
from flowlens.store import Store
from tests.collect.helpers.certs import Pki


class Served:
    """A receiver and its HTTP(S) server, in threads of the test."""

    def __init__(
        self,
        store: Store,
        *,
        tls: TLSOptions | None = None,
        options: ServeOptions | None = None,
        lock_wait: float = 10.0,
        max_reading_bytes: int = 512 * 1024 * 1024,
        collect: CollectOptions | None = None,
    ) -> None:
        self.options = options or ServeOptions(commit_every=0.05)
        self.metrics = Metrics("serve", "push")
        self.committer = Committer(store, "serve", collect or CollectOptions(lock_wait=lock_wait))
        self.receiver = Receiver(self.committer, self.options, self.metrics, source="test").start()
        health = Health(alive=lambda: True, ready=lambda: self.receiver.ready, details=lambda: {})
        self.server = CollectorServer(
            "127.0.0.1:0",
            metrics=self.metrics,
            health=health,
            receiver=self.receiver,
            tls=tls,
            options=HTTPOptions(
                max_body_bytes=self.options.max_body_bytes,
                max_reading_bytes=max_reading_bytes,
                pending_wait=1.0,
            ),
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.port

    def close(self) -> None:
        self.server.shutdown()
        self.receiver.close()
        self.server.server_close()
        self.committer.close()


@dataclass
class Sender:
    """Posts bodies the way Goldmane's emitter does: application/x-ndjson, retried on anything but 200."""

    port: int
    tls: Pki | None = None
    cert: tuple[Path, Path] | None = None
    path: str = "/api/v1/flows/bulk"
    attempts: list[int] = field(default_factory=list)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.tls is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        if self.cert is not None:
            context.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        return http.client.HTTPSConnection("localhost", self.port, context=context, timeout=timeout)

    def post(
        self,
        body: bytes,
        *,
        gzipped: bool = False,
        headers: dict[str, str] | None = None,
        path: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict[str, Any]]:
        """One POST; (status, JSON answer). Connection errors raise."""
        sent = gzip.compress(body) if gzipped else body
        all_headers = {"Content-Type": "application/x-ndjson", **(headers or {})}
        if gzipped:
            all_headers["Content-Encoding"] = "gzip"
        connection = self._connection(timeout)
        try:
            connection.request("POST", path or self.path, body=sent, headers=all_headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.attempts.append(response.status)
        return response.status, json.loads(data) if data else {}

    def post_until_ok(self, body: bytes, *, tries: int = 40, **kwargs: Any) -> dict[str, Any]:
        """Retry like the emitter (1 s doubling, here 0.05 s doubling up to 1 s) until a 200."""
        pause = 0.05
        for _ in range(tries):
            try:
                status, answer = self.post(body, **kwargs)
            except OSError:
                status, answer = 0, {}
            if status == 200:
                return answer
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        raise AssertionError(f"no 200 after {tries} tries: {self.attempts[-5:]}")

    def get(self, path: str) -> tuple[int, bytes]:
        connection = self._connection(10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def lines_body(lines: list[str]) -> bytes:
    """NDJSON the way the emitter joins it: lines separated by newlines, none after the last."""
    return "".join(lines).rstrip("\n").encode()


def fluent_bit_json_lines(lines: list[str]) -> bytes:
    """Fluent Bit's `http` output with `format json_lines`: each record with its `date` added."""
    out = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        record["date"] = 1796600000.123 + i
        out.append(json.dumps(record))
    return ("\n".join(out) + "\n").encode()
