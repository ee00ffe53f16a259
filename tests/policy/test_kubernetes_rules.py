"""Kubernetes NetworkPolicy semantics (rulebook V1, K1-K15, L1), evaluated through Calico's model."""

from __future__ import annotations

from flowlens.policy import Inventory
from tests.policy.helpers import World, cluster, pod

EXTERNAL = "8.8.8.8"


def e2e_cluster() -> Inventory:
    # The upstream e2e model: namespaces x, y, z with pods a, b, c each.
    pods = []
    n = 1
    for ns in ("x", "y", "z"):
        for name in ("a", "b", "c"):
            pods.append(
                pod(
                    ns,
                    name,
                    {"pod": name},
                    f"10.0.{n}.{ord(name) - 96}",
                    ports={"serve-80-tcp": ("TCP", 80), "serve-81-udp": ("UDP", 81)},
                )
            )
        n += 1
    return cluster(pods, {"x": {"ns": "x"}, "y": {"ns": "y"}, "z": {"ns": "z"}})


def world(text: str) -> World:
    return World(text, e2e_cluster())


DENY_ALL_INGRESS_X = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
"""


def test_v1_a_connection_needs_both_egress_at_the_source_and_ingress_at_the_destination() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Egress]
"""
    )
    conn = w.connection("y/a", "x/a")
    assert conn.action == "deny"
    assert conn.egress.action == "deny"
    assert conn.ingress.action == "allow"
    assert w.allowed("x/a", "y/a")


def test_v1_an_address_outside_the_cluster_is_not_evaluated() -> None:
    w = world(DENY_ALL_INGRESS_X)
    conn = w.connection("x/a", EXTERNAL, 443)
    assert conn.action == "allow"
    assert conn.ingress.evaluated is False
    assert conn.ingress.enforced == ()
    assert w.connection(EXTERNAL, "x/a").action == "deny"


def test_k1_a_policy_applies_only_to_pods_in_its_own_namespace() -> None:
    w = world(DENY_ALL_INGRESS_X)
    assert not w.allowed("y/a", "x/b")
    assert w.allowed("x/a", "y/b")


def test_k1_an_empty_pod_selector_selects_every_pod_of_the_namespace_and_a_label_selector_some() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
"""
    )
    assert not w.allowed("y/a", "x/a")
    assert w.allowed("y/a", "x/b")


def test_k2_egress_only_policy_without_policy_types_also_isolates_ingress() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress:
  - to: [{podSelector: {matchLabels: {pod: b}}}]
"""
    )
    policy = w.policy_set.policies[0]
    assert policy.types == ("Ingress", "Egress")
    assert not w.allowed("x/b", "x/a")  # ingress isolated with zero ingress rules
    assert w.allowed("x/a", "x/b")
    assert not w.allowed("x/a", "x/c")


def test_k2_an_empty_egress_list_does_not_count_as_egress_rules() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: empty-egress, namespace: x}
spec:
  podSelector: {}
  egress: []
"""
    )
    assert w.policy_set.policies[0].types == ("Ingress",)
    assert w.allowed("x/a", "y/a")
    assert not w.allowed("y/a", "x/a")


def test_k3_a_direction_no_policy_isolates_allows_everything() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ingress-only, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""
    )
    assert w.allowed("x/a", EXTERNAL, 443)
    assert w.allowed("x/a", "z/c", 80)
    assert not w.allowed("z/c", "x/a", 80)


def test_k4_policies_are_a_union_of_allows_and_order_does_not_matter() -> None:
    text = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-c, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}]}]
"""
    w = world(text)
    assert w.allowed("x/b", "x/a")
    assert w.allowed("x/c", "x/a")
    assert not w.allowed("y/b", "x/a")
    assert w.ingress_trace("x/c", "x/a") == ["0|default|knp:x/allow-from-c|allow|0"]


def test_k4_a_policy_with_no_rules_for_a_direction_only_isolates() -> None:
    w = world(
        DENY_ALL_INGRESS_X
        + """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
"""
    )
    assert w.allowed("x/b", "x/a")
    assert not w.allowed("x/c", "x/a")


def test_k5_a_rule_without_from_matches_every_source_including_external_addresses() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-80, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: 80}]}]
"""
    )
    assert w.allowed(EXTERNAL, "x/a", 80)
    assert w.allowed("z/b", "x/a", 80)
    assert not w.allowed("z/b", "x/a", 81)


def test_k5_an_empty_rule_allows_every_source_port_and_protocol() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: x}
spec:
  podSelector: {}
  ingress: [{}]
"""
    )
    assert w.allowed(EXTERNAL, "x/a", 9999)
    assert w.allowed("y/c", "x/a", 53, "udp")
    assert w.allowed("y/c", "x/a", 7, "sctp")


def test_k6_peers_in_a_list_are_ored() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or-peers, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
    - ipBlock: {cidr: 8.8.8.0/24}
"""
    )
    assert w.allowed("x/b", "x/a")
    assert w.allowed(EXTERNAL, "x/a")
    assert not w.allowed("x/c", "x/a")


def test_k7_a_pod_selector_peer_selects_pods_in_the_policy_namespace_only() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-b, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
"""
    )
    assert w.allowed("x/b", "x/a")
    assert not w.allowed("y/b", "x/a")


def test_k8_a_namespace_selector_peer_selects_all_pods_of_matching_namespaces_only() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
"""
    )
    assert w.allowed("y/a", "x/a")
    assert w.allowed("y/c", "x/a")
    assert not w.allowed("x/b", "x/a")  # the own namespace does not match ns=y
    assert not w.allowed("z/b", "x/a")


def test_k8_an_empty_namespace_selector_selects_pods_of_all_namespaces() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-cluster, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}}]}]
"""
    )
    assert w.allowed("x/b", "x/a")
    assert w.allowed("z/c", "x/a")
    assert not w.allowed(EXTERNAL, "x/a")


def test_k9_both_selectors_in_one_peer_are_anded_and_in_two_peers_ored() -> None:
    anded = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: and, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
      podSelector: {matchLabels: {pod: b}}
"""
    )
    assert anded.allowed("y/b", "x/a")
    assert not anded.allowed("y/c", "x/a")
    assert not anded.allowed("x/b", "x/a")
    ored = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: or, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}
    - podSelector: {matchLabels: {pod: b}}
"""
    )
    assert ored.allowed("y/c", "x/a")
    assert ored.allowed("x/b", "x/a")
    assert not ored.allowed("z/b", "x/a")


def test_k10_pod_and_namespace_selector_peers_never_match_external_addresses() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-cluster, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{to: [{namespaceSelector: {}, podSelector: {}}]}]
"""
    )
    assert w.allowed("x/a", "y/b")
    assert not w.allowed("x/a", EXTERNAL)


def test_k11_ip_block_matches_the_cidr_minus_except_and_applies_to_pod_ips_too() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.3.0/24]}}]
"""
    )
    assert w.allowed("x/a", "y/b")  # 10.0.2.2, a pod IP inside the block
    assert not w.allowed("x/a", "z/b")  # 10.0.3.2 is excepted
    assert not w.allowed("x/a", EXTERNAL)


def test_k11_except_removes_addresses_from_that_ip_block_only() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cidr, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.3.0/24]}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: z-pods, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {ns: z}}}]
"""
    )
    assert w.allowed("x/a", "z/b")
    assert w.egress_trace("x/a", "z/b") == ["0|default|knp:x/z-pods|allow|0"]


def test_k12_the_protocol_defaults_to_tcp_and_a_missing_port_means_all_ports() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: tcp-any, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{}]}]
"""
    )
    assert w.allowed("y/a", "x/a", 12345, "tcp")
    assert not w.allowed("y/a", "x/a", 53, "udp")


def test_k12_end_port_is_an_inclusive_range() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: range, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{protocol: TCP, port: 32000, endPort: 32768}]}]
"""
    )
    assert w.allowed("y/a", "x/a", 32000)
    assert w.allowed("y/a", "x/a", 32768)
    assert not w.allowed("y/a", "x/a", 32769)
    assert not w.allowed("y/a", "x/a", 31999)


def test_k13_a_named_port_on_ingress_resolves_on_the_selected_pod() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-80-tcp}]}]
"""
    )
    assert w.allowed("y/a", "x/a", 80)
    assert not w.allowed("y/a", "x/a", 81)
    assert not w.allowed("y/a", "x/a", 81, "udp")


def test_k13_a_named_port_needs_the_same_protocol_as_the_container_port() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-udp, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{port: serve-81-udp}]}]
"""
    )
    # protocol defaults to TCP, the container port is UDP: nothing matches.
    assert not w.allowed("y/a", "x/a", 81, "udp")
    assert not w.allowed("y/a", "x/a", 81, "tcp")


def test_k13_a_named_port_on_egress_resolves_on_the_remote_pod_and_never_matches_outside() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: named-egress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress: [{ports: [{port: serve-80-tcp}]}]
"""
    )
    assert w.allowed("x/a", "y/b", 80)
    assert not w.allowed("x/a", EXTERNAL, 80)


def test_k14_a_udp_only_allow_keeps_the_pod_isolated_for_tcp() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: udp-only, namespace: x}
spec:
  podSelector: {}
  ingress: [{ports: [{protocol: UDP, port: 81}]}]
"""
    )
    assert w.allowed("y/a", "x/a", 81, "udp")
    assert not w.allowed("y/a", "x/a", 81, "tcp")
    assert not w.allowed("y/a", "x/a", 81, "sctp")


def test_k15_a_namespace_is_selectable_by_its_immutable_name_label() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-z, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: z}}}]}]
"""
    )
    assert w.allowed("z/a", "x/a")
    assert not w.allowed("y/a", "x/a")


def test_l1_match_expressions_in_notin_exists_and_does_not_exist() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: exprs, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector:
        matchExpressions:
        - {key: pod, operator: In, values: [a, b]}
        - {key: tier, operator: DoesNotExist}
    - namespaceSelector:
        matchExpressions:
        - {key: ns, operator: NotIn, values: [x, y]}
"""
    )
    assert w.allowed("x/b", "x/a")
    assert not w.allowed("x/c", "x/a")
    assert w.allowed("z/c", "x/a")  # ns=z is not in {x, y}
    assert not w.allowed("y/c", "x/a")


def test_l1_notin_matches_when_the_key_is_absent() -> None:
    w = World(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: notin, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}}]
""",
        cluster(
            [
                pod("x", "a", {}, "10.1.0.1"),
                pod("x", "b", {}, "10.1.0.2"),
                pod("x", "p", {"env": "prod"}, "10.1.0.3"),
            ]
        ),
    )
    assert w.allowed("x/b", "x/a")
    assert not w.allowed("x/p", "x/a")


def test_kubernetes_rules_expand_per_protocol_and_peer_so_rule_indexes_follow_calico() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: multi, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}, {podSelector: {matchLabels: {pod: c}}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 80}]
"""
    )
    # sorted protocols TCP, UDP; for each, one rule per peer: TCP/b=0, TCP/c=1, UDP/b=2, UDP/c=3
    assert w.ingress_trace("x/c", "x/a", 80) == ["0|default|knp:x/multi|allow|1"]
    assert w.ingress_trace("x/b", "x/a", 53, "udp") == ["0|default|knp:x/multi|allow|2"]
    assert w.ingress_trace("x/c", "x/a", 53, "udp") == ["0|default|knp:x/multi|allow|3"]
