"""Hand-made observed traffic for suggest tests: a small shop with every kind of peer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flowlens.engine import connect
from flowlens.suggest import (
    DEFAULT_LABEL_KEYS,
    Suggestion,
    SuggestOptions,
    load_activity,
    load_reports,
    suggest,
)
from flowlens.suggest.activity import Activity
from flowlens.suggest.observed import Report, reports_from_rows
from tests.factories import T0, flow_row, write_store

HASHES = {"src": "5d8f7b9c6", "dst": "6c7d8e9f0"}


def pod_side(
    prefix: str,
    app: str,
    namespace: str,
    extra: Mapping[str, str] | None = None,
    template: str = "5d8f7b9c6",
) -> dict[str, Any]:
    """One side of a flow row: pods of ``app`` (replica set ``template``) in ``namespace``."""
    labels = {"app": app, "pod-template-hash": template, **(extra or {})}
    return {
        f"{prefix}_type": "wep",
        f"{prefix}_namespace": namespace,
        f"{prefix}_name_aggr": f"{app}-{template}-*",
        f"{prefix}_labels": labels,
        f"{prefix}_ip": None,
    }


def net_side(prefix: str, name: str, ip: str | None = None) -> dict[str, Any]:
    return {
        f"{prefix}_type": "net",
        f"{prefix}_namespace": "-",
        f"{prefix}_name_aggr": name,
        f"{prefix}_labels": {},
        f"{prefix}_ip": ip,
    }


def edge_rows(
    source: dict[str, Any],
    dest: dict[str, Any],
    port: int | None,
    *,
    proto: str = "tcp",
    reporters: Iterable[str] = ("src", "dst"),
    action: str = "allow",
    started: int = 3,
    minutes: int = 0,
) -> list[dict[str, Any]]:
    rows = []
    for reporter in reporters:
        start = T0 + dt.timedelta(minutes=minutes)
        rows.append(
            flow_row(
                **source,
                **dest,
                dest_port=port,
                proto=proto,
                reporter=reporter,
                action=action,
                num_flows=started,
                num_flows_started=started,
                start_time=start,
                end_time=start + dt.timedelta(minutes=5),
                enforced_policies=(
                    ["0|__PROFILE__|pro:kns.shop|allow|0"]
                    if action == "allow"
                    else ["0|default|knp:shop/old|deny|-1"]
                ),
            )
        )
    return rows


def shop_rows() -> list[dict[str, Any]]:
    """The fixed hand-made store behind the golden files."""
    rows: list[dict[str, Any]] = []
    fe = pod_side("source", "frontend", "shop")
    rows += edge_rows(fe, pod_side("dest", "cart", "shop"), 7070)
    rows += edge_rows(fe, pod_side("dest", "catalog", "shop"), 3550)
    rows += edge_rows(pod_side("source", "checkout", "shop"), pod_side("dest", "catalog", "shop"), 3550)
    rows += edge_rows(pod_side("source", "checkout", "shop"), pod_side("dest", "payment", "shop"), 50051)
    for port in (9000, 9001, 9002, 9005):
        rows += edge_rows(fe, pod_side("dest", "cache", "shop"), port, minutes=port - 9000)
    rows += edge_rows(
        pod_side("source", "prometheus", "monitoring"), pod_side("dest", "frontend", "shop"), 9090
    )
    rows += edge_rows(
        fe,
        pod_side("dest", "coredns", "kube-system", {"k8s-app": "kube-dns"}),
        53,
        proto="udp",
        reporters=("src",),
    )
    rows += edge_rows(fe, net_side("dest", "pub", "93.184.216.34"), 443, reporters=("src",))
    rows += edge_rows(fe, net_side("dest", "pub", "93.184.216.35"), 443, reporters=("src",))
    rows += edge_rows(fe, net_side("dest", "pub", "151.101.1.69"), 443, reporters=("src",))
    rows += edge_rows(
        pod_side("source", "payment", "shop"), net_side("dest", "pvt"), 5432, reporters=("src",)
    )
    rows += edge_rows(
        net_side("source", "pub"), pod_side("dest", "frontend", "shop"), 8080, reporters=("dst",)
    )
    # a rare edge and a denied one
    rows += edge_rows(
        pod_side("source", "cart", "shop"), pod_side("dest", "payment", "shop"), 50051, started=1
    )
    rows += edge_rows(
        pod_side("source", "checkout", "shop"),
        pod_side("dest", "cart", "shop"),
        7070,
        action="deny",
        reporters=("dst",),
    )
    return rows


def make_store(root: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    return write_store(root, shop_rows() if rows is None else rows)


def reports_of(store: Path, namespaces: Iterable[str] = ("shop",)) -> list[Report]:
    with connect(store) as engine:
        return load_reports(engine, list(namespaces))


def observed_of(
    store: Path, namespaces: Iterable[str] = ("shop",), label_keys: tuple[str, ...] = DEFAULT_LABEL_KEYS
) -> tuple[list[Report], Activity]:
    """The reports and their activity counted in the store, as the command reads them."""
    names = list(namespaces)
    with connect(store) as engine:
        reports = load_reports(engine, names)
        return reports, load_activity(engine, reports, names, label_keys)


def run(store: Path, **options: Any) -> Suggestion:
    namespaces = tuple(options.pop("namespaces", ("shop",)))
    opts = SuggestOptions(namespaces=namespaces, **options)
    reports, activity = observed_of(store, namespaces, opts.label_keys)
    return suggest(reports, opts, activity=activity)


def report_rows(rows: list[dict[str, Any]]) -> list[Report]:
    """Reports straight from rows (no store): each row is its own group."""
    out = []
    for r in rows:
        out.append(
            {
                **r,
                "records": 1,
                "connections": r["num_flows_started"],
                "live_connections": r["num_flows"],
                "bytes": r["bytes_in"] + r["bytes_out"],
                "first_seen": r["start_time"],
                "last_seen": r["end_time"],
            }
        )
    return reports_from_rows(out)
