"""Synthesis details: workload identity, aggregation artefacts, ports, addresses, options."""

from __future__ import annotations

import ipaddress

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.cidr import ANY_V4, RFC1918, aggregate, count_addresses, host_network
from flowlens.suggest.edges import Port
from flowlens.suggest.model import Peer
from flowlens.suggest.observed import choose_selector, intersect_labels
from flowlens.suggest.synth import _build_rules
from tests.suggest.helpers import edge_rows, net_side, pod_side, report_rows


def _docs(rows, **options):
    namespaces = options.pop("namespaces", ("shop",))
    s = suggest(report_rows(rows), SuggestOptions(namespaces=namespaces, **options))
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(s.stream())}, s


def test_pod_template_hash_is_never_part_of_a_selector() -> None:
    assert choose_selector((("pod-template-hash", "abc"),), ("app",)) == ((), "unlabelled")
    sel, how = choose_selector((("pod-template-hash", "abc"), ("tier", "web")), ("app",))
    assert sel == (("tier", "web"),) and how == "fallback"


def test_the_first_label_key_present_wins() -> None:
    labels = (("app.kubernetes.io/name", "x"), ("k8s-app", "y"))
    assert choose_selector(labels, ("app", "app.kubernetes.io/name", "k8s-app")) == (
        (("app.kubernetes.io/name", "x"),),
        "label-keys",
    )


def test_labels_are_intersected_over_every_record_of_a_pod_group() -> None:
    assert intersect_labels([(("app", "x"), ("v", "1")), (("app", "x"), ("v", "2")), None]) == (("app", "x"),)
    assert intersect_labels([None, None]) is None


def test_a_workload_without_label_keys_falls_back_to_its_common_labels_and_says_so() -> None:
    src = pod_side("source", "x", "shop")
    src["source_labels"] = {"tier": "web", "pod-template-hash": "1"}
    src["source_name_aggr"] = "web-1-*"
    docs, s = _docs(edge_rows(src, pod_side("dest", "api", "shop"), 80))
    web = docs["flowlens.web"]
    assert web["spec"]["podSelector"] == {"matchLabels": {"tier": "web"}}
    assert any("carry none of the label keys" in n for n in s.plan.namespaces[0].notes)
    assert "selected by common labels" in s.stream()


def test_both_reporters_of_one_connection_are_not_double_counted() -> None:
    rows = edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80, started=5)
    _, s = _docs(rows)
    rule = s.plan.namespaces[0].policies[0].egress[0]
    assert [e.connections for e in rule.evidence] == [5]
    assert rule.evidence[0].reporters == ("dst", "src")


def test_one_report_is_enough_for_an_edge() -> None:
    docs, _ = _docs(
        edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80, reporters=("dst",))
    )
    assert docs["flowlens.a"]["spec"]["egress"][0]["to"] == [{"podSelector": {"matchLabels": {"app": "b"}}}]
    assert docs["flowlens.b"]["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app": "a"}}}
    ]


def test_ports_become_ranges_only_where_exact_and_shorter() -> None:
    rows = []
    for port in (80, 81, 443, 8000, 8001, 8002, 8003):
        rows += edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), port)
    docs, _ = _docs(rows)
    assert docs["flowlens.b"]["spec"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 80},
        {"protocol": "TCP", "port": 81},
        {"protocol": "TCP", "port": 443},
        {"protocol": "TCP", "port": 8000, "endPort": 8003},
    ]


def test_peers_in_other_namespaces_are_selected_by_namespace_name_and_pod_labels() -> None:
    docs, _ = _docs(edge_rows(pod_side("source", "prom", "monitoring"), pod_side("dest", "b", "shop"), 9090))
    assert docs["flowlens.b"]["spec"]["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app": "prom"}},
        }
    ]


def test_dns_to_kube_dns_is_left_to_allow_dns() -> None:
    dns = pod_side("dest", "coredns", "kube-system", {"k8s-app": "kube-dns"})
    docs, s = _docs(edge_rows(pod_side("source", "a", "shop"), dns, 53, proto="udp"))
    assert "flowlens.a" not in docs
    assert s.plan.namespaces[0].dns_evidence[0].port == "udp/53"


def test_external_addresses_are_exact_unless_a_budget_allows_merging() -> None:
    rows = []
    for ip in ("1.2.3.4", "1.2.3.6"):
        rows += edge_rows(
            pod_side("source", "a", "shop"), net_side("dest", "pub", ip), 443, reporters=("src",)
        )
    docs, _ = _docs(rows)
    assert docs["flowlens.a"]["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "1.2.3.4/32"}},
        {"ipBlock": {"cidr": "1.2.3.6/32"}},
    ]
    docs, _ = _docs(rows, max_extra_addresses=2)
    assert docs["flowlens.a"]["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "1.2.3.4/30"}}]


def test_masked_private_and_public_addresses_give_flagged_broad_rules() -> None:
    rows = edge_rows(pod_side("source", "a", "shop"), net_side("dest", "pvt"), 5432, reporters=("src",))
    rows += edge_rows(pod_side("source", "a", "shop"), net_side("dest", "pub"), 443, reporters=("src",))
    docs, s = _docs(rows)
    egress = docs["flowlens.a"]["spec"]["egress"]
    assert {
        "ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}
    } in egress[0]["to"]
    assert [p["ipBlock"]["cidr"] for p in egress[1]["to"]] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    assert s.stream().count("# BROAD:") == 2
    assert [r.breadth.addresses for r in s.rendered.rules] == [2**32 - 17891328, 17891328]


def test_min_connections_leaves_rare_edges_out_and_lists_them() -> None:
    rows = edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80, started=1)
    rows += edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "c", "shop"), 80, started=9)
    docs, s = _docs(rows, min_connections=2)
    assert "flowlens.b" not in docs and "flowlens.c" in docs
    assert {(x.direction, x.reason) for x in s.plan.namespaces[0].left_out} == {
        ("egress", "fewer than 2 connections"),
        ("ingress", "fewer than 2 connections"),
    }
    assert "left out (2 edges, will be denied)" in s.stream()


def test_denied_flows_become_remediation_rules_only_when_asked() -> None:
    rows = edge_rows(
        pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80, action="deny", reporters=("dst",)
    )
    docs, _ = _docs(rows)
    assert set(docs) == {"allow-dns", "default-deny"}
    docs, s = _docs(rows, include_denied=True)
    assert "flowlens.b" in docs
    assert "REMEDIATION" in s.stream()
    assert all(r.remediation for r in s.rendered.rules)


def test_calico_flavor_uses_selectors_a_tier_and_network_sets() -> None:
    rows = edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80)
    rows += edge_rows(pod_side("source", "c", "shop"), pod_side("dest", "b", "shop"), 80)
    for ip in ("1.2.3.4", "5.6.7.8"):
        rows += edge_rows(
            pod_side("source", "a", "shop"), net_side("dest", "pub", ip), 443, reporters=("src",)
        )
    docs, _ = _docs(rows, flavor="calico", tier="apps")
    assert docs["apps"]["kind"] == "Tier"
    b = docs["apps.b"]["spec"]
    assert b["tier"] == "apps" and b["selector"] == "app == 'b'"
    assert b["ingress"] == [
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"selector": "app in {'a', 'c'}"},
            "destination": {"ports": [80]},
        }
    ]
    netset = next(d for d in docs.values() if d["kind"] == "GlobalNetworkSet")
    assert netset["spec"]["nets"] == ["1.2.3.4/32", "5.6.7.8/32"]
    label = netset["metadata"]["labels"]["flowlens.io/network-set"]
    assert (
        docs["apps.a"]["spec"]["egress"][1]["destination"]["selector"]
        == f"flowlens.io/network-set == '{label}'"
    )
    assert docs["apps.a"]["spec"]["egress"][1]["destination"]["namespaceSelector"] == "global()"


def test_staged_emits_the_staged_kinds() -> None:
    rows = edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80)
    docs, _ = _docs(rows, staged=True)
    assert {d["kind"] for d in docs.values()} == {"StagedKubernetesNetworkPolicy"}
    docs, _ = _docs(rows, staged=True, flavor="calico", baseline=True)
    assert {d["kind"] for d in docs.values()} == {"Tier", "StagedNetworkPolicy", "StagedGlobalNetworkPolicy"}
    assert all(d["spec"].get("stagedAction") == "Set" for d in docs.values() if d["kind"] != "Tier")


def test_label_values_from_logs_cannot_break_out_of_a_comment() -> None:
    src = pod_side("source", "a", "shop")
    src["source_name_aggr"] = "evil\nkind: Secret\n-*"
    docs, s = _docs(edge_rows(src, pod_side("dest", "b", "shop"), 80))
    assert all(d["kind"] == "NetworkPolicy" for d in docs.values())
    assert "\nkind: Secret" not in s.stream()


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(0, 255), min_size=1, max_size=20),
    st.integers(0, 64),
)
def test_aggregation_covers_every_address_within_the_budget(lows: set[int], budget: int) -> None:
    hosts = [host_network(f"10.1.2.{n}") for n in lows]
    blocks = aggregate(hosts, budget)
    assert all(any(h.subnet_of(b) for b in blocks) for h in hosts)
    assert count_addresses([str(b) for b in blocks]) - len(hosts) <= budget
    assert aggregate(list(reversed(hosts)), budget) == blocks
    assert all(isinstance(b, ipaddress.IPv4Network) for b in blocks)


def _hep(prefix: str, ip: str | None, labels: dict[str, str] | None) -> dict[str, object]:
    return {
        f"{prefix}_type": "hep",
        f"{prefix}_namespace": "-",
        f"{prefix}_name_aggr": "worker-1",
        f"{prefix}_labels": labels,
        f"{prefix}_ip": ip,
    }


def test_host_endpoints_are_peers_by_node_labels_in_calico_and_by_address_in_kubernetes() -> None:
    rows = edge_rows(
        _hep("source", "10.0.1.11", {"node-role": "worker"}),
        pod_side("dest", "b", "shop"),
        10250,
        reporters=("dst",),
    )
    docs, _ = _docs(rows, flavor="calico")
    assert docs["flowlens.b"]["spec"]["ingress"][0]["source"] == {
        "selector": "node-role == 'worker'",
        "namespaceSelector": "global()",
    }
    docs, _ = _docs(rows)
    assert docs["flowlens.b"]["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.1.11/32"}}]
    rows = edge_rows(_hep("source", None, None), pod_side("dest", "b", "shop"), 10250, reporters=("dst",))
    docs, s = _docs(rows)
    assert [p["ipBlock"]["cidr"] for p in docs["flowlens.b"]["spec"]["ingress"][0]["from"]] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    assert "host worker-1: no address or labels logged" in s.stream()


def test_network_sets_are_selected_by_their_labels_in_calico() -> None:
    dest = {
        "dest_type": "ns",
        "dest_namespace": "-",
        "dest_name_aggr": "saas",
        "dest_labels": {"kind": "saas"},
        "dest_ip": None,
    }
    docs, _ = _docs(
        edge_rows(pod_side("source", "a", "shop"), dest, 443, reporters=("src",)), flavor="calico"
    )
    assert docs["flowlens.a"]["spec"]["egress"][0]["destination"] == {
        "selector": "kind == 'saas'",
        "namespaceSelector": "global()",
        "ports": [443],
    }


def test_a_workload_named_like_a_namespace_policy_gets_a_distinct_name() -> None:
    docs, _ = _docs(
        edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "default-deny", "shop"), 80),
        flavor="calico",
    )
    assert docs["flowlens.default-deny"]["spec"]["selector"] == "all()"
    other = [n for n in docs if n.startswith("flowlens.default-deny-")]
    assert len(other) == 1 and docs[other[0]]["spec"]["selector"] == "app == 'default-deny'"


def test_the_default_tier_is_refused() -> None:
    import pytest

    from flowlens.errors import UsageError

    with pytest.raises(UsageError, match="tier of its own"):
        _docs([], flavor="calico", tier="default")


def test_icmp_is_a_flagged_port_less_rule_in_kubernetes_and_a_protocol_rule_in_calico() -> None:
    from flowlens.suggest.validate import validate_objects

    rows = edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), None, proto="icmp")
    docs, s = _docs(rows)
    assert docs["flowlens.b"]["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}
    ]
    assert "icmp cannot be expressed in a Kubernetes NetworkPolicy" in s.stream()
    docs, _ = _docs(rows, flavor="calico")
    assert docs["flowlens.b"]["spec"]["ingress"] == [
        {"action": "Allow", "protocol": "ICMP", "source": {"selector": "app == 'a'"}}
    ]
    assert validate_objects(list(docs.values())) == []


def test_masked_and_logged_values_of_one_edge_sort_without_error_in_any_order() -> None:
    import random

    rows = edge_rows(pod_side("source", "a", "shop"), net_side("dest", "pub"), 443, reporters=("src",))
    rows += edge_rows(
        pod_side("source", "a", "shop"), net_side("dest", "pub", "8.8.8.8"), 443, reporters=("src",)
    )
    rows += edge_rows(
        pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), None, reporters=("src",)
    )
    rows += edge_rows(pod_side("source", "a", "shop"), pod_side("dest", "b", "shop"), 80, reporters=("src",))
    texts = set()
    for seed in range(5):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        texts.add(suggest(report_rows(shuffled), SuggestOptions(namespaces=("shop",))).stream())
    assert len(texts) == 1
    assert "8.8.8.8/32" in texts.pop()


def test_peers_that_share_their_first_network_keep_one_order_whatever_order_they_were_found_in() -> None:
    # A network set without address or labels and a masked public address both give 0.0.0.0/0;
    # their order in the rule once depended on set iteration (it changed from run to run).
    whole = Peer(
        "nets", nets=(ANY_V4,), broad="ns set-0: no address or labels logged; admits every IPv4 address"
    )
    public = Peer("nets", nets=(ANY_V4,), except_nets=RFC1918, broad="public addresses were not logged")
    port = Port("tcp", 3306)
    options = SuggestOptions(namespaces=("shop",))
    found = [
        _build_rules("egress", dict(order), options)
        for order in (
            [(whole, ({port}, [])), (public, ({port}, []))],
            [(public, ({port}, [])), (whole, ({port}, []))],
        )
    ]
    assert found[0] == found[1]
    assert [r.peers for r in found[0]] == [(whole, public)]
