"""The `denied` query: given hand-made flows, expect these rows."""

from __future__ import annotations

from pathlib import Path

from tests.queries.helpers import at, flow, hep, net, pick, run, wep

CLIENT = wep("shop", "client-7d4f8c9b5-*")
API = wep("shop", "api-6c7d8e9f0-*")
DB = wep("data", "postgres-0")
KEYS = (
    "source",
    "dest",
    "proto",
    "dest_port",
    "side",
    "tier",
    "policy",
    "rule_index",
    "end_of_tier",
    "denied_by",
)
COUNTS = ("records", "connections", "bytes", "first_seen", "last_seen")


def test_denied_flows_are_grouped_by_endpoints_port_side_and_the_deciding_hit(tmp_path: Path) -> None:
    eot = ["0|security|gnp:security.baseline|pass|0", "1|default|knp:data/default-deny|deny|-1"]
    rows = [
        # Denied at the destination's ingress by an end-of-tier deny, twice (summed).
        flow(
            API,
            DB,
            reporter="dst",
            action="deny",
            dest_port=5432,
            enforced_policies=eot,
            num_flows_started=2,
            bytes_in=100,
            bytes_out=0,
            minute=0,
        ),
        flow(
            API,
            DB,
            reporter="dst",
            action="deny",
            dest_port=5432,
            enforced_policies=eot,
            num_flows_started=3,
            bytes_in=50,
            bytes_out=10,
            minute=10,
        ),
        # Denied at the source's egress by a rule.
        flow(
            CLIENT,
            net("pub"),
            reporter="src",
            action="deny",
            dest_port=443,
            enforced_policies=["0|security|gnp:security.block-list|deny|3"],
            num_flows_started=1,
            bytes_in=0,
            bytes_out=60,
        ),
        # Allowed flows are not denied flows.
        flow(CLIENT, API, reporter="src", action="allow"),
        flow(CLIENT, API, reporter="dst", action="allow"),
    ]
    got = run(tmp_path, rows, "denied")
    assert pick(got, *KEYS) == [
        (
            "shop/api-6c7d8e9f0-*",
            "data/postgres-0",
            "tcp",
            5432,
            "ingress at destination",
            "default",
            "knp:data/default-deny",
            -1,
            True,
            "end of tier default: no rule matched (blamed on knp:data/default-deny)",
        ),
        (
            "shop/client-7d4f8c9b5-*",
            "pub",
            "tcp",
            443,
            "egress at source",
            "security",
            "gnp:security.block-list",
            3,
            False,
            "gnp:security.block-list rule 3",
        ),
    ]
    assert pick(got, *COUNTS) == [(2, 5, 160, at(0), at(15)), (1, 1, 60, at(0), at(5))]
    assert pick(got, "source_type", "dest_type") == [("wep", "wep"), ("wep", "net")]


def test_endpoint_names_follow_their_type(tmp_path: Path) -> None:
    deny = {"action": "deny", "reporter": "dst", "enforced_policies": ["0|default|knp:shop/x|deny|-1"]}
    rows = [
        flow(net("pvt"), API, **deny, minute=0),
        flow(hep("node-7"), API, **deny, minute=1),
        flow(("ns", "-", "partners", {}), API, **deny, minute=2),
        flow(("ns", "shop", "office", {}), API, **deny, minute=3),
    ]
    got = run(tmp_path, rows, "denied")
    assert sorted(r["source"] for r in got) == ["node-7", "partners", "pvt", "shop/office"]


def test_a_flow_denied_at_the_destination_is_counted_once_not_with_the_sources_allow(tmp_path: Path) -> None:
    rows = [
        flow(CLIENT, API, reporter="src", action="allow", num_flows_started=4),
        flow(
            CLIENT,
            API,
            reporter="dst",
            action="deny",
            num_flows_started=4,
            enforced_policies=["0|default|knp:shop/default-deny|deny|-1"],
        ),
    ]
    got = run(tmp_path, rows, "denied")
    assert pick(got, "side", "records", "connections") == [("ingress at destination", 1, 4)]


def test_profile_and_missing_traces_say_what_denied(tmp_path: Path) -> None:
    rows = [
        flow(
            CLIENT, API, action="deny", enforced_policies=["0|__PROFILE__|pro:__NO_MATCH__|deny|0"], minute=0
        ),
        flow(CLIENT, DB, action="deny", enforced_policies=None, pending_policies=None, minute=1),
        flow(API, DB, action="deny", enforced_policies=["0|__PROFILE__|__PROFILE__.kns.shop|deny"], minute=2),
    ]
    got = {r["dest"] + " " + r["source"]: r for r in run(tmp_path, rows, "denied")}
    assert (
        got["shop/api-6c7d8e9f0-* shop/client-7d4f8c9b5-*"]["denied_by"] == "no profile matched the endpoint"
    )
    missing = got["data/postgres-0 shop/client-7d4f8c9b5-*"]
    assert (missing["policy"], missing["tier"], missing["rule_index"], missing["end_of_tier"]) == (
        None,
        None,
        None,
        False,
    )
    assert missing["denied_by"] == "unknown: the record has no enforced policy trace"
    assert got["data/postgres-0 shop/api-6c7d8e9f0-*"]["denied_by"] == "pro:kns.shop (rule unknown)"


def test_the_same_policy_at_different_trace_positions_is_one_row(tmp_path: Path) -> None:
    rows = [
        flow(CLIENT, API, action="deny", enforced_policies=["0|default|knp:shop/deny|deny|-1"], minute=0),
        flow(
            CLIENT,
            API,
            action="deny",
            minute=5,
            enforced_policies=["0|security|gnp:security.base|pass|0", "1|default|knp:shop/deny|deny|-1"],
        ),
    ]
    got = run(tmp_path, rows, "denied")
    assert pick(got, "policy", "records", "connections") == [("knp:shop/deny", 2, 2)]


def test_namespace_matches_the_source_or_the_destination(tmp_path: Path) -> None:
    deny = {"action": "deny", "enforced_policies": ["0|default|knp:x/deny|deny|-1"]}
    rows = [flow(CLIENT, API, **deny), flow(API, DB, **deny), flow(DB, DB, **deny)]
    assert sorted(r["dest"] for r in run(tmp_path, rows, "denied", namespace="data")) == [
        "data/postgres-0",
        "data/postgres-0",
    ]
    assert {r["source"] for r in run(tmp_path, rows, "denied", namespace="shop")} == {
        "shop/client-7d4f8c9b5-*",
        "shop/api-6c7d8e9f0-*",
    }


def test_a_namespace_that_looks_like_sql_is_just_a_value(tmp_path: Path) -> None:
    deny = {"action": "deny", "enforced_policies": ["0|default|knp:x/deny|deny|-1"]}
    rows = [flow(CLIENT, API, **deny)]
    assert run(tmp_path, rows, "denied", namespace="x' or 1=1 --") == []
    assert run(tmp_path, rows, "denied", namespace="shop' OR '1'='1") == []
    assert len(run(tmp_path, rows, "denied")) == 1


def test_rows_are_ranked_by_connections_then_bytes_and_ties_by_the_key_columns(tmp_path: Path) -> None:
    deny = {"action": "deny", "enforced_policies": ["0|default|knp:x/deny|deny|-1"]}
    rows = [
        flow(wep("b", "b"), API, **deny, num_flows_started=1, bytes_in=10, bytes_out=0),
        flow(wep("a", "a"), API, **deny, num_flows_started=1, bytes_in=10, bytes_out=0),
        flow(wep("c", "c"), API, **deny, num_flows_started=1, bytes_in=99, bytes_out=0),
        flow(wep("d", "d"), API, **deny, num_flows_started=7, bytes_in=1, bytes_out=0),
    ]
    assert [r["source"] for r in run(tmp_path, rows, "denied")] == ["d/d", "c/c", "a/a", "b/b"]


def test_a_flow_a_cluster_guardrail_denied_says_which_layer_in_both_hit_syntaxes(tmp_path: Path) -> None:
    deny = {"action": "deny", "reporter": "dst"}
    rows = [
        # 3.32+: a ClusterNetworkPolicy in kube-admin, and the kube-baseline one after the user tiers passed.
        flow(CLIENT, DB, **deny, enforced_policies=["0|kube-admin|kcnp:protect-data|deny|1"], minute=0),
        flow(
            API,
            DB,
            **deny,
            minute=1,
            enforced_policies=[
                "0|kube-admin|kcnp:protect-data|pass|0",
                "1|kube-baseline|kcnp:default-deny|deny|2",
            ],
        ),
        # 3.29-3.31: the AdminNetworkPolicy and BaselineAdminNetworkPolicy tiers (the store names the
        # kind as the modern syntax does: kanp:<name>, kbanp:<name>).
        flow(
            CLIENT, API, **deny, enforced_policies=["0|adminnetworkpolicy|kanp.adminnetworkpolicy.a|deny|0"]
        ),
        flow(
            DB,
            API,
            **deny,
            enforced_policies=[
                "0|baselineadminnetworkpolicy|kbanp.baselineadminnetworkpolicy.default|deny|3"
            ],
        ),
        # A namespace's own policy is no guardrail.
        flow(API, CLIENT, **deny, enforced_policies=["0|default|knp:shop/default-deny|deny|-1"]),
    ]
    got = sorted(pick(run(tmp_path, rows, "denied"), "source", "dest", "tier", "guardrail", "denied_by"))
    assert got == [
        (
            "data/postgres-0",
            "shop/api-6c7d8e9f0-*",
            "baselineadminnetworkpolicy",
            "baseline",
            "kbanp:default rule 3 (cluster guardrail, Baseline tier: no namespace policy decided it)",
        ),
        (
            "shop/api-6c7d8e9f0-*",
            "data/postgres-0",
            "kube-baseline",
            "baseline",
            "kcnp:default-deny rule 2 (cluster guardrail, Baseline tier: no namespace policy decided it)",
        ),
        (
            "shop/api-6c7d8e9f0-*",
            "shop/client-7d4f8c9b5-*",
            "default",
            None,
            "end of tier default: no rule matched (blamed on knp:shop/default-deny)",
        ),
        (
            "shop/client-7d4f8c9b5-*",
            "data/postgres-0",
            "kube-admin",
            "admin",
            "kcnp:protect-data rule 1 (cluster guardrail, Admin tier: namespace policies cannot override it)",
        ),
        (
            "shop/client-7d4f8c9b5-*",
            "shop/api-6c7d8e9f0-*",
            "adminnetworkpolicy",
            "admin",
            "kanp:a rule 0 (cluster guardrail, Admin tier: namespace policies cannot override it)",
        ),
    ]


def test_a_missing_byte_counter_counts_zero_and_keeps_the_other(tmp_path: Path) -> None:
    deny = {"action": "deny", "enforced_policies": ["0|default|knp:shop/default-deny|deny|-1"]}
    rows = [
        flow(CLIENT, API, **deny, num_flows_started=1, bytes_in=40, bytes_out=None, minute=0),
        flow(CLIENT, API, **deny, num_flows_started=None, bytes_in=None, bytes_out=2, minute=5),
        flow(CLIENT, API, **deny, num_flows_started=None, bytes_in=None, bytes_out=None, minute=10),
        flow(CLIENT, DB, **deny, num_flows_started=None, bytes_in=None, bytes_out=None, minute=0),
    ]
    got = run(tmp_path, rows, "denied")
    # bytes as unexpected-allowed counts them: a record lacking one counter still counts the
    # other; connections stay null when no record of the row has the counter.
    assert pick(got, "dest", "records", "connections", "bytes") == [
        ("shop/api-6c7d8e9f0-*", 3, 1, 42),
        ("data/postgres-0", 1, None, 0),
    ]
