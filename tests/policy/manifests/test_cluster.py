"""Cluster policy manifests (flowlens.policy.manifests.cluster): ClusterNetworkPolicy,
AdminNetworkPolicy and BaselineAdminNetworkPolicy validated as their CRDs validate them and
converted as Calico converts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowlens.errors import PolicyError
from flowlens.policy import load_policies, policies_from_objects
from flowlens.policy.model import NamedPort, PortRange
from tests.policy.helpers import write

CNP = "policy.networking.k8s.io/v1alpha2"
ANP = "policy.networking.k8s.io/v1alpha1"


def cnp(spec: dict[str, Any], name: str = "guard") -> dict[str, Any]:
    base = {"tier": "Admin", "priority": 10, "subject": {"namespaces": {}}}
    return {
        "apiVersion": CNP,
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": {**base, **spec},
    }


def anp(spec: dict[str, Any], kind: str = "AdminNetworkPolicy", name: str = "guard") -> dict[str, Any]:
    base: dict[str, Any] = {"subject": {"namespaces": {}}}
    if kind == "AdminNetworkPolicy":
        base["priority"] = 10
    return {"apiVersion": ANP, "kind": kind, "metadata": {"name": name}, "spec": {**base, **spec}}


def test_g2_g4_a_cluster_network_policy_lands_in_its_static_tier_at_its_priority() -> None:
    admin, baseline = policies_from_objects(
        [
            cnp({"priority": 7, "ingress": [{"action": "Accept", "from": [{"namespaces": {}}]}]}, "a"),
            cnp({"tier": "Baseline", "egress": [{"action": "Deny", "to": [{"namespaces": {}}]}]}, "b"),
        ]
    ).policies
    assert (admin.kind, admin.tier, admin.order, admin.types) == (
        "ClusterNetworkPolicy",
        "kube-admin",
        7.0,
        ("Ingress",),
    )
    assert (baseline.tier, baseline.order, baseline.types) == ("kube-baseline", 10.0, ("Egress",))
    assert admin.hit(0, "allow", 0).hit == "0|kube-admin|kcnp:a|allow|0"


def test_g3_the_subject_selects_pods_only_through_the_orchestrator_label() -> None:
    (by_ns,) = policies_from_objects(
        [cnp({"subject": {"namespaces": {"matchLabels": {"team": "a"}}}})]
    ).policies
    assert str(by_ns.selector) == 'projectcalico.org/orchestrator == "k8s"'
    assert str(by_ns.namespace_selector) == 'team == "a"'
    (by_pods,) = policies_from_objects(
        [cnp({"subject": {"pods": {"podSelector": {"matchLabels": {"app": "db"}}}}})]
    ).policies
    assert str(by_pods.selector) == '(projectcalico.org/orchestrator == "k8s" && app == "db")'
    assert str(by_pods.namespace_selector) == "all()"


def test_g7_rules_are_split_per_protocol_in_sorted_order_then_per_peer_and_keep_their_name() -> None:
    rule = {
        "name": "web-and-dns",
        "action": "Accept",
        "from": [{"namespaces": {"matchLabels": {"a": "1"}}}, {"pods": {"podSelector": {}}}],
        "protocols": [
            {"udp": {"destinationPort": {"number": 53}}},
            {"tcp": {"destinationPort": {"range": {"start": 8000, "end": 8080}}}},
            {"tcp": {"destinationPort": {"number": 53}}},
            {"destinationNamedPort": "metrics"},
        ],
    }
    (policy,) = policies_from_objects([cnp({"ingress": [rule]})]).policies
    shape = [
        (r.action, r.protocol, r.destination.ports, r.source.selector is None, r.name) for r in policy.ingress
    ]
    assert shape == [
        ("Allow", None, (NamedPort("metrics"),), True, "web-and-dns"),
        ("Allow", None, (NamedPort("metrics"),), False, "web-and-dns"),
        ("Allow", 6, (PortRange(8000, 8080), PortRange(53, 53)), True, "web-and-dns"),
        ("Allow", 6, (PortRange(8000, 8080), PortRange(53, 53)), False, "web-and-dns"),
        ("Allow", 17, (PortRange(53, 53),), True, "web-and-dns"),
        ("Allow", 17, (PortRange(53, 53),), False, "web-and-dns"),
    ]


def test_g6_an_egress_networks_peer_becomes_destination_nets() -> None:
    (policy,) = policies_from_objects(
        [cnp({"egress": [{"action": "Deny", "to": [{"networks": ["0.0.0.0/0", "::/0"]}]}]})]
    ).policies
    assert [str(n) for n in policy.egress[0].destination.nets] == ["0.0.0.0/0", "::/0"]


@pytest.mark.parametrize(("action", "kept"), [("Deny", "Deny"), ("Pass", "Deny"), ("Accept", None)])
def test_g9_a_rule_with_a_nodes_peer_fails_closed_as_calico_does(action: str, kept: str | None) -> None:
    peers = [{"pods": {"podSelector": {}}}, {"nodes": {"matchLabels": {"kubernetes.io/os": "linux"}}}]
    ps = policies_from_objects(
        [
            cnp(
                {
                    "egress": [
                        {"name": "r", "action": action, "to": peers},
                        {"action": "Accept", "to": [{"namespaces": {}}]},
                    ]
                }
            )
        ]
    )
    (policy,) = ps.policies
    first = policy.egress[0]
    if kept is None:
        assert len(policy.egress) == 1 and first.action == "Allow" and not first.destination.is_empty
        assert any("drops it" in n for n in ps.notes)
    else:
        # An unconditional Deny at the rule's position: no protocol, no source, no destination.
        assert (first.action, first.protocol, first.source.is_empty, first.destination.is_empty) == (
            "Deny",
            None,
            True,
            True,
        )
        assert any("denies all traffic at that position" in n and "egress rule 0 'r'" in n for n in ps.notes)


def test_g4_g9_a_direction_whose_only_rules_are_dropped_leaves_the_policy_types() -> None:
    ps = policies_from_objects(
        [
            cnp(
                {
                    "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}],
                    "egress": [{"action": "Accept", "to": [{"domainNames": ["example.com"]}]}],
                }
            )
        ]
    )
    assert ps.policies[0].types == ("Ingress",)
    assert any("domainNames" in n for n in ps.notes)


def test_g7_an_admin_network_policy_port_defaults_to_tcp_and_a_named_port_lifts_every_restriction() -> None:
    ps = policies_from_objects(
        [
            anp(
                {
                    "ingress": [
                        {
                            "action": "Allow",
                            "from": [{"namespaces": {}}],
                            "ports": [{"portNumber": {"port": 80}}],
                        },
                        {
                            "name": "named",
                            "action": "Deny",
                            "from": [{"namespaces": {}}],
                            "ports": [{"portNumber": {"protocol": "UDP", "port": 53}}, {"namedPort": "web"}],
                        },
                    ]
                }
            )
        ]
    )
    plain, named = ps.policies[0].ingress
    assert (plain.protocol, plain.destination.ports) == (6, (PortRange(80, 80),))
    assert (named.protocol, named.destination.ports) == (None, ())
    assert any("namedPort" in n and "every port and protocol" in n for n in ps.notes)


def test_g4_a_baseline_admin_network_policy_always_has_order_1000_in_its_tier() -> None:
    (policy,) = policies_from_objects(
        [
            anp(
                {"egress": [{"action": "Deny", "to": [{"namespaces": {}}]}]},
                "BaselineAdminNetworkPolicy",
                "default",
            )
        ]
    ).policies
    assert (policy.tier, policy.order, policy.kind) == (
        "baselineadminnetworkpolicy",
        1000.0,
        "BaselineAdminNetworkPolicy",
    )
    assert policy.hit(0, "deny", 0).hit == "0|baselineadminnetworkpolicy|kbanp:default|deny|0"


def test_a_tier_manifest_cannot_change_a_guardrail_tier() -> None:
    ps = policies_from_objects(
        [
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Tier",
                "metadata": {"name": "kube-admin"},
                "spec": {"order": 5},
            }
        ]
    )
    (tier,) = ps.tiers
    assert (tier.name, tier.order, tier.default_action) == ("kube-admin", 1000.0, "Pass")
    assert any("kube-admin tier always has order 1000 and defaultAction Pass" in n for n in ps.notes)


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        (cnp({"tier": None}), "spec.tier: required"),
        (cnp({"tier": "Platform"}), "spec.tier: unknown tier 'Platform'"),
        (cnp({"priority": 1001}), "spec.priority: priority 1001 must be a whole number from 0 to 1000"),
        (
            cnp({"subject": {"namespaces": {}, "pods": {"podSelector": {}}}}),
            "spec.subject: set exactly one of",
        ),
        (cnp({"subject": {"pods": {"namespaceSelector": {}}}}), "spec.subject.pods.podSelector: required"),
        (
            cnp({"ingress": [{"action": "Allow", "from": [{"namespaces": {}}]}]}),
            "spec.ingress[0].action: unknown action 'Allow'",
        ),
        (
            cnp({"ingress": [{"action": "Deny", "from": []}]}),
            "spec.ingress[0].from: required: at least one peer",
        ),
        (
            cnp({"ingress": [{"action": "Deny", "from": [{"networks": ["10.0.0.0/8"]}]}]}),
            "spec.ingress[0].from[0].networks: unknown field",
        ),
        (
            cnp({"egress": [{"action": "Deny", "to": [{"networks": ["10.0.0.300/8"]}]}]}),
            "spec.egress[0].to[0].networks[0]: '10.0.0.300/8' is not an IP address or CIDR",
        ),
        (
            cnp(
                {
                    "egress": [
                        {
                            "action": "Deny",
                            "to": [{"namespaces": {}}],
                            "protocols": [{"tcp": {"destinationPort": {"range": {"start": 9, "end": 9}}}}],
                        }
                    ]
                }
            ),
            "spec.egress[0].protocols[0].tcp.destinationPort.range: start 9 must be below end 9",
        ),
        (
            cnp(
                {
                    "egress": [
                        {
                            "action": "Deny",
                            "to": [{"networks": ["10.0.0.0/8"]}],
                            "protocols": [{"destinationNamedPort": "web"}],
                        }
                    ]
                }
            ),
            "spec.egress[0]: networks, nodes and domainNames peers cannot be used with named ports",
        ),
        (
            cnp({"egress": [{"action": "Deny", "to": [{"namespaces": {}}], "protocols": []}]}),
            "spec.egress[0].protocols: give at least one",
        ),
        (
            {**cnp({}), "apiVersion": ANP},
            "apiVersion: ClusterNetworkPolicy is policy.networking.k8s.io/v1alpha2",
        ),
        (cnp({"egres": []}), "spec.egres: unknown field"),
        (
            anp({}, "BaselineAdminNetworkPolicy", "mine"),
            "metadata.name: a BaselineAdminNetworkPolicy must be named 'default'",
        ),
        (
            anp(
                {"ingress": [{"action": "Pass", "from": [{"namespaces": {}}]}]},
                "BaselineAdminNetworkPolicy",
                "default",
            ),
            "spec.ingress[0].action: unknown action 'Pass'",
        ),
        (anp({"priority": None}), "spec.priority: required"),
        (anp({"subject": {"pods": {"podSelector": {}}}}), "spec.subject.pods.namespaceSelector: required"),
        (
            anp(
                {
                    "ingress": [
                        {
                            "action": "Allow",
                            "from": [{"namespaces": {}}],
                            "ports": [{"portNumber": {"protocol": "ICMP", "port": 1}}],
                        }
                    ]
                }
            ),
            "unsupported protocol 'ICMP'",
        ),
    ],
)
def test_an_invalid_cluster_policy_is_an_error_naming_the_file_document_and_field(
    tmp_path: Path, doc: dict[str, Any], where: str
) -> None:
    import yaml

    spec = doc.get("spec", {})
    doc["spec"] = {k: v for k, v in spec.items() if v is not None}
    path = write(tmp_path / "guard.yaml", "---\n" + yaml.safe_dump(doc))
    with pytest.raises(PolicyError) as err:
        load_policies(path)
    assert str(err.value).startswith(f"{path}: document 1: ")
    assert where in str(err.value)
