"""Suspicious traffic to inject into test stores: the issue's port scan, as Calico Enterprise
``flows.log`` lines, derived from a real record of the same two workloads so that names, labels
and policies are exactly what the store already holds."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def find_record(logs: Path, **match: Any) -> dict[str, Any]:
    """The first Calico Enterprise record under ``logs`` whose fields equal ``match``."""
    for path in sorted(logs.rglob("flows.log*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                if all(record.get(k) == v for k, v in match.items()):
                    return record
    raise LookupError(f"no record with {match} under {logs}")


def scan_records(
    template: dict[str, Any],
    ports: Iterable[int],
    start: dt.datetime,
    *,
    seconds: float = 240,
    connection_bytes: tuple[int, int] = (80, 40),
    interval: int = 300,
) -> list[dict[str, Any]]:
    """One record per port and reporter of ``template``'s endpoints: one connection of
    ``sum(connection_bytes)`` bytes, the ports spread evenly over ``seconds`` from ``start``, each
    in the export interval its probe fell in."""
    ports = list(ports)
    out = []
    for i, port in enumerate(ports):
        at = start + dt.timedelta(seconds=seconds * i / max(1, len(ports) - 1))
        begin = int(at.timestamp()) // interval * interval
        for reporter in ("src", "dst"):
            record = copy.deepcopy(template)
            sent, received = connection_bytes
            record.update(
                start_time=begin,
                end_time=begin + interval,
                dest_port=port,
                reporter=reporter,
                action="allow",
                dest_service_namespace="-",
                dest_service_name="-",
                dest_service_port="-",
                dest_service_port_num=None,
                bytes_out=sent if reporter == "src" else received,
                bytes_in=received if reporter == "src" else sent,
                packets_out=2 if reporter == "src" else 1,
                packets_in=1 if reporter == "src" else 2,
                num_flows=1,
                num_flows_started=1,
                num_flows_completed=1,
            )
            out.append(record)
    return out


def write_log(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """``records`` as a ``flows.log`` file (one JSON object a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
    return path


def probe_rows(
    source: dict[str, Any],
    dest: dict[str, Any],
    ports: Iterable[int | None],
    *,
    proto: str = "tcp",
    connections: int = 1,
    connection_bytes: int = 120,
    at: dt.datetime | None = None,
    reporters: Sequence[str] = ("src", "dst"),
    action: str = "allow",
) -> list[dict[str, Any]]:
    """Store rows of a probe: ``connections`` tiny connections to each of ``ports``, all in the
    5-minute interval starting at ``at`` (default: the factories' T0)."""
    from tests.factories import T0, flow_row

    start = at or T0
    rows = []
    for port in ports:
        for reporter in reporters:
            rows.append(
                flow_row(
                    **source,
                    **dest,
                    proto=proto,
                    dest_port=port,
                    reporter=reporter,
                    action=action,
                    start_time=start,
                    end_time=start + dt.timedelta(minutes=5),
                    num_flows=connections,
                    num_flows_started=connections,
                    num_flows_completed=connections,
                    bytes_in=connection_bytes * connections // 3,
                    bytes_out=connection_bytes * connections - connection_bytes * connections // 3,
                    enforced_policies=["0|__PROFILE__|pro:kns.shop|allow|0"]
                    if action == "allow"
                    else ["0|default|knp:shop/deny|deny|-1"],
                )
            )
    return rows


def steady_rows(
    source: dict[str, Any],
    dest: dict[str, Any],
    port: int | None,
    *,
    proto: str = "tcp",
    intervals: int = 12,
    connections: int = 5,
    connection_bytes: int = 4000,
    reporters: Sequence[str] = ("src", "dst"),
    every: dt.timedelta = dt.timedelta(minutes=5),
) -> list[dict[str, Any]]:
    """Store rows of a legitimate edge: ``connections`` real connections in each of ``intervals``
    intervals ``every`` apart from the factories' T0."""
    from tests.factories import T0, flow_row

    rows = []
    for i in range(intervals):
        start = T0 + i * every
        for reporter in reporters:
            rows.append(
                flow_row(
                    **source,
                    **dest,
                    proto=proto,
                    dest_port=port,
                    reporter=reporter,
                    start_time=start,
                    end_time=start + dt.timedelta(minutes=5),
                    num_flows=connections,
                    num_flows_started=connections,
                    bytes_in=connection_bytes * connections // 2,
                    bytes_out=connection_bytes * connections // 2,
                )
            )
    return rows
