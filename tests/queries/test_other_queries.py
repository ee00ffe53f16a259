"""top-talkers, namespace-matrix, external-destinations, policy-hits, workloads: given/expect rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.helpers import QUESTION_QUERIES
from tests.queries.helpers import at, flow, hep, net, netset, pick, run, wep

WEB = wep("shop", "web-5d8f7b9c6-*")
API = wep("shop", "api-6c7d8e9f0-*")
DB = wep("data", "postgres-0")
ALLOW = ["0|default|knp:x/allow|allow|0"]
DENY = ["0|default|knp:x/deny|deny|-1"]


def _both_ends(
    src: tuple, dst: tuple, connections: int, dst_action: str = "allow", **kw: object
) -> list[dict]:
    """A connection as Calico logs it: the source's report and the destination's report."""
    return [
        flow(src, dst, reporter="src", action="allow", num_flows_started=connections, **kw),
        flow(
            src,
            dst,
            reporter="dst",
            action=dst_action,
            num_flows_started=connections,
            enforced_policies=ALLOW if dst_action == "allow" else DENY,
            **kw,
        ),
    ]


# ---------------------------------------------------------------------------- top-talkers


def test_top_talkers_count_each_connection_once_at_the_last_point_it_reached(tmp_path: Path) -> None:
    rows = [
        *_both_ends(WEB, API, 10, bytes_in=100, bytes_out=100),  # counted from dst: 200 bytes
        flow(
            API,
            DB,
            reporter="src",
            action="deny",
            num_flows_started=3,
            enforced_policies=DENY,
            bytes_in=0,
            bytes_out=30,
        ),  # denied at egress: only the source saw it
        flow(
            API, net("pub"), reporter="src", num_flows_started=2, bytes_in=1000, bytes_out=1000, dest_port=443
        ),
        flow(API, net("pub"), reporter="src", num_flows_started=1, bytes_in=0, bytes_out=0, dest_port=80),
    ]
    got = run(tmp_path, rows, "top-talkers")
    assert pick(got, "source", "dest", "records", "connections", "denied_connections", "bytes", "ports") == [
        ("shop/api-6c7d8e9f0-*", "pub", 2, 3, 0, 2000, 2),
        ("shop/web-5d8f7b9c6-*", "shop/api-6c7d8e9f0-*", 1, 10, 0, 200, 1),
        ("shop/api-6c7d8e9f0-*", "data/postgres-0", 1, 3, 3, 30, 1),
    ]
    assert got[0]["packets"] == 30  # two records of 10 in + 5 out


def test_a_connection_denied_at_the_destination_is_counted_from_the_destination(tmp_path: Path) -> None:
    got = run(tmp_path, _both_ends(WEB, DB, 4, dst_action="deny"), "top-talkers")
    assert pick(got, "records", "connections", "denied_connections") == [(1, 4, 4)]


# ---------------------------------------------------------------------------- namespace-matrix


def test_namespace_matrix_groups_non_namespaced_endpoints_by_kind(tmp_path: Path) -> None:
    rows = [
        *_both_ends(WEB, DB, 5),
        *_both_ends(API, DB, 2, dst_action="deny"),
        flow(net("pub"), WEB, reporter="dst", num_flows_started=7),
        flow(WEB, net("pvt"), reporter="src", num_flows_started=1),
        flow(WEB, hep("node-1"), reporter="dst", num_flows_started=1),
        flow(WEB, netset("-", "partners"), reporter="src", num_flows_started=1),
    ]
    got = run(tmp_path, rows, "namespace-matrix")
    assert pick(
        got,
        "source_namespace",
        "dest_namespace",
        "connections",
        "allowed_connections",
        "denied_connections",
        "records",
    ) == [
        ("pub", "shop", 7, 7, 0, 1),
        ("shop", "data", 7, 5, 2, 2),
        ("shop", "global", 1, 1, 0, 1),
        ("shop", "host", 1, 1, 0, 1),
        ("shop", "pvt", 1, 1, 0, 1),
    ]


def test_namespace_matrix_totals_match_top_talkers(tmp_path: Path) -> None:
    rows = [
        *_both_ends(WEB, DB, 5),
        *_both_ends(API, WEB, 2, dst_action="deny"),
        flow(API, net("pub"), reporter="src", num_flows_started=4),
    ]
    matrix = run(tmp_path, rows, "namespace-matrix")
    talkers = run(tmp_path, rows, "top-talkers")
    assert sum(r["connections"] for r in matrix) == sum(r["connections"] for r in talkers) == 11
    assert sum(r["bytes"] for r in matrix) == sum(r["bytes"] for r in talkers)


# ---------------------------------------------------------------------------- external-destinations


def test_external_destinations_come_from_the_sources_reports(tmp_path: Path) -> None:
    rows = [
        flow(
            WEB,
            net("pub"),
            reporter="src",
            dest_port=443,
            num_flows_started=2,
            dest_domains=["b.example.com", "a.example.com"],
        ),
        flow(
            API,
            net("pub"),
            reporter="src",
            dest_port=443,
            num_flows_started=3,
            dest_domains=["b.example.com", "a.example.com"],
        ),
        flow(
            API,
            net("pub"),
            reporter="src",
            dest_port=443,
            action="deny",
            num_flows_started=1,
            enforced_policies=DENY,
            dest_domains=None,
            dest_ip="203.0.113.9",
        ),
        flow(API, netset("shop", "office"), reporter="src", dest_port=22, num_flows_started=1),
        flow(net("pub"), WEB, reporter="dst"),  # inbound: not an external destination
        *_both_ends(WEB, API, 1),  # inside the cluster
    ]
    got = run(tmp_path, rows, "external-destinations")
    assert pick(
        got, "dest", "dest_type", "dest_ip", "domains", "dest_port", "action", "sources", "connections"
    ) == [
        ("pub", "net", None, "a.example.com,b.example.com", 443, "allow", 2, 5),
        ("pub", "net", "203.0.113.9", None, 443, "deny", 1, 1),
        ("shop/office", "ns", None, None, 22, "allow", 1, 1),
    ]


# ---------------------------------------------------------------------------- policy-hits


def test_policy_hits_count_every_hit_of_a_trace_per_side(tmp_path: Path) -> None:
    passed = ["0|security|gnp:security.base|pass|0", "1|default|knp:shop/allow-web|allow|2"]
    rows = [
        flow(WEB, API, reporter="dst", enforced_policies=passed, num_flows_started=3, minute=0),
        flow(WEB, API, reporter="dst", enforced_policies=passed, num_flows_started=1, minute=30),
        flow(
            WEB,
            API,
            reporter="src",
            enforced_policies=["0|security|gnp:security.base|pass|0", "1|__PROFILE__|pro:kns.shop|allow|0"],
            num_flows_started=4,
        ),
        flow(
            WEB,
            DB,
            reporter="src",
            action="deny",
            enforced_policies=["0|security|gnp:security.base|deny|-1"],
            num_flows_started=1,
        ),
    ]
    got = run(tmp_path, rows, "policy-hits")
    assert pick(got, "tier", "policy", "rule_index", "action", "side", "records", "connections") == [
        ("default", "knp:shop/allow-web", 2, "allow", "ingress", 2, 4),
        ("security", "gnp:security.base", 0, "pass", "ingress", 2, 4),
        ("__PROFILE__", "pro:kns.shop", 0, "allow", "egress", 1, 4),
        ("security", "gnp:security.base", 0, "pass", "egress", 1, 4),
        ("security", "gnp:security.base", -1, "deny", "egress", 1, 1),
    ]
    ingress = next(r for r in got if r["policy"] == "knp:shop/allow-web")
    assert (ingress["first_seen"], ingress["last_seen"]) == (at(0), at(35))


def test_policy_hits_of_the_pending_trace_show_staged_policies(tmp_path: Path) -> None:
    rows = [
        flow(
            WEB,
            API,
            reporter="dst",
            enforced_policies=ALLOW,
            pending_policies=["0|default|sknp:shop/lockdown|deny|-1"],
            num_flows_started=2,
        )
    ]
    enforced = run(tmp_path, rows, "policy-hits")
    pending = run(tmp_path, rows, "policy-hits", trace="pending")
    assert pick(enforced, "policy", "staged") == [("knp:x/allow", False)]
    assert pick(pending, "policy", "action", "rule_index", "staged", "connections") == [
        ("sknp:shop/lockdown", "deny", -1, True, 2)
    ]


# ---------------------------------------------------------------------------- workloads


def test_workloads_list_every_endpoint_with_its_latest_logged_labels(tmp_path: Path) -> None:
    old_web = ("wep", "shop", "web-5d8f7b9c6-*", {"app": "web", "version": "1"})
    new_web = ("wep", "shop", "web-5d8f7b9c6-*", {"app": "web", "version": "2"})
    unlogged = ("wep", "shop", "web-5d8f7b9c6-*", None)
    rows = [
        flow(old_web, API, reporter="src", minute=0),
        flow(new_web, API, reporter="src", minute=10),
        flow(unlogged, API, reporter="src", minute=20),  # labels not logged: keep the last known
        flow(net("pub"), new_web, reporter="dst", minute=5),
        flow(hep("node-1"), DB, reporter="dst", minute=0),
    ]
    got = run(tmp_path, rows, "workloads")
    assert pick(got, "endpoint", "type", "namespace", "name", "records_as_source", "records_as_dest") == [
        ("node-1", "hep", "-", "node-1", 1, 0),
        ("pub", "net", "-", "pub", 1, 0),
        ("data/postgres-0", "wep", "data", "postgres-0", 0, 1),
        ("shop/api-6c7d8e9f0-*", "wep", "shop", "api-6c7d8e9f0-*", 0, 3),
        ("shop/web-5d8f7b9c6-*", "wep", "shop", "web-5d8f7b9c6-*", 3, 1),
    ]
    web = got[-1]
    assert dict(web["labels"]) == {"app": "web", "version": "2"}
    assert web["first_seen"] == at(0) and web["last_seen"] == at(25)


def test_workloads_filter_by_namespace(tmp_path: Path) -> None:
    rows = [flow(WEB, DB, reporter="src")]
    assert [r["endpoint"] for r in run(tmp_path, rows, "workloads", namespace="data")] == ["data/postgres-0"]
    assert run(tmp_path, rows, "workloads", namespace="x' or 1=1 --") == []


def test_every_query_ignores_records_outside_the_window(tmp_path: Path) -> None:
    from flowlens.engine import connect
    from tests.factories import write_store

    old = flow(
        WEB,
        DB,
        reporter="src",
        action="deny",
        enforced_policies=DENY,
        start_time=at(0) - dt.timedelta(days=3),
        end_time=at(5) - dt.timedelta(days=3),
    )
    write_store(tmp_path / "s", [old])
    with connect(tmp_path / "s", since=at(0) - dt.timedelta(hours=1)) as engine:
        for name in QUESTION_QUERIES:
            assert engine.run(name).num_rows == 0, name
    with connect(tmp_path / "s") as engine:
        assert engine.run("denied").num_rows == 1
