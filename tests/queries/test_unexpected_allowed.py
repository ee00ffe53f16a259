"""The `unexpected-allowed` query: each category, its reason, and the reporter rule."""

from __future__ import annotations

from pathlib import Path

from tests.queries.helpers import flow, hep, net, pick, run, wep

WEB = wep("shop", "web-5d8f7b9c6-*")
API = wep("shop", "api-6c7d8e9f0-*")
DB = wep("data", "postgres-0")
KNP_API = ["0|default|knp:shop/allow-web|allow|0"]
NP_EGRESS = ["0|security|gnp:security.base|pass|0", "1|default|np:shop/default.egress|allow|1"]


def categories(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return sorted(pick(rows, "category", "source", "dest", "side", "allowed_by"))


def test_default_allow_is_reported_per_side_with_the_profile_that_allowed_it(tmp_path: Path) -> None:
    rows = [
        flow(WEB, API, reporter="src", enforced_policies=["0|__PROFILE__|pro:kns.shop|allow|0"]),
        flow(
            WEB,
            API,
            reporter="dst",
            enforced_policies=["0|security|gnp:security.base|pass|0", "1|__PROFILE__|pro:kns.shop|allow|0"],
        ),
        flow(API, WEB, reporter="src", enforced_policies=NP_EGRESS),
        flow(API, WEB, reporter="dst", enforced_policies=KNP_API),
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert categories(got) == [
        ("default-allow", "shop/web-5d8f7b9c6-*", "shop/api-6c7d8e9f0-*", "egress at source", "pro:kns.shop"),
        (
            "default-allow",
            "shop/web-5d8f7b9c6-*",
            "shop/api-6c7d8e9f0-*",
            "ingress at destination",
            "pro:kns.shop",
        ),
    ]
    assert {r["why"] for r in got} == {
        "no policy decided at the source (egress); the profile kns.shop allowed it by default",
        "no policy decided at the destination (ingress); the profile kns.shop allowed it by default",
    }


def test_public_ingress_is_internet_traffic_into_a_pod_counted_at_the_destination(tmp_path: Path) -> None:
    rows = [
        flow(net("pub"), WEB, reporter="dst", enforced_policies=KNP_API, num_flows_started=9),
        flow(net("pvt"), WEB, reporter="dst", enforced_policies=KNP_API),  # private: not public
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert categories(got) == [
        ("public-ingress", "pub", "shop/web-5d8f7b9c6-*", "ingress at destination", "knp:shop/allow-web")
    ]
    assert got[0]["why"] == "from the internet into pod shop/web-5d8f7b9c6-*, allowed by knp:shop/allow-web"
    assert got[0]["connections"] == 9


def test_public_egress_is_pod_or_host_traffic_to_the_internet_counted_at_the_source(tmp_path: Path) -> None:
    rows = [
        flow(API, net("pub"), reporter="src", enforced_policies=NP_EGRESS, dest_port=443),
        flow(hep("node-1"), net("pub"), reporter="src", enforced_policies=["0|host|gnp:host.out|allow|0"]),
        flow(API, net("pvt"), reporter="src", enforced_policies=NP_EGRESS),
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert categories(got) == [
        ("public-egress", "node-1", "pub", "egress at source", "gnp:host.out"),
        ("public-egress", "shop/api-6c7d8e9f0-*", "pub", "egress at source", "np:shop/default.egress"),
    ]
    assert "shop/api-6c7d8e9f0-* talks to the internet, allowed by np:shop/default.egress" in {
        r["why"] for r in got
    }


def test_cross_namespace_counts_a_connection_both_ends_reported_once(tmp_path: Path) -> None:
    rows = [
        flow(
            API, DB, reporter="src", enforced_policies=NP_EGRESS, num_flows_started=5, bytes_in=1, bytes_out=2
        ),
        flow(
            API,
            DB,
            reporter="dst",
            enforced_policies=["0|default|knp:data/allow-api|allow|0"],
            num_flows_started=5,
            bytes_in=20,
            bytes_out=10,
        ),
        flow(WEB, API, reporter="dst", enforced_policies=KNP_API),  # same namespace
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert categories(got) == [
        (
            "cross-namespace",
            "shop/api-6c7d8e9f0-*",
            "data/postgres-0",
            "ingress at destination",
            "knp:data/allow-api",
        )
    ]
    assert pick(got, "records", "connections", "bytes") == [(1, 5, 30)]
    assert got[0]["why"] == "from namespace shop into namespace data, allowed by knp:data/allow-api"


def test_staged_deny_names_the_pending_hit_that_would_deny(tmp_path: Path) -> None:
    rows = [
        flow(
            WEB,
            API,
            reporter="dst",
            enforced_policies=KNP_API,
            pending_policies=["0|default|sknp:shop/lockdown|deny|-1"],
            minute=0,
        ),
        flow(
            WEB,
            DB,
            reporter="src",
            enforced_policies=NP_EGRESS,
            pending_policies=["0|security|sgnp:security.strict|deny|2"],
            minute=0,
        ),
        flow(WEB, API, reporter="src", enforced_policies=NP_EGRESS, pending_policies=NP_EGRESS),
    ]
    got = [r for r in run(tmp_path, rows, "unexpected-allowed") if r["category"] == "staged-deny"]
    assert sorted(pick(got, "side", "why")) == [
        (
            "egress at source",
            "allowed now by np:shop/default.egress, but the pending trace ends in deny by "
            "sgnp:security.strict rule 2: a staged policy would break it",
        ),
        (
            "ingress at destination",
            "allowed now by knp:shop/allow-web, but the pending trace ends in deny by "
            "sknp:shop/lockdown (end of tier default): a staged policy would break it",
        ),
    ]


def test_host_endpoint_is_traffic_a_node_accepts(tmp_path: Path) -> None:
    rows = [
        flow(
            net("pvt"),
            hep("node-2"),
            reporter="dst",
            dest_port=22,
            enforced_policies=["0|host|gnp:host.ssh|allow|0"],
        ),
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert pick(got, "category", "source", "dest", "dest_port", "why") == [
        (
            "host-endpoint",
            "pvt",
            "node-2",
            22,
            "host node-2 accepts traffic from pvt, allowed by gnp:host.ssh",
        )
    ]


def test_a_flow_can_be_in_several_categories_and_the_category_parameter_picks_one(tmp_path: Path) -> None:
    rows = [
        flow(
            net("pub"),
            WEB,
            reporter="dst",
            enforced_policies=["0|__PROFILE__|pro:kns.shop|allow|0"],
            pending_policies=["0|default|sknp:shop/lockdown|deny|-1"],
        ),
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert sorted(r["category"] for r in got) == ["default-allow", "public-ingress", "staged-deny"]
    only = run(tmp_path, rows, "unexpected-allowed", category="public-ingress")
    assert [r["category"] for r in only] == ["public-ingress"]
    assert run(tmp_path, rows, "unexpected-allowed", category="no-such-category") == []


def test_denied_flows_and_transit_records_are_never_unexpectedly_allowed(tmp_path: Path) -> None:
    rows = [
        flow(
            net("pub"), WEB, reporter="dst", action="deny", enforced_policies=["0|default|knp:shop/d|deny|-1"]
        ),
        flow(net("pub"), WEB, reporter="fwd", enforced_policies=["0|__PROFILE__|pro:kns.shop|allow|0"]),
    ]
    assert run(tmp_path, rows, "unexpected-allowed") == []


def test_rows_are_ranked_by_connections_then_bytes(tmp_path: Path) -> None:
    rows = [
        flow(net("pub"), WEB, reporter="dst", enforced_policies=KNP_API, num_flows_started=1, bytes_in=5),
        flow(API, net("pub"), reporter="src", enforced_policies=NP_EGRESS, num_flows_started=3, bytes_in=1),
        flow(
            net("pvt"), hep("n"), reporter="dst", enforced_policies=KNP_API, num_flows_started=1, bytes_in=50
        ),
    ]
    got = run(tmp_path, rows, "unexpected-allowed")
    assert [r["category"] for r in got] == ["public-egress", "host-endpoint", "public-ingress"]


def test_namespace_filter_and_injection_attempts(tmp_path: Path) -> None:
    rows = [flow(net("pub"), WEB, reporter="dst", enforced_policies=KNP_API)]
    assert len(run(tmp_path, rows, "unexpected-allowed", namespace="shop")) == 1
    assert run(tmp_path, rows, "unexpected-allowed", namespace="data") == []
    assert run(tmp_path, rows, "unexpected-allowed", namespace="x' or 1=1 --") == []
    assert run(tmp_path, rows, "unexpected-allowed", category="x' or 1=1 --") == []


def test_traffic_a_cluster_guardrail_allowed_says_which_layer(tmp_path: Path) -> None:
    rows = [
        # 3.32+: an Admin ClusterNetworkPolicy lets monitoring scrape every namespace.
        flow(
            wep("monitoring", "prometheus-0"),
            API,
            reporter="dst",
            enforced_policies=["0|kube-admin|kcnp:allow-monitoring|allow|0"],
        ),
        # 3.29-3.31: a BaselineAdminNetworkPolicy allows it when no namespace policy decided.
        flow(
            WEB,
            DB,
            reporter="dst",
            enforced_policies=[
                "0|adminnetworkpolicy|kanp.adminnetworkpolicy.guard|pass|0",
                "1|baselineadminnetworkpolicy|kbanp.baselineadminnetworkpolicy.default|allow|1",
            ],
        ),
        flow(API, DB, reporter="dst", enforced_policies=["0|default|knp:data/allow-api|allow|0"]),
    ]
    got = sorted(pick(run(tmp_path, rows, "unexpected-allowed"), "source", "allowed_by", "guardrail", "why"))
    assert got == [
        (
            "monitoring/prometheus-0",
            "kcnp:allow-monitoring",
            "admin",
            "from namespace monitoring into namespace shop, allowed by kcnp:allow-monitoring"
            " (a cluster guardrail, Admin tier: namespace policies cannot override it)",
        ),
        (
            "shop/api-6c7d8e9f0-*",
            "knp:data/allow-api",
            None,
            "from namespace shop into namespace data, allowed by knp:data/allow-api",
        ),
        (
            "shop/web-5d8f7b9c6-*",
            "kbanp:default",
            "baseline",
            "from namespace shop into namespace data, allowed by kbanp:default"
            " (a cluster guardrail, Baseline tier: no namespace policy decided it)",
        ),
    ]
