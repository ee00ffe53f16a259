"""Real applications (Online Boutique, Sock Shop, bookinfo with Istio) with what runs around them:
the screening holds none of their edges back, in both flavors, and the proof breaks nothing; probes
injected into the same stores are all held back while the applications' edges stay admitted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlens.policy.inventory import Inventory, load_inventory
from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.edges import External
from flowlens.suggest.observed import Workload
from flowlens.suggest.proof import prove
from tests.factories import write_store
from tests.suggest.helpers import apps, net_side, observed_of, pod_side
from tests.suggest.helpers.probes import probe_rows

#: Probes injected into each application: (kind, source, destination, ports).
Who = tuple[str, str]
PROBES: dict[str, list[tuple[str, Who, Who | None, Iterable[int]]]] = {
    "online-boutique": [
        ("port-scan", ("boutique", "frontend"), ("boutique", "redis-cart"), range(6380, 6420)),
        ("host-sweep", ("boutique", "loadgenerator"), None, [22]),
        ("one-off", ("-", "198.51.100.7"), ("boutique", "paymentservice"), [50051]),
    ],
    "sock-shop": [
        ("port-scan", ("sock-shop", "orders"), ("sock-shop", "user-db"), range(27018, 27040)),
        ("host-sweep", ("sock-shop", "front-end"), None, [6379]),
        ("one-off", ("sock-shop", "queue-master"), ("sock-shop", "catalogue-db"), [3306]),
    ],
    "bookinfo": [
        ("port-scan", ("bookinfo", "ratings"), ("bookinfo", "productpage"), range(9081, 9101)),
        ("no-listener", ("bookinfo", "details"), ("istio-system", "istiod"), [15014]),
        ("one-off", ("-", "192.0.2.99"), ("bookinfo", "reviews"), [9080]),
    ],
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[apps.Topology, Path, Inventory]]:
    root = tmp_path_factory.mktemp("apps")
    out = {}
    for name, make in sorted(apps.TOPOLOGIES.items()):
        topo = make()
        store = write_store(root / name, list(apps.rows(topo)))
        (root / f"{name}.yaml").write_text(apps.inventory(topo), encoding="utf-8")
        out[name] = (topo, store, load_inventory([root / f"{name}.yaml"]))
    return out


def _side(prefix: str, topo: apps.Topology, who: tuple[str, str]) -> dict[str, Any]:
    ns, name = who
    if ns == "-":
        return net_side(prefix, "pub", name)
    group, labels = topo.workload(f"{ns}/{name}").groups()[0]
    side = pod_side(prefix, name, ns)
    side[f"{prefix}_name_aggr"] = group
    side[f"{prefix}_labels"] = labels
    return side


def _name(side: Workload | External) -> str:
    """The workload's name (its one selector label's value), or the address."""
    if isinstance(side, External):
        return str(side.ip)
    return dict(side.selector).popitem()[1]


@pytest.mark.parametrize("flavor", ["kubernetes", "calico"])
@pytest.mark.parametrize("name", sorted(apps.TOPOLOGIES))
def test_no_edge_of_a_real_application_is_held_back(stores: dict[str, Any], name: str, flavor: str) -> None:
    topo, store, inventory = stores[name]
    reports, activity = observed_of(store, topo.namespaces)
    options = SuggestOptions(topo.namespaces, flavor=flavor)
    s = suggest(reports, options, inventory, activity=activity)
    assert s.plan.screening is not None and activity.exact
    assert [g.text for g in s.plan.screening.groups] == []
    result = prove(reports, options, suggestion=s, inventory=inventory)
    assert result.broken == () and result.expected == ()
    assert result.replayed > 20


def test_the_nightly_job_is_kept_and_its_thin_evidence_marked(stores: dict[str, Any]) -> None:
    topo, store, inventory = stores["online-boutique"]
    reports, activity = observed_of(store, topo.namespaces)
    s = suggest(reports, SuggestOptions(topo.namespaces), inventory, activity=activity)
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(s.stream())}
    assert docs["flowlens.catalog-export"]["spec"]["egress"][0]["ports"] == [
        {"protocol": "TCP", "port": 3550}
    ]
    text = s.stream()
    assert (
        "# THIN: to app=productcatalogservice (boutique) tcp/3550 was seen in only 2 intervals on 2 days"
        in text
    )
    assert "seen on 2 days in 2 intervals" in text
    assert "seen on 2 days in 576 intervals" in text  # the redis connection, kept alive throughout


@pytest.mark.parametrize("name", sorted(apps.TOPOLOGIES))
def test_probes_injected_into_a_real_application_are_all_held_back(
    stores: dict[str, Any], tmp_path: Path, name: str
) -> None:
    topo, _, inventory = stores[name]
    rows = list(apps.rows(topo))
    expected: dict[str, set[tuple[str, str, int]]] = {}
    at = apps.DAY0 + dt.timedelta(hours=15, minutes=5)
    for kind, source, dest, ports in PROBES[name]:
        dests = (
            [dest]
            if dest is not None
            else [
                (w.namespace, w.name)
                for w in topo.workloads
                if w.namespace in topo.namespaces and (w.namespace, w.name) != source
            ]
        )
        for d in dests:
            if any(
                c.source == "/".join(source) and c.dest == "/".join(d) and c.port in ports for c in topo.calls
            ):
                continue  # the application talks there for real: not a probe
            rows += probe_rows(_side("source", topo, source), _side("dest", topo, d), ports, at=at)
            expected.setdefault(kind, set()).update((source[1], d[1], p) for p in ports)
    injected = write_store(tmp_path / "store", rows)
    reports, activity = observed_of(injected, topo.namespaces)
    options = SuggestOptions(topo.namespaces)
    s = suggest(reports, options, inventory, activity=activity)
    assert s.plan.screening is not None
    held: dict[str, set[tuple[str, str, int]]] = {}
    for group in s.plan.screening.held_back:
        for edge in group.edges:
            assert edge.port.port is not None
            held.setdefault(group.kind, set()).add((_name(edge.source), _name(edge.dest), edge.port.port))
    assert held == expected, {
        k: held.get(k, set()) ^ expected.get(k, set()) for k in set(held) | set(expected)
    }
    result = prove(reports, options, suggestion=s, inventory=inventory)
    assert result.broken == ()
    assert {e.reason for e in result.expected} == {f"held back: {kind}" for kind in expected}
