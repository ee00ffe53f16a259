"""``flowlens collect goldmane`` and ``flowlens collect serve``: long-running live collectors.

Options, signals and logs only: the collectors themselves are :mod:`flowlens.collect`. Logs are
JSON lines on stderr (``--log-format text`` for people at a terminal); SIGTERM and SIGINT stop a
collector cleanly: what is pending is committed (within ``--stop-timeout``) or left to be sent
again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from flowlens.cli.common import StoreOpt, config, lifecycle_of, resolve_store

log = logging.getLogger("flowlens.collect")

GOLDMANE_HELP = """Pull Calico's flows from Goldmane (Calico open source 3.30+) as they happen.

On start it lists every 15-second bucket Goldmane still holds that the store lacks (Goldmane
keeps about an hour), then streams new buckets, committing every --commit-every seconds or
--commit-flows flows. After a restart it resumes where the last commit ended: nothing is missed
while Goldmane still holds it, nothing is stored twice. If it was down longer than Goldmane
keeps flows, it says which minutes were lost (log, metric, `flowlens status`).

Goldmane requires mutual TLS: a client certificate signed by the CA Calico's operator uses (see
docs/collect.md). /healthz, /readyz and /metrics are served on --listen.

  flowlens collect goldmane --address goldmane.calico-system:7443 --ca ca.crt \\
      --cert client.crt --key client.key --server-name goldmane.calico-system.svc
"""

SERVE_HELP = """Receive flow logs pushed over HTTP(S) and commit each batch exactly once.

POST one JSON flow per line to /flows (or /api/v1/flows/bulk, the path Calico's operator gives
Goldmane's emitter): Goldmane emitter windows, Fluent Bit `http` output with `json_lines`
(Calico Enterprise flows.log records), Elasticsearch hits, any format `flowlens ingest` reads;
gzip bodies included. The answer is 200 only once the batch is committed; a batch sent again
(a retry) adds nothing. Bad lines are quarantined as by ingest; a body that is not a flow log
gets a 4xx with the reason. HTTPS with --cert/--key, client certificates required with
--client-ca; plain HTTP without --cert. /healthz, /readyz and /metrics on the same port.

  flowlens collect serve --listen 0.0.0.0:8443 --cert tls.crt --key tls.key --client-ca ca.crt
"""


class JsonLines(logging.Formatter):
    """One JSON object per log record: time, level, event, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("flowlens")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _on_signals(stop: threading.Event, also: Any = None) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info(
            "received %s: stopping",
            signal.Signals(signum).name,
            extra={"event": "stopping", "fields": {"signal": signal.Signals(signum).name}},
        )
        stop.set()
        if also is not None:
            also()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


LogFormat = Annotated[str, typer.Option("--log-format", help="json (one object per line) or text.")]
LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
Cluster = Annotated[
    str | None,
    typer.Option("--cluster", help="The cluster of every row (default: the record's own, else 'default')."),
]
LockWait = Annotated[
    float,
    typer.Option(
        "--lock-wait",
        help="Seconds a commit waits while another writer (a cron `flowlens ingest`) holds the store.",
    ),
]
StopTimeout = Annotated[
    float,
    typer.Option("--stop-timeout", help="On SIGTERM, seconds to commit what is pending before giving it up."),
]
Name = Annotated[
    str, typer.Option("--name", help="The collector's name in the store (one collector per name and store).")
]


def _log_recovered(notes: list[str]) -> None:
    for note in notes:  # commits a killed writer left behind, finished or discarded
        log.info(note, extra={"event": "recovered", "fields": {}})


def _check_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    from flowlens.errors import UsageError

    if value not in choices:
        raise UsageError(f"{option} must be one of: {', '.join(choices)}")


def register(app: typer.Typer) -> None:
    collect = typer.Typer(
        name="collect",
        help="Collect Calico's flows continuously: pull from Goldmane, or receive pushed flow logs.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    app.add_typer(collect)

    @collect.command("goldmane", help=GOLDMANE_HELP)
    def goldmane_cmd(
        address: Annotated[str, typer.Option("--address", help="Goldmane's gRPC address, HOST:PORT.")],
        ca: Annotated[
            Path | None, typer.Option("--ca", help="CA bundle that signed Goldmane's certificate.")
        ] = None,
        cert: Annotated[
            Path | None, typer.Option("--cert", help="Client certificate Goldmane accepts.")
        ] = None,
        key: Annotated[Path | None, typer.Option("--key", help="The client certificate's key.")] = None,
        server_name: Annotated[
            str | None,
            typer.Option(
                "--server-name",
                help="Name to verify Goldmane's certificate against (e.g. goldmane.calico-system.svc).",
            ),
        ] = None,
        store: StoreOpt = None,
        name: Name = "goldmane",
        commit_every: Annotated[
            float, typer.Option("--commit-every", help="Commit at least this often, in seconds.")
        ] = 15.0,
        commit_flows: Annotated[
            int, typer.Option("--commit-flows", help="Commit as soon as this many flows wait.")
        ] = 50_000,
        listen: Annotated[
            str, typer.Option("--listen", help="Where to serve /healthz, /readyz and /metrics, HOST:PORT.")
        ] = "0.0.0.0:9108",
        cluster: Cluster = None,
        history: Annotated[
            int, typer.Option("--history", help="Seconds of flows Goldmane keeps (to tell what was lost).")
        ] = 3600,
        lock_wait: LockWait = 120.0,
        stop_timeout: StopTimeout = 20.0,
        log_format: LogFormat = "json",
        log_level: LogLevel = "info",
    ) -> None:
        from flowlens.collect.committer import CollectOptions, Committer
        from flowlens.collect.goldmane import GoldmaneCollector, GoldmaneOptions
        from flowlens.collect.http import CollectorServer, Health
        from flowlens.collect.metrics import Metrics
        from flowlens.errors import UsageError

        _check_choice(log_format, ("json", "text"), "--log-format")
        if commit_every <= 0 or commit_flows < 1:
            raise UsageError("--commit-every must be positive and --commit-flows at least 1")
        _setup_logging(log_format, log_level)
        target = resolve_store(store)
        options = GoldmaneOptions(
            address=address,
            ca=ca,
            cert=cert,
            key=key,
            server_name=server_name,
            commit_every=commit_every,
            commit_flows=commit_flows,
            history=history,
        )
        metrics = Metrics(name, "goldmane")
        committer = Committer(
            target,
            name,
            CollectOptions(cluster=cluster, lock_wait=lock_wait, lifecycle=lifecycle_of(config())),
        )
        _log_recovered(committer.recovered)
        collector = GoldmaneCollector(committer, options, metrics)
        stale = max(120.0, 4 * commit_every)
        health = Health(
            alive=lambda: time.monotonic() - collector.heartbeat < stale,
            ready=lambda: collector.connected,
            details=lambda: {
                "connected": collector.connected,
                "lag_seconds": round(metrics.get("lag_seconds"), 1),
                "last_commit": metrics.get("last_commit_timestamp_seconds"),
            },
        )
        server = CollectorServer(listen, metrics=metrics, health=health)
        threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
        stop = threading.Event()
        _on_signals(stop, collector.stop)
        log.info(
            "collecting from Goldmane at %s into %s",
            address,
            target.root,
            extra={
                "event": "start",
                "fields": {"address": address, "store": str(target.root), "listen": listen},
            },
        )
        try:
            collector.run()
        finally:
            outcome = collector.finish(commit=True, wait=stop_timeout)
            log.info(outcome, extra={"event": "stopped", "fields": {"outcome": outcome}})
            server.shutdown()
            server.server_close()
            committer.close()

    @collect.command("serve", help=SERVE_HELP)
    def serve_cmd(
        listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")] = "0.0.0.0:8443",
        cert: Annotated[
            Path | None, typer.Option("--cert", help="Server certificate (HTTPS); without it, plain HTTP.")
        ] = None,
        key: Annotated[Path | None, typer.Option("--key", help="The server certificate's key.")] = None,
        client_ca: Annotated[
            Path | None, typer.Option("--client-ca", help="Require client certificates signed by this CA.")
        ] = None,
        store: StoreOpt = None,
        name: Name = "serve",
        fmt: Annotated[
            str | None,
            typer.Option("--format", "-f", help="Read every body as this format instead of detecting it."),
        ] = None,
        commit_every: Annotated[
            float,
            typer.Option("--commit-every", help="Seconds a batch waits for others to share its commit."),
        ] = 1.0,
        commit_flows: Annotated[
            int, typer.Option("--commit-flows", help="Commit as soon as this many flows wait.")
        ] = 200_000,
        max_body_bytes: Annotated[
            int, typer.Option("--max-body-bytes", help="Largest request body, compressed or not.")
        ] = 64 * 1024 * 1024,
        max_pending_bytes: Annotated[
            int, typer.Option("--max-pending-bytes", help="Memory for batches waiting to be committed.")
        ] = 512 * 1024 * 1024,
        dedupe_window: Annotated[
            float,
            typer.Option("--dedupe-window", help="Seconds a committed batch is recognised when sent again."),
        ] = 3600.0,
        cluster: Cluster = None,
        lock_wait: LockWait = 60.0,
        stop_timeout: StopTimeout = 20.0,
        log_format: LogFormat = "json",
        log_level: LogLevel = "info",
    ) -> None:
        from flowlens.collect.committer import CollectOptions, Committer
        from flowlens.collect.http import CollectorServer, Health, HTTPOptions, TLSOptions
        from flowlens.collect.metrics import Metrics
        from flowlens.collect.receiver import Receiver, ServeOptions
        from flowlens.errors import UsageError
        from flowlens.formats import FORMATS

        _check_choice(log_format, ("json", "text"), "--log-format")
        if (cert is None) != (key is None):
            raise UsageError("--cert and --key go together")
        if client_ca is not None and cert is None:
            raise UsageError("--client-ca needs HTTPS: give --cert and --key too")
        if fmt is not None and fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
        if (
            commit_every < 0
            or commit_flows < 1
            or max_body_bytes < 1024
            or max_pending_bytes < max_body_bytes
        ):
            raise UsageError(
                "--commit-every must not be negative, --commit-flows at least 1, --max-body-bytes at least "
                "1024 and --max-pending-bytes at least --max-body-bytes"
            )
        _setup_logging(log_format, log_level)
        target = resolve_store(store)
        metrics = Metrics(name, "push")
        committer = Committer(
            target,
            name,
            CollectOptions(cluster=cluster, lock_wait=lock_wait, lifecycle=lifecycle_of(config())),
        )
        _log_recovered(committer.recovered)
        options = ServeOptions(
            commit_every=commit_every,
            commit_flows=commit_flows,
            max_body_bytes=max_body_bytes,
            max_pending_bytes=max_pending_bytes,
            dedupe_window=dedupe_window,
            format=fmt,
        )
        receiver = Receiver(committer, options, metrics, source=listen).start()
        stale = max(120.0, 4 * commit_every)
        health = Health(
            alive=lambda: time.monotonic() - receiver.heartbeat < stale,
            ready=lambda: receiver.ready,
            details=lambda: {
                "pending_bytes": metrics.get("pending_bytes"),
                "last_commit": metrics.get("last_commit_timestamp_seconds"),
            },
        )
        tls = TLSOptions(cert, key, client_ca) if cert is not None and key is not None else None
        server = CollectorServer(
            listen,
            metrics=metrics,
            health=health,
            receiver=receiver,
            tls=tls,
            options=HTTPOptions(max_body_bytes=max_body_bytes, max_reading_bytes=max_pending_bytes),
        )
        stop = threading.Event()
        _on_signals(stop)
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        log.info(
            "receiving flows on %s://%s:%d%s",
            server.scheme,
            *server.server_address[:2],
            "/flows",
            extra={
                "event": "start",
                "fields": {
                    "listen": listen,
                    "port": server.port,
                    "tls": tls is not None,
                    "store": str(target.root),
                },
            },
        )
        try:
            while not stop.wait(1.0):
                pass
        finally:
            server.shutdown()  # no new connections; requests being read still reach the receiver
            receiver.close(stop_timeout)  # commits what is pending: those senders get their 200
            server.server_close()
            committer.close()
            log.info("stopped", extra={"event": "stopped", "fields": {}})
