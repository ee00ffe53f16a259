"""Cluster guardrail suggestions (flowlens.suggest.cluster, ``suggest --cluster``): the Admin and
Baseline layers from the traffic of every namespace, rendered in both flavors, valid against the
shipped schemas, and proven by replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowlens.engine import connect
from flowlens.errors import UsageError
from flowlens.policy import policies_from_objects
from flowlens.policy.versions import CalicoVersion
from flowlens.suggest import load_reports
from flowlens.suggest.cluster import ClusterOptions, ClusterSuggestion, suggest_cluster
from flowlens.suggest.cluster.synth import ClusterPlan, Guardrail, GuardRule, Peer, Subject
from flowlens.suggest.validate import validate_objects
from tests.factories import write_store
from tests.helpers import run_cli
from tests.suggest.helpers import edge_rows, net_side, pod_side

NAMESPACES = ["billing", "edge", "kube-system", "monitoring", "shop"]


def cluster_rows() -> list[dict[str, Any]]:
    """Five namespaces: a shop calling billing, DNS, a scraper, an ingress controller, a scan."""
    fe, api = pod_side("source", "frontend", "shop"), pod_side("source", "api", "billing")
    rows = edge_rows(fe, pod_side("dest", "cart", "shop"), 7070)
    rows += edge_rows(fe, pod_side("dest", "api", "billing"), 8443, started=40)
    for src in (fe, api):
        rows += edge_rows(
            src, pod_side("dest", "coredns", "kube-system", {"k8s-app": "kube-dns"}), 53, proto="udp"
        )
    prom = pod_side("source", "prometheus", "monitoring")
    rows += edge_rows(prom, pod_side("dest", "frontend", "shop"), 9090, started=20)
    rows += edge_rows(prom, pod_side("dest", "api", "billing"), 9090, started=20)
    rows += edge_rows(net_side("source", "pub"), pod_side("dest", "nginx", "edge"), 443, reporters=("dst",))
    rows += edge_rows(
        pod_side("source", "nginx", "edge"), pod_side("dest", "frontend", "shop"), 8080, started=30
    )
    rows += edge_rows(api, net_side("dest", "pub", "203.0.113.7"), 443, reporters=("src",))
    # Denied at the destination: the source's egress was allowed, the connection was not.
    rows += edge_rows(fe, pod_side("dest", "db", "billing"), 5432, reporters=("dst",), action="deny")
    rows += edge_rows(fe, pod_side("dest", "db", "billing"), 5432, reporters=("src",))
    # A debug pod that tries fifteen ports of the billing API: a port scan.
    debug = pod_side("source", "debug", "shop")
    for port in range(8000, 8015):
        rows += edge_rows(debug, pod_side("dest", "api", "billing"), port, started=1, minutes=port - 8000)
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_store(tmp_path_factory.mktemp("cluster") / "store", cluster_rows())


def run(store: Path, **options: Any) -> ClusterSuggestion:
    with connect(store) as engine:
        reports = load_reports(engine, NAMESPACES)
        keys = engine.run("policy-flow-keys", {"namespace": None, "since": None, "until": None}).to_pylist()
    return suggest_cluster(reports, keys, ClusterOptions(**options))


def guardrail(s: ClusterSuggestion, name: str) -> Guardrail:
    (g,) = [g for g in s.plan.guardrails if g.name == name]
    return g


def rules(rules: tuple[GuardRule, ...]) -> list[tuple[str, str, list[str], list[str]]]:
    return [
        (r.name, r.action, [p.display for p in r.peers], [f"{proto}/{port}" for proto, port in r.ports])
        for r in rules
    ]


def test_the_admin_layer_passes_the_observed_paths_into_a_namespace_and_denies_the_rest(store: Path) -> None:
    s = run(store)
    assert rules(guardrail(s, "flowlens-admin-billing").ingress) == [
        ("same-namespace", "Pass", ["namespace billing"], []),
        ("from-monitoring-app-prometheus", "Pass", ["monitoring/app=prometheus"], ["tcp/9090"]),
        ("from-shop-app-frontend", "Pass", ["shop/app=frontend"], ["tcp/8443"]),
        ("other-namespaces", "Deny", ["any namespace"], []),
    ]
    # DNS asked from several namespaces: one path from any namespace, on the DNS ports only.
    assert ("dns-to-app-coredns", "Pass", ["any namespace"], ["udp/53"]) in rules(
        guardrail(s, "flowlens-admin-kube-system").ingress
    )


def test_the_baseline_layer_shares_dns_the_scraper_and_the_ingress_controller(store: Path) -> None:
    s = run(store)
    shared = guardrail(s, "flowlens-baseline-shared")
    assert shared.subject.namespaces == ("billing", "edge", "monitoring", "shop")  # not kube-system
    assert rules(shared.ingress) == [
        ("from-edge-app-nginx", "Accept", ["edge/app=nginx"], ["tcp/8080"]),
        ("from-monitoring-app-prometheus", "Accept", ["monitoring/app=prometheus"], ["tcp/9090"]),
    ]
    assert rules(shared.egress) == [("dns-to-app-coredns", "Accept", ["kube-system/app=coredns"], ["udp/53"])]
    client = guardrail(s, "flowlens-baseline-client-monitoring-app-prometheus")
    assert client.subject.pods == Peer("pods", "monitoring", (("app", "prometheus"),))
    assert rules(client.egress) == [("to-any-namespace", "Accept", ["any namespace"], ["tcp/9090"])]


def test_each_namespace_keeps_its_own_traffic_and_its_observed_exceptions_then_denies(store: Path) -> None:
    s = run(store)
    shop = guardrail(s, "flowlens-baseline-shop")
    assert rules(shop.egress) == [
        ("same-namespace", "Accept", ["namespace shop"], []),
        ("to-billing-app-api", "Accept", ["billing/app=api"], ["tcp/8443"]),
        ("default-deny", "Deny", ["0.0.0.0/0, ::/0"], []),
    ]
    billing = guardrail(s, "flowlens-baseline-billing")
    assert ("to-203-0-113-7-32", "Accept", ["203.0.113.7/32"], ["tcp/443"]) in rules(billing.egress)
    assert rules(billing.ingress)[-1] == ("default-deny", "Deny", ["any namespace"], [])
    assert any(
        line.startswith("evidence: shop to billing/app=api: 40 allowed connections")
        for r in shop.egress
        for line in r.evidence
    )


def test_a_port_scan_is_never_legitimised_and_the_proof_denies_it_on_purpose(store: Path) -> None:
    s = run(store)
    everything = [r for g in s.plan.guardrails for r in (*g.ingress, *g.egress)]
    assert not any(p.display == "shop/app=debug" for r in everything for p in r.peers)
    assert len(s.plan.held_back) == 15 and all("a port scan" in h for h in s.plan.held_back)
    assert (
        s.proof.ok and s.proof.held and all(b.row.source_name_aggr.startswith("debug-") for b in s.proof.held)
    )


def test_the_guardrails_are_proven_by_replay_and_decide_what_they_should(store: Path) -> None:
    s = run(store)
    assert s.proof.ok and s.repairs == 0
    assert s.proof.keys > 0 and s.proof.decided > 0
    # The frontend's egress to billing's database was denied at the destination: the baseline
    # denying it at the source changes nothing, so it is not counted as broken.
    assert not any("db-" in b.text for b in s.proof.broken)


@pytest.mark.parametrize("flavor", ["kubernetes", "calico"])
def test_every_emitted_object_is_valid_against_its_schema_and_reads_back_as_the_same_policies(
    store: Path, flavor: str
) -> None:
    s = run(store, flavor=flavor)
    assert validate_objects(s.objects()) == []
    loaded = policies_from_objects(s.objects())
    assert {p.tier for p in loaded.policies} == {"kube-admin", "kube-baseline"}
    assert len(loaded.policies) == len(s.plan.guardrails)


def test_the_calico_flavor_names_its_policies_by_tier_and_writes_a_tier_it_does_not_find(store: Path) -> None:
    s = run(store, flavor="calico", admin_tier="platform-guard")
    objects = s.objects()
    tiers = [o for o in objects if o["kind"] == "Tier"]
    assert [(t["metadata"]["name"], t["spec"]) for t in tiers] == [
        ("platform-guard", {"order": 1, "defaultAction": "Pass"})
    ]
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "GlobalNetworkPolicy"}
    assert (
        "platform-guard.flowlens-admin-billing" in names and "kube-baseline.flowlens-baseline-shop" in names
    )
    legacy = run(store, flavor="calico", calico_version=CalicoVersion(3, 31))
    assert {o["spec"]["tier"] for o in legacy.objects() if o["kind"] == "GlobalNetworkPolicy"} == {
        "adminnetworkpolicy",
        "baselineadminnetworkpolicy",
    }
    assert legacy.proof.ok


def test_clusternetworkpolicy_needs_calico_3_32(store: Path) -> None:
    with pytest.raises(UsageError, match=r"ClusterNetworkPolicy needs Calico v3\.32"):
        run(store, calico_version=CalicoVersion(3, 31))


def test_the_output_is_the_same_bytes_every_time(store: Path) -> None:
    assert run(store).stream() == run(store).stream()


def test_repair_drops_the_direction_a_broken_key_blames_and_says_why() -> None:
    deny = GuardRule("default-deny", "Deny", (Peer("any-namespace"),))
    g = Guardrail(
        "flowlens-baseline-shop", "Baseline", 100, Subject(("shop",)), ingress=(deny,), egress=(deny,)
    )
    plan = ClusterPlan((g,), (), (), ())
    kept = plan.without("flowlens-baseline-shop", "egress", "it would deny x")
    assert kept.guardrails[0].egress == () and kept.guardrails[0].ingress == (deny,)
    assert kept.left_out == ("flowlens-baseline-shop (egress): it would deny x",)
    assert plan.without("flowlens-baseline-shop", None, "y").guardrails == ()


def test_suggest_cluster_writes_both_layers_and_a_summary(store: Path, tmp_path: Path) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    result = run_cli(
        "suggest", "--cluster", "--store", store, "--out", out, "--summary-json", summary, "--validate"
    )
    assert result.code == 0, result
    assert sorted(p.name for p in out.iterdir()) == ["guardrails-admin.yaml", "guardrails-baseline.yaml"]
    assert "PROVEN: no recorded allowed connection is denied" in result.stderr
    assert "schema: every emitted object is valid" in result.stderr
    doc = json.loads(summary.read_text())
    assert doc["proven"] is True and "flowlens-baseline-shared" in doc["layers"]["Baseline"]


def test_suggest_cluster_refuses_namespace_options(store: Path) -> None:
    result = run_cli("suggest", "--cluster", "-n", "shop", "--store", store)
    assert result.code == UsageError.exit_code and "--cluster covers every namespace" in result.stderr


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.update(priority=1001), "spec/priority: 1001 is greater than the maximum of 1000"),
        (lambda s: s.update(tier="Platform"), "spec/tier: 'Platform' is not one of"),
        (lambda s: s["subject"].update(pods={"podSelector": {}}), "spec/subject"),
        (
            lambda s: s.update(
                egress=[
                    {
                        "action": "Deny",
                        "to": [{"networks": ["10.0.0.0/8"]}],
                        "protocols": [{"destinationNamedPort": "web"}],
                    }
                ]
            ),
            "spec/egress/0",
        ),
        (
            lambda s: s.update(ingress=[{"action": "Allow", "from": [{"namespaces": {}}]}]),
            "spec/ingress/0/action",
        ),
    ],
)
def test_the_clusternetworkpolicy_schema_refuses_what_its_crd_refuses(change: Any, problem: str) -> None:
    spec: dict[str, Any] = {"tier": "Admin", "priority": 1, "subject": {"namespaces": {}}}
    change(spec)
    doc = {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": "x"},
        "spec": spec,
    }
    problems = validate_objects([doc])
    assert problems and any(problem in p for p in problems), problems


def test_the_admin_network_policy_schemas_refuse_a_baseline_not_named_default_and_a_pass() -> None:
    banp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "mine"},
        "spec": {
            "subject": {"namespaces": {}},
            "ingress": [{"action": "Pass", "from": [{"namespaces": {}}]}],
        },
    }
    problems = validate_objects([banp])
    assert any("metadata/name" in p for p in problems) and any("spec/ingress/0/action" in p for p in problems)


def test_a_host_sweep_across_namespaces_is_held_back_as_suggest_holds_it_back(tmp_path: Path) -> None:
    # One tiny connection to port 22 of twelve workloads in four namespaces: no destination sees
    # more than one port, so only the shared screening (a host sweep) can tell it.
    from tests.suggest.helpers.probes import probe_rows

    rows = cluster_rows()
    sweeper = pod_side("source", "sweeper", "shop")
    for i in range(12):
        namespace = ("billing", "edge", "monitoring", "shop")[i % 4]
        rows += probe_rows(sweeper, pod_side("dest", f"svc{i}", namespace), [22])
    s = run(write_store(tmp_path / "store", rows))
    swept = [h for h in s.plan.held_back if "sweeper" in h]
    assert len(swept) == 12 and all("looks like a host sweep" in h for h in swept), s.plan.held_back
    everything = [r for g in s.plan.guardrails for r in (*g.ingress, *g.egress)]
    assert not any(p.display == "shop/app=sweeper" for r in everything for p in r.peers)
    assert not any(port == 22 for r in everything for _, port in r.ports)
    assert s.proof.ok
