"""flowlens.report.coverage: coverage computed on hand-made stores whose answers were worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlens.engine import connect
from flowlens.report.coverage import compute
from flowlens.report.metrics import Coverage, WorkloadCoverage
from tests.factories import write_store
from tests.report.helpers import PROFILE, category_totals, hep, net, row, shop_store, wep


def _coverage(root: Path, rows: list[dict] | None = None) -> Coverage:
    if rows is None:
        shop_store(root)
    else:
        write_store(root, rows)
    with connect(root) as engine:
        return compute(engine)


def _workload(cov: Coverage, namespace: str, name: str) -> WorkloadCoverage:
    return next(w for w in cov.workloads if (w.namespace, w.name) == (namespace, name))


A = wep("source", "a", "client-1-*")
B = wep("dest", "b", "server-1-*")


def test_an_allow_rule_hit_is_explicit_and_a_profile_hit_is_not(tmp_path: Path) -> None:
    cov = _coverage(
        tmp_path,
        [
            row(A, B, "dst", ["0|default|knp:b/allow|allow|0"], connections=3, byte_count=300),
            row(A, B, "dst", [PROFILE.format(ns="b")], port=81, connections=1, byte_count=700),
        ],
    )
    ingress = _workload(cov, "b", "server-1-*").ingress
    assert (ingress.allowed_connections, ingress.explicit_connections, ingress.profile_connections) == (
        4,
        3,
        1,
    )
    assert ingress.connection_coverage == pytest.approx(0.75)
    assert ingress.byte_coverage == pytest.approx(0.3)
    assert ingress.status == "exposed"


def test_a_pass_chain_that_ends_in_the_profile_counts_as_profile(tmp_path: Path) -> None:
    cov = _coverage(
        tmp_path,
        [
            row(A, B, "dst", ["0|tier1|gnp:tier1.ep2-4|pass|-1", "1|__PROFILE__|pro:kns.b|allow|0"]),
            row(A, B, "dst", ["0|tier1|np:b/tier1.np1-1|pass|0", "1|__PROFILE__|pro:kns.b|allow|0"], port=81),
        ],
    )
    ingress = _workload(cov, "b", "server-1-*").ingress
    assert ingress.profile_connections == 2
    assert ingress.explicit_connections == 0
    assert ingress.connection_coverage == 0.0


def test_a_pass_then_an_allow_rule_in_a_later_tier_is_explicit(tmp_path: Path) -> None:
    # Trace arrays arrive in any order: the allow hit is listed first on purpose.
    cov = _coverage(
        tmp_path, [row(A, B, "dst", ["1|default|knp:b/allow|allow|2", "0|platform|gnp:platform.p|pass|0"])]
    )
    ingress = _workload(cov, "b", "server-1-*").ingress
    assert (ingress.explicit_connections, ingress.profile_connections) == (1, 0)
    assert ingress.status == "protected"


def test_a_four_part_allow_hit_without_rule_index_is_explicit(tmp_path: Path) -> None:
    cov = _coverage(tmp_path, [row(A, B, "dst", ["0|default|b/knp.default.allow|allow"])])
    assert _workload(cov, "b", "server-1-*").ingress.explicit_connections == 1


def test_records_without_a_policy_trace_are_unattributed_and_lower_coverage(tmp_path: Path) -> None:
    cov = _coverage(
        tmp_path,
        [row(A, B, "dst", None), row(A, B, "dst", ["0|default|knp:b/allow|allow|0"], port=81)],
    )
    ingress = _workload(cov, "b", "server-1-*").ingress
    assert (ingress.unknown_connections, ingress.explicit_connections) == (1, 1)
    assert ingress.connection_coverage == pytest.approx(0.5)
    assert ingress.status == "unattributed"


def test_ingress_counts_destination_records_and_egress_counts_source_records(tmp_path: Path) -> None:
    cov = _coverage(
        tmp_path,
        [
            row(A, B, "src", [PROFILE.format(ns="a")], connections=7),
            row(A, B, "dst", ["0|default|knp:b/allow|allow|0"], connections=7),
        ],
    )
    client, server = _workload(cov, "a", "client-1-*"), _workload(cov, "b", "server-1-*")
    assert (client.egress.profile_connections, client.ingress.allowed_connections) == (7, 0)
    assert (server.ingress.explicit_connections, server.egress.allowed_connections) == (7, 0)
    assert client.egress.status == "exposed"
    assert client.ingress.status == "no traffic"
    assert server.ingress.status == "protected"


def test_the_shop_store_has_the_hand_computed_cluster_figures(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    ing, egr = cov.cluster_ingress, cov.cluster_egress
    assert (ing.allowed_connections, ing.explicit_connections, ing.profile_connections) == (41, 37, 4)
    assert (
        egr.allowed_connections,
        egr.explicit_connections,
        egr.profile_connections,
        egr.unknown_connections,
    ) == (
        27,
        12,
        14,
        1,
    )
    assert (ing.denied_connections, egr.denied_connections) == (2, 1)
    assert ing.end_of_tier_denied_connections == 2
    assert egr.end_of_tier_denied_connections == 0
    # Ingress: backend 12/16, db 5/5, frontend 20/20; every share is above the 10 % cap -> plain mean.
    assert cov.score.ingress == pytest.approx(100 * (0.75 + 1 + 1) / 3, abs=0.05)
    # Egress: frontend 1.0, backend 0, monitoring 0 (weights 0.1), db 0 with weight 1/27.
    assert cov.score.egress == pytest.approx(100 * 0.1 / (0.3 + 1 / 27), abs=0.05)
    assert cov.score.value == pytest.approx((cov.score.ingress + cov.score.egress) / 2, abs=0.06)
    assert cov.records == 15


def test_default_deny_per_namespace_follows_denies_and_profile_traffic(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    verdicts = {n.namespace: (n.default_deny_ingress, n.default_deny_egress) for n in cov.namespaces}
    assert verdicts == {
        "backend": ("absent", "absent"),
        "db": ("enforced", "unknown"),
        "frontend": ("implied", "enforced"),
        "monitoring": ("no traffic", "absent"),
    }


def test_denied_flows_and_denying_policies_are_ranked_with_end_of_tier_marked(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    assert [(d.source, d.dest, d.reporter, d.connections, d.end_of_tier) for d in cov.denied_flows] == [
        ("monitoring/prometheus-5b6c7d8e9-*", "db/postgres-0", "dst", 2, True),
        ("frontend/web-7d4f8c9b5-*", "db/postgres-0", "src", 1, False),
    ]
    assert [(p.policy, p.connections) for p in cov.denying_policies] == [
        ("KubernetesNetworkPolicy db/allow-api (tier default)", 2),
        ("GlobalNetworkPolicy security.deny-frontend-db (tier security)", 1),
    ]


def test_edges_count_each_connection_once_and_mark_cross_namespace(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    edges = {(e.source, e.dest): e for e in cov.edges}
    # frontend -> backend is reported by both sides (12 connections each); counted once.
    fb = edges[("frontend", "backend")]
    assert (fb.allowed_connections, fb.explicit_connections, fb.cross_namespace) == (12, 12, True)
    # frontend -> db was denied at the source, so only the source reported it.
    assert edges[("frontend", "db")].denied_connections == 1
    assert edges[("monitoring", "db")].denied_connections == 2
    assert edges[("monitoring", "db")].allowed_connections == 0
    assert edges[("(internet)", "frontend")].cross_namespace is False
    assert edges[("(private networks)", "(hosts)")].allowed_connections == 1
    assert sorted(k for k, e in edges.items() if e.cross_namespace) == [
        ("backend", "db"),
        ("frontend", "backend"),
        ("frontend", "db"),
        ("monitoring", "backend"),
        ("monitoring", "db"),
    ]


def test_internet_exposure_has_ingress_from_and_egress_to_public_networks(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    seen = {(x.direction, x.namespace, x.name): x for x in cov.internet}
    assert set(seen) == {("ingress", "frontend", "web-7d4f8c9b5-*"), ("egress", "backend", "api-6c7d8e9f0-*")}
    inbound = seen[("ingress", "frontend", "web-7d4f8c9b5-*")]
    assert (inbound.allowed_connections, inbound.explicit_connections, inbound.ports) == (
        20,
        20,
        ("tcp/443",),
    )
    outbound = seen[("egress", "backend", "api-6c7d8e9f0-*")]
    assert (outbound.profile_connections, outbound.destinations) == (3, 1)
    assert cov.state.external == ("api.stripe.com tcp/443",)


def test_host_endpoints_are_reported_apart_from_workloads(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    assert [(h.name, h.endpoint_type, h.ingress.explicit_connections) for h in cov.hosts] == [
        ("node-1", "hep", 1)
    ]
    assert all(w.endpoint_type == "wep" for w in cov.workloads)
    assert "node-1" not in {w.name for w in cov.workloads}


def test_unexpected_allowed_categories_come_from_the_named_query(tmp_path: Path) -> None:
    cov = _coverage(tmp_path)
    cats = {u.category: u for u in cov.unexpected}
    assert cats["staged-deny"].connections == 2
    assert cats["public-egress"].connections == 3
    assert cats["public-ingress"].connections == 20
    assert cats["default-allow"].connections == 18  # 4 ingress (pass chain) + 14 egress
    assert cats["default-allow"].examples[0].connections == 5


def test_an_empty_window_gives_empty_figures_and_no_score(tmp_path: Path) -> None:
    cov = _coverage(tmp_path, [])
    assert cov.records == 0
    assert cov.workloads == ()
    assert cov.score.value is None
    assert cov.cluster_ingress.connection_coverage is None


def test_host_endpoint_traffic_never_changes_workload_coverage(tmp_path: Path) -> None:
    cov = _coverage(
        tmp_path,
        [
            row(A, B, "dst", ["0|default|knp:b/allow|allow|0"]),
            row(net("source", "pvt"), hep("dest", "node-9"), "dst", [PROFILE.format(ns="default")]),
        ],
    )
    assert cov.cluster_ingress.connection_coverage == 1.0
    assert cov.hosts[0].ingress.status == "exposed"


def test_the_unexpected_categories_match_the_unexpected_allowed_query(tmp_path: Path) -> None:
    shop_store(tmp_path)
    with connect(tmp_path) as engine:
        cov = compute(engine)
        reference = category_totals(engine.run("unexpected-allowed", {}).to_pylist())
    ours = {u.category: (u.flows, u.records, u.connections, u.bytes) for u in cov.unexpected}
    assert ours == reference
    assert set(ours) == {
        "cross-namespace",
        "default-allow",
        "host-endpoint",
        "public-egress",
        "public-ingress",
        "staged-deny",
    }
