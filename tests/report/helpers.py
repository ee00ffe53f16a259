"""Hand-made stores and manifests for the report tests: small clusters whose coverage is known by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.factories import T0, flow_row, write_store

DAY = "2026-11-25"


def wep(side: str, namespace: str, name: str, **labels: str) -> dict[str, Any]:
    """Endpoint columns for one side ('source' or 'dest') of a pod workload."""
    return {
        f"{side}_type": "wep",
        f"{side}_namespace": namespace,
        f"{side}_name_aggr": name,
        f"{side}_labels": labels or {"app": name.split("-")[0]},
    }


def net(side: str, kind: str = "pub") -> dict[str, Any]:
    return {f"{side}_type": "net", f"{side}_namespace": "-", f"{side}_name_aggr": kind, f"{side}_labels": {}}


def hep(side: str, host: str) -> dict[str, Any]:
    return {f"{side}_type": "hep", f"{side}_namespace": "-", f"{side}_name_aggr": host, f"{side}_labels": {}}


def row(
    src: dict[str, Any],
    dst: dict[str, Any],
    reporter: str,
    hits: list[str] | None,
    *,
    action: str = "allow",
    port: int | None = 80,
    connections: int = 1,
    byte_count: int = 1000,
    pending: list[str] | None = None,
    at: dt.datetime = T0,
    **extra: Any,
) -> dict[str, Any]:
    """One flow record; ``bytes_in + bytes_out == byte_count`` and ``num_flows_started == connections``."""
    return flow_row(
        **src,
        **dst,
        reporter=reporter,
        action=action,
        dest_port=port,
        enforced_policies=hits,
        pending_policies=hits if pending is None else pending,
        num_flows=connections,
        num_flows_started=connections,
        num_flows_completed=connections,
        bytes_in=byte_count // 2,
        bytes_out=byte_count - byte_count // 2,
        start_time=at,
        end_time=at + dt.timedelta(minutes=5),
        **extra,
    )


PROFILE = "0|__PROFILE__|pro:kns.{ns}|allow|0"


def shop_rows(at: dt.datetime = T0) -> list[dict[str, Any]]:
    """A small shop: frontend, backend, db, monitoring, a node, the internet."""
    web, api = wep("source", "frontend", "web-7d4f8c9b5-*"), wep("dest", "backend", "api-6c7d8e9f0-*")
    api_src = wep("source", "backend", "api-6c7d8e9f0-*")
    pg = wep("dest", "db", "postgres-0")
    prom = wep("source", "monitoring", "prometheus-5b6c7d8e9-*")
    web_dst = wep("dest", "frontend", "web-7d4f8c9b5-*")
    api_dst = wep("dest", "backend", "api-6c7d8e9f0-*")
    pg_src = wep("source", "db", "postgres-0")
    return [
        # frontend -> backend: explicit on both sides.
        row(
            web,
            api,
            "src",
            ["0|default|np:frontend/default.web-egress|allow|0"],
            port=8080,
            connections=10,
            byte_count=20000,
            at=at,
        ),
        row(
            web,
            api,
            "dst",
            ["0|default|knp:backend/allow-web|allow|0"],
            port=8080,
            connections=10,
            byte_count=20000,
            at=at,
        ),
        # backend -> db: the source has no egress policy (profile), the destination allows explicitly.
        row(
            api_src,
            pg,
            "src",
            [PROFILE.format(ns="backend")],
            port=5432,
            connections=5,
            byte_count=50000,
            at=at,
        ),
        row(
            api_src,
            pg,
            "dst",
            ["0|default|knp:db/allow-api|allow|0"],
            port=5432,
            connections=5,
            byte_count=50000,
            at=at,
        ),
        # monitoring -> backend: a platform tier passes, then the profile allows (a pass chain = profile).
        row(
            prom,
            api_dst,
            "src",
            [PROFILE.format(ns="monitoring")],
            port=9090,
            connections=4,
            byte_count=4000,
            at=at,
        ),
        row(
            prom,
            api_dst,
            "dst",
            ["0|platform|gnp:platform.pass-monitoring|pass|0", "1|__PROFILE__|pro:kns.backend|allow|0"],
            port=9090,
            connections=4,
            byte_count=4000,
            at=at,
        ),
        # internet -> frontend: explicit.
        row(
            net("source"),
            web_dst,
            "dst",
            ["0|default|knp:frontend/allow-ingress|allow|0"],
            port=443,
            connections=20,
            byte_count=200000,
            at=at,
        ),
        # backend -> internet: profile.
        row(
            api_src,
            net("dest"),
            "src",
            [PROFILE.format(ns="backend")],
            port=443,
            connections=3,
            byte_count=9000,
            dest_domains=["api.stripe.com"],
            at=at,
        ),
        # monitoring -> db: allowed out by the profile, denied at the end of db's default tier.
        row(
            prom,
            pg,
            "src",
            [PROFILE.format(ns="monitoring")],
            port=5432,
            connections=2,
            byte_count=200,
            at=at,
        ),
        row(
            prom,
            pg,
            "dst",
            ["0|default|knp:db/allow-api|deny|-1"],
            action="deny",
            port=5432,
            connections=2,
            byte_count=200,
            at=at,
        ),
        # frontend -> db: denied at the source by an explicit rule of a security tier.
        row(
            web,
            pg,
            "src",
            ["0|security|gnp:security.deny-frontend-db|deny|0"],
            action="deny",
            port=5432,
            connections=1,
            byte_count=100,
            at=at,
        ),
        # db egress to a private network without a policy trace (policies not logged).
        row(
            pg_src,
            net("dest", "pvt"),
            "src",
            None,
            port=53,
            connections=1,
            byte_count=100,
            proto="udp",
            at=at,
        ),
        # a private address -> node-1 (host endpoint), explicit.
        row(
            net("source", "pvt"),
            hep("dest", "node-1"),
            "dst",
            ["0|host|gnp:host.allow-ssh|allow|0"],
            port=22,
            connections=1,
            byte_count=3000,
            at=at,
        ),
        # frontend -> backend on 8081: allowed now, a staged policy would deny it.
        row(
            web,
            api,
            "src",
            ["0|default|np:frontend/default.web-egress|allow|0"],
            port=8081,
            connections=2,
            byte_count=2000,
            at=at,
        ),
        row(
            web,
            api,
            "dst",
            ["0|default|knp:backend/allow-web|allow|1"],
            port=8081,
            connections=2,
            byte_count=2000,
            pending=["0|default|sknp:backend/tighten|deny|-1"],
            at=at,
        ),
    ]


def shop_store(root: Path, at: dt.datetime = T0) -> Path:
    return write_store(root, shop_rows(at))


INVENTORY = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {team: web}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: ops}}
- apiVersion: v1
  kind: Pod
  metadata: {name: web-abc-1, namespace: shop, generateName: web-abc-, labels: {app: web}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.1}
- apiVersion: v1
  kind: Pod
  metadata: {name: web-abc-2, namespace: shop, generateName: web-abc-, labels: {app: web}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.2}
- apiVersion: v1
  kind: Pod
  metadata: {name: db-0, namespace: shop, labels: {app: db}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.3}
- apiVersion: v1
  kind: Pod
  metadata: {name: tool-0, namespace: ops, labels: {app: tool}}
  spec: {serviceAccountName: default, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.4}
"""

POLICIES = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: would-select-everything}
spec:
  selector: all()
  types: [Ingress, Egress]
"""


def category_totals(rows: list[dict]) -> dict[str, tuple[int, int, int, int]]:
    """Per unexpected-allowed category: rows, records, connections and bytes."""
    out: dict[str, list[int]] = {}
    for r in rows:
        t = out.setdefault(r["category"], [0, 0, 0, 0])
        t[0] += 1
        t[1] += r["records"]
        t[2] += r["connections"]
        t[3] += r["bytes"]
    return {k: tuple(v) for k, v in sorted(out.items())}  # type: ignore[misc]
