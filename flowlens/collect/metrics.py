"""Metrics of a live collector, and their Prometheus text exposition (``GET /metrics``).

A collector counts what it received, committed, quarantined and dropped as duplicates, how far
it lags behind its source, when it last committed, and what it lost. :class:`Metrics` holds
those numbers (thread-safe: the receiving, committing and serving threads all update it) and
renders them in the Prometheus text format, version 0.0.4, without a client library: a few
counters and gauges need no more than this.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    """One metric: its name (without the ``flowlens_collect_`` prefix), type and help text."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str


METRICS: tuple[Metric, ...] = (
    Metric("flows_received_total", "counter", "Flow records received from the source (lines or messages)."),
    Metric("flows_committed_total", "counter", "Flow records committed to the store as rows."),
    Metric("flows_quarantined_total", "counter", "Records committed to the quarantine (bad lines)."),
    Metric("flows_ignored_total", "counter", "Framing lines ignored (event-stream separators)."),
    Metric(
        "duplicates_dropped_total",
        "counter",
        "Records or batches dropped because the store already holds them (a re-sent window or batch, "
        "a bucket streamed again after a reconnect).",
    ),
    Metric("batches_received_total", "counter", "Request bodies (push) or micro-batches (pull) received."),
    Metric("batches_rejected_total", "counter", "Requests answered with an error status (4xx or 5xx)."),
    Metric("commits_total", "counter", "Commits made to the store."),
    Metric("commit_failures_total", "counter", "Commits that failed (the data stays pending or is re-sent)."),
    Metric("commit_seconds_total", "counter", "Time spent committing, lock waits included."),
    Metric("last_commit_timestamp_seconds", "gauge", "Unix time of the last commit (0: none yet)."),
    Metric(
        "lag_seconds",
        "gauge",
        "Seconds between now and the end of the newest bucket committed (Goldmane); "
        "how long the oldest pending request has waited (push).",
    ),
    Metric("pending_flows", "gauge", "Records received and not committed yet."),
    Metric("pending_bytes", "gauge", "Bytes of records received and not committed yet."),
    Metric("connected", "gauge", "1 while the collector is connected to its source (Goldmane), else 0."),
    Metric("reconnects_total", "counter", "Connections to the source that failed or ended and were retried."),
    Metric(
        "lost_seconds_total",
        "counter",
        "Seconds of history the source no longer held when the collector got to them "
        "(it was down longer than Goldmane keeps flows).",
    ),
    Metric("last_loss_timestamp_seconds", "gauge", "Unix time at which data was last found lost (0: never)."),
)
PREFIX = "flowlens_collect_"


class Metrics:
    """The numbers of one collector, labelled with its name and kind."""

    def __init__(self, collector: str, kind: str) -> None:
        self.collector = collector
        self.kind = kind
        self._lock = threading.Lock()
        self._values: dict[str, float] = {m.name: 0.0 for m in METRICS}
        self.started = time.time()

    def add(self, name: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[name] += amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._values[name] = float(value)

    def get(self, name: str) -> float:
        with self._lock:
            return self._values[name]

    def committed(self, rows: int, quarantined: int, ignored: int, seconds: float, when: float) -> None:
        """Count one commit: its rows, quarantined and ignored lines, how long it took, when."""
        with self._lock:
            v = self._values
            v["commits_total"] += 1
            v["flows_committed_total"] += rows
            v["flows_quarantined_total"] += quarantined
            v["flows_ignored_total"] += ignored
            v["commit_seconds_total"] += seconds
            v["last_commit_timestamp_seconds"] = when

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format."""
        values = self.snapshot()
        labels = f'{{collector="{_escape(self.collector)}",kind="{_escape(self.kind)}"}}'
        out: list[str] = []
        for m in METRICS:
            full = PREFIX + m.name
            out.append(f"# HELP {full} {m.help}")
            out.append(f"# TYPE {full} {m.kind}")
            out.append(f"{full}{labels} {_number(values[m.name])}")
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)
