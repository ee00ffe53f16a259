"""Real applications' call graphs as flow records: Online Boutique, Sock Shop and Istio's bookinfo,
each with what runs around it in a real cluster (DNS, Prometheus scraping, an ingress controller,
kubelet probes, a load balancer's health checks, a nightly job), over two days of 5-minute
Calico export intervals. Every edge here is legitimate: the screening must hold none back.

The call graphs follow the applications' own manifests (service names, ports and who calls
whom); traffic volumes are plausible, not measured: connections per interval, bytes per
connection (sent + received), keep-alive connections that live across intervals.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.factories import flow_row

DAY0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
INTERVAL = dt.timedelta(minutes=5)
ALLOWED = ["0|__PROFILE__|pro:kns.default|allow|0"]


@dataclass(frozen=True)
class Workload:
    namespace: str
    name: str
    ports: tuple[tuple[str, int], ...] = ()  # (proto, containerPort)
    labels: tuple[tuple[str, str], ...] = ()  # default: app=<name>
    replicas: int = 1
    versions: tuple[str, ...] = ()  # several Deployments under one app label (bookinfo's reviews)

    @property
    def pod_labels(self) -> dict[str, str]:
        return dict(self.labels) if self.labels else {"app": self.name}

    def groups(self) -> list[tuple[str, dict[str, str]]]:
        """(name_aggr, labels) of each Deployment's pods."""
        if not self.versions:
            return [
                (
                    f"{self.name}-{_hash(self.name)}-*",
                    {**self.pod_labels, "pod-template-hash": _hash(self.name)},
                )
            ]
        return [
            (
                f"{self.name}-{v}-{_hash(self.name + v)}-*",
                {**self.pod_labels, "version": v, "pod-template-hash": _hash(self.name + v)},
            )
            for v in self.versions
        ]


@dataclass(frozen=True)
class Call:
    """``source`` reaches ``dest`` on ``port``; ``rate``: new connections per interval;
    ``bytes``: per connection (or per interval for a kept-alive connection)."""

    source: str  # "namespace/name", "node:<name>" or "net:<ip>"
    dest: str
    port: int
    proto: str = "tcp"
    rate: float = 5.0
    bytes: int = 20_000
    persistent: bool = False
    schedule: str = "steady"  # steady | office (08-18 UTC) | nightly (02:00 UTC, once) | hourly


@dataclass(frozen=True)
class Topology:
    name: str
    workloads: tuple[Workload, ...]
    calls: tuple[Call, ...]
    namespaces: tuple[str, ...]  # the application's own namespaces (what suggest is run for)
    nodes: tuple[str, ...] = ("worker-1", "worker-2")
    extra: dict[str, Any] = field(default_factory=dict)

    def workload(self, ref: str) -> Workload:
        ns, _, name = ref.partition("/")
        return next(w for w in self.workloads if w.namespace == ns and w.name == name)


def _hash(text: str) -> str:
    return format(abs(hash_text(text)) % 16**9, "09x")


def hash_text(text: str) -> int:
    # A stable hash (Python's hash() of str changes per process).
    value = 0
    for ch in text:
        value = (value * 131 + ord(ch)) % (2**61 - 1)
    return value


def _platform(
    app_workloads: Sequence[Workload], frontends: Sequence[tuple[str, int]], scrape: dict[str, int]
) -> tuple[list[Workload], list[Call]]:
    """DNS, Prometheus, the ingress controller, kubelet probes and load-balancer health checks."""
    workloads = [
        Workload(
            "kube-system", "coredns", (("udp", 53), ("tcp", 53), ("tcp", 9153)), (("k8s-app", "kube-dns"),), 2
        ),
        Workload(
            "monitoring",
            "prometheus",
            (("tcp", 9090),),
            (("app.kubernetes.io/name", "prometheus"), ("app.kubernetes.io/instance", "k8s")),
        ),
        Workload(
            "ingress-nginx",
            "ingress-nginx-controller",
            (("tcp", 80), ("tcp", 443), ("tcp", 10254)),
            (("app.kubernetes.io/name", "ingress-nginx"), ("app.kubernetes.io/component", "controller")),
        ),
    ]
    calls: list[Call] = []
    for w in [*app_workloads, *workloads]:
        if w.namespace != "kube-system":
            calls.append(
                Call(f"{w.namespace}/{w.name}", "kube-system/coredns", 53, "udp", rate=12, bytes=230)
            )
    for w in app_workloads:
        port = scrape.get(w.name)
        if port:
            # Prometheus keeps one connection per target open and scrapes it every 30 s.
            calls.append(
                Call("monitoring/prometheus", f"{w.namespace}/{w.name}", port, persistent=True, bytes=180_000)
            )
        for proto, container_port in w.ports[:1]:
            if proto == "tcp":
                # kubelet probes from each pod's node: a small HTTP request every 10 s.
                calls.append(
                    Call("node:worker-1", f"{w.namespace}/{w.name}", container_port, rate=30, bytes=420)
                )
    calls.append(Call("monitoring/prometheus", "kube-system/coredns", 9153, persistent=True, bytes=90_000))
    calls.append(
        Call("monitoring/prometheus", "ingress-nginx/ingress-nginx-controller", 10254, persistent=True)
    )
    calls.append(Call("net:pub", "ingress-nginx/ingress-nginx-controller", 443, rate=60, bytes=45_000))
    for ip in ("10.0.0.5", "10.0.0.6", "10.0.0.7"):
        # the cloud load balancer's health checks of the controller
        calls.append(Call(f"net:{ip}", "ingress-nginx/ingress-nginx-controller", 10254, rate=30, bytes=380))
    for ref in frontends:
        calls.append(
            Call(
                "ingress-nginx/ingress-nginx-controller",
                ref[0],
                ref[1],
                persistent=True,
                bytes=2_000_000,
            )
        )
    return workloads, calls


def online_boutique() -> Topology:
    ns = "boutique"
    ws = [
        Workload(ns, "frontend", (("tcp", 8080),), replicas=2),
        Workload(ns, "cartservice", (("tcp", 7070),)),
        Workload(ns, "productcatalogservice", (("tcp", 3550),)),
        Workload(ns, "currencyservice", (("tcp", 7000),)),
        Workload(ns, "paymentservice", (("tcp", 50051),)),
        Workload(ns, "shippingservice", (("tcp", 50051),)),
        Workload(ns, "emailservice", (("tcp", 8080),)),
        Workload(ns, "checkoutservice", (("tcp", 5050),)),
        Workload(ns, "recommendationservice", (("tcp", 8080),)),
        Workload(ns, "adservice", (("tcp", 9555),)),
        Workload(ns, "redis-cart", (("tcp", 6379),)),
        Workload(ns, "loadgenerator"),
        Workload(ns, "catalog-export"),  # a nightly CronJob
    ]
    calls = [
        Call(f"{ns}/loadgenerator", f"{ns}/frontend", 8080, rate=40, bytes=9_000, schedule="office"),
        *(
            Call(f"{ns}/frontend", f"{ns}/{d}", p, rate=r, bytes=b)
            for d, p, r, b in [
                ("adservice", 9555, 20, 1_500),
                ("cartservice", 7070, 25, 1_200),
                ("checkoutservice", 5050, 3, 4_000),
                ("currencyservice", 7000, 60, 900),
                ("productcatalogservice", 3550, 50, 6_000),
                ("recommendationservice", 8080, 20, 1_800),
                ("shippingservice", 50051, 6, 1_100),
            ]
        ),
        *(
            Call(f"{ns}/checkoutservice", f"{ns}/{d}", p, rate=3, bytes=b)
            for d, p, b in [
                ("cartservice", 7070, 1_200),
                ("currencyservice", 7000, 900),
                ("emailservice", 8080, 3_000),
                ("paymentservice", 50051, 1_500),
                ("productcatalogservice", 3550, 2_500),
                ("shippingservice", 50051, 1_100),
            ]
        ),
        Call(f"{ns}/recommendationservice", f"{ns}/productcatalogservice", 3550, rate=20, bytes=6_000),
        Call(f"{ns}/cartservice", f"{ns}/redis-cart", 6379, persistent=True, bytes=400_000),
        Call(
            f"{ns}/catalog-export",
            f"{ns}/productcatalogservice",
            3550,
            rate=1,
            bytes=350_000,
            schedule="nightly",
        ),
    ]
    platform, platform_calls = _platform(ws, [(f"{ns}/frontend", 8080)], {})
    return Topology("online-boutique", (*ws, *platform), (*calls, *platform_calls), (ns,))


def sock_shop() -> Topology:
    ns = "sock-shop"

    def w(name: str, port: int, proto: str = "tcp", replicas: int = 1) -> Workload:
        return Workload(ns, name, ((proto, port),), (("name", name),), replicas)

    ws = [
        w("front-end", 8079, replicas=2),
        w("catalogue", 80),
        w("carts", 80),
        w("orders", 80),
        w("payment", 80),
        w("shipping", 80),
        w("user", 80),
        w("queue-master", 80),
        w("catalogue-db", 3306),
        w("carts-db", 27017),
        w("orders-db", 27017),
        w("user-db", 27017),
        Workload(ns, "rabbitmq", (("tcp", 5672), ("tcp", 9090)), (("name", "rabbitmq"),)),
        w("session-db", 6379),
        Workload("loadtest", "user-sim", (), (("name", "user-sim"),)),
    ]
    calls = [
        Call("loadtest/user-sim", f"{ns}/front-end", 8079, rate=30, bytes=12_000, schedule="office"),
        *(
            Call(f"{ns}/front-end", f"{ns}/{d}", p, rate=r, bytes=b)
            for d, p, r, b in [
                ("catalogue", 80, 30, 8_000),
                ("carts", 80, 12, 2_000),
                ("orders", 80, 2, 3_000),
                ("user", 80, 10, 1_500),
            ]
        ),
        Call(f"{ns}/front-end", f"{ns}/session-db", 6379, persistent=True, bytes=80_000),
        *(
            Call(f"{ns}/orders", f"{ns}/{d}", p, rate=2, bytes=b)
            for d, p, b in [
                ("carts", 80, 2_000),
                ("payment", 80, 900),
                ("shipping", 80, 1_200),
                ("user", 80, 1_500),
            ]
        ),
        Call(f"{ns}/orders", f"{ns}/orders-db", 27017, persistent=True, bytes=300_000),
        Call(f"{ns}/shipping", f"{ns}/rabbitmq", 5672, persistent=True, bytes=20_000),
        Call(f"{ns}/queue-master", f"{ns}/rabbitmq", 5672, persistent=True, bytes=20_000),
        Call(f"{ns}/catalogue", f"{ns}/catalogue-db", 3306, persistent=True, bytes=500_000),
        Call(f"{ns}/carts", f"{ns}/carts-db", 27017, persistent=True, bytes=300_000),
        Call(f"{ns}/user", f"{ns}/user-db", 27017, persistent=True, bytes=200_000),
    ]
    # Every Sock Shop service serves /metrics on its own port: Prometheus reaches eight of them on
    # port 80, the shape of a host sweep, but with kept-alive connections and real bytes.
    scrape = {x.name: x.ports[0][1] for x in ws if x.ports and x.ports[0][1] in (80, 8079)}
    scrape["rabbitmq"] = 9090
    platform, platform_calls = _platform(ws, [(f"{ns}/front-end", 8079)], scrape)
    return Topology("sock-shop", (*ws, *platform), (*calls, *platform_calls), (ns, "loadtest"))


def bookinfo() -> Topology:
    ns = "bookinfo"
    mesh = (("tcp", 9080), ("tcp", 15020), ("tcp", 15021), ("tcp", 15090))
    ws = [
        Workload(ns, "productpage", mesh, versions=("v1",)),
        Workload(ns, "details", mesh, versions=("v1",)),
        Workload(ns, "reviews", mesh, versions=("v1", "v2", "v3")),
        Workload(ns, "ratings", mesh, versions=("v1",)),
        Workload(
            "istio-system", "istiod", (("tcp", 15010), ("tcp", 15012), ("tcp", 15017)), (("app", "istiod"),)
        ),
        Workload(
            "istio-system",
            "istio-ingressgateway",
            (("tcp", 8080), ("tcp", 8443), ("tcp", 15021)),
            (("app", "istio-ingressgateway"), ("istio", "ingressgateway")),
        ),
    ]
    calls = [
        Call("istio-system/istio-ingressgateway", f"{ns}/productpage", 9080, rate=40, bytes=25_000),
        Call(f"{ns}/productpage", f"{ns}/details", 9080, rate=40, bytes=1_800),
        Call(f"{ns}/productpage", f"{ns}/reviews", 9080, rate=40, bytes=2_500),
        Call(f"{ns}/reviews", f"{ns}/ratings", 9080, rate=27, bytes=900),
        Call("net:pub", "istio-system/istio-ingressgateway", 8443, rate=40, bytes=40_000),
    ]
    for x in ws[:4]:
        # Every sidecar holds an xDS stream to istiod, Prometheus scrapes the merged metrics on
        # 15020 and the kubelet's rewritten probes reach the sidecar on 15021.
        calls.append(Call(f"{ns}/{x.name}", "istio-system/istiod", 15012, persistent=True, bytes=60_000))
        calls.append(Call("monitoring/prometheus", f"{ns}/{x.name}", 15020, persistent=True, bytes=120_000))
        calls.append(Call("node:worker-2", f"{ns}/{x.name}", 15021, rate=30, bytes=450))
    calls.append(Call("node:control-plane-1", "istio-system/istiod", 15017, rate=4, bytes=6_000))
    platform, platform_calls = _platform(ws[4:], [], {})
    return Topology("bookinfo", (*ws, *platform), (*calls, *platform_calls), (ns, "istio-system"))


TOPOLOGIES = {"online-boutique": online_boutique, "sock-shop": sock_shop, "bookinfo": bookinfo}


def _active(call: Call, at: dt.datetime, rnd: random.Random) -> int:
    """Connections started in the interval at ``at`` (0: none)."""
    if call.schedule == "nightly":
        return 1 if (at.hour, at.minute) == (2, 0) else 0
    if call.schedule == "office" and not 8 <= at.hour < 18:
        return 0
    if call.persistent:
        return 1 if at == DAY0 else 0
    expected = call.rate
    count = int(expected) + (1 if rnd.random() < expected - int(expected) else 0)
    return count


def _side(prefix: str, ref: str, topo: Topology, group: int) -> dict[str, Any]:
    if ref.startswith("node:"):
        return {
            f"{prefix}_type": "hep",
            f"{prefix}_namespace": "-",
            f"{prefix}_name_aggr": ref.removeprefix("node:"),
            f"{prefix}_labels": {"kubernetes.io/hostname": ref.removeprefix("node:")},
            f"{prefix}_ip": None,
        }
    if ref.startswith("net:"):
        value = ref.removeprefix("net:")
        named = value in ("pub", "pvt")
        return {
            f"{prefix}_type": "net",
            f"{prefix}_namespace": "-",
            f"{prefix}_name_aggr": value if named else "pvt",
            f"{prefix}_labels": {},
            f"{prefix}_ip": None if named else value,
        }
    w = topo.workload(ref)
    groups = w.groups()
    name_aggr, labels = groups[group % len(groups)]
    return {
        f"{prefix}_type": "wep",
        f"{prefix}_namespace": w.namespace,
        f"{prefix}_name_aggr": name_aggr,
        f"{prefix}_labels": labels,
        f"{prefix}_ip": None,
    }


def _reporters(call: Call) -> tuple[str, ...]:
    src = "src" if not call.source.startswith(("node:", "net:")) else None
    dst = "dst" if not call.dest.startswith(("node:", "net:")) else None
    return tuple(r for r in (src, dst) if r)


def rows(topo: Topology, days: int = 2, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Flow records of ``days`` days of the topology: one record per reporter, call and interval."""
    rnd = random.Random(seed)
    steps = days * 24 * 12
    cache: dict[tuple[Call, int, str], dict[str, Any]] = {}

    def template(call: Call, group: int, reporter: str) -> dict[str, Any]:
        key = (call, group, reporter)
        if key not in cache:
            cache[key] = flow_row(
                **_side("source", call.source, topo, group),
                **_side("dest", call.dest, topo, group),
                proto=call.proto,
                dest_port=call.port,
                reporter=reporter,
                action="allow",
                enforced_policies=ALLOWED,
                pending_policies=ALLOWED,
                host=f"node-{group}",
            )
        return cache[key]

    for call in topo.calls:
        groups = max(len(_groups(topo, call.source)), len(_groups(topo, call.dest)))
        for step in range(steps):
            at = DAY0 + step * INTERVAL
            started = _active(call, at, rnd)
            if call.persistent:
                live = 1 if call.schedule == "steady" or started else 0
                volume = call.bytes
            else:
                live = started
                volume = call.bytes * started
            if not live:
                continue
            for g in range(groups):
                for reporter in _reporters(call):
                    row = dict(template(call, g, reporter))
                    row.update(
                        start_time=at,
                        end_time=at + INTERVAL,
                        num_flows=live,
                        num_flows_started=started,
                        num_flows_completed=started if not call.persistent else 0,
                        bytes_out=volume * 2 // 5,
                        bytes_in=volume - volume * 2 // 5,
                        packets_in=1 + volume // 1400,
                        packets_out=1 + volume // 2000,
                    )
                    yield row


def _groups(topo: Topology, ref: str) -> list[tuple[str, dict[str, str]]]:
    if ref.startswith(("node:", "net:")):
        return [("", {})]
    return topo.workload(ref).groups()


def inventory(topo: Topology) -> str:
    """``kubectl get namespaces,pods -A -o yaml`` for the topology: pods with their container ports."""
    items: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
        }
        for ns in sorted({w.namespace for w in topo.workloads})
    ]
    for w in topo.workloads:
        for name_aggr, labels in w.groups():
            prefix = name_aggr.removesuffix("*")
            for i in range(w.replicas):
                items.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": f"{prefix}{i:05d}",
                            "generateName": prefix,
                            "namespace": w.namespace,
                            "labels": labels,
                        },
                        "spec": {
                            "containers": [
                                {
                                    "name": w.name,
                                    "ports": [
                                        {"containerPort": port, "protocol": proto.upper()}
                                        for proto, port in w.ports
                                    ],
                                }
                            ]
                        },
                        "status": {"phase": "Running"},
                    }
                )
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=True)
