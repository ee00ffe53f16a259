"""Traces in Calico's modern hit format, staged policies and the pending trace, host endpoints."""

from __future__ import annotations

from flowlens.policy import Endpoint, Evaluator, FlowKey, Inventory
from tests.policy.helpers import World, cluster, pod, policies


def small_cluster() -> Inventory:
    return cluster(
        [
            pod("default", "client", {"app": "client"}, "10.0.0.1"),
            pod("default", "server", {"app": "server"}, "10.0.0.2"),
        ]
    )


TIERS = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: tier1}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: tier2}
spec: {order: 200}
"""


def test_the_profile_allow_trace_names_the_namespace_profile() -> None:
    w = World("", small_cluster())
    assert w.ingress_trace("default/client", "default/server") == ["0|__PROFILE__|pro:kns.default|allow|0"]
    hit = w.connection("default/client", "default/server").ingress.enforced[0]
    assert hit.kind == "Profile" and hit.tier == "__PROFILE__" and hit.name == "kns.default"


def test_a_staged_policy_appears_only_in_the_pending_trace() -> None:
    # The Felix fv case: tier1 passes, a staged policy in tier2 would allow.
    w = World(
        TIERS
        + """
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: tier1.np1-1, namespace: default}
spec: {tier: tier1, selector: all(), ingress: [{action: Pass}], egress: [{action: Pass}]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: tier2.np2-1, namespace: default}
spec: {tier: tier2, selector: all(), ingress: [{action: Allow}], egress: [{action: Allow}]}
""",
        small_cluster(),
    )
    decision = w.connection("default/client", "default/server").ingress
    assert decision.enforced_hits == (
        "0|tier1|np:default/tier1.np1-1|pass|0",
        "1|__PROFILE__|pro:kns.default|allow|0",
    )
    assert decision.pending_hits == (
        "0|tier1|np:default/tier1.np1-1|pass|0",
        "1|tier2|snp:default/tier2.np2-1|allow|0",
    )
    assert decision.action == decision.pending_action == "allow"


def test_a_staged_policy_whose_rules_do_not_match_ends_its_tier_in_the_pending_trace() -> None:
    w = World(
        TIERS
        + """
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: tier1.np1-1, namespace: default}
spec: {tier: tier1, selector: all(), ingress: [{action: Pass}]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: tier2.np2-1, namespace: default}
spec: {tier: tier2, selector: all(), ingress: [{action: Allow, source: {selector: app == 'nobody'}}]}
""",
        small_cluster(),
    )
    decision = w.connection("default/client", "default/server").ingress
    assert decision.action == "allow"
    assert decision.pending_action == "deny"
    assert decision.pending_hits == (
        "0|tier1|np:default/tier1.np1-1|pass|0",
        "1|tier2|snp:default/tier2.np2-1|deny|-1",
    )


def test_enforced_traces_are_renumbered_without_staged_hits_and_end_of_tier_blames_an_enforced_policy() -> (
    None
):
    w = World(
        """
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: staged-first, namespace: default}
spec: {order: 1, selector: all(), ingress: [{action: Deny, source: {selector: app == 'nobody'}}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: enforced, namespace: default}
spec: {order: 2, selector: all(), ingress: [{action: Allow, source: {selector: app == 'nobody'}}]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: staged-last, namespace: default}
spec: {order: 3, selector: all(), ingress: [{action: Allow, source: {selector: app == 'nobody'}}]}
""",
        small_cluster(),
    )
    decision = w.connection("default/client", "default/server").ingress
    assert decision.enforced_hits == ("0|default|np:default/enforced|deny|-1",)
    assert decision.pending_hits == ("0|default|np:default/enforced|deny|-1",)


def test_staged_delete_removes_the_enforced_counterpart_from_the_pending_trace() -> None:
    w = World(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: default}
spec: {podSelector: {}}
---
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: deny-all, namespace: default}
spec: {stagedAction: Delete, podSelector: {}}
""",
        small_cluster(),
    )
    decision = w.connection("default/client", "default/server").ingress
    assert decision.enforced_hits == ("0|default|knp:default/deny-all|deny|-1",)
    assert decision.pending_hits == ("0|__PROFILE__|pro:kns.default|allow|0",)
    assert decision.pending_action == "allow"


def test_a_staged_kubernetes_policy_traces_with_its_staged_kind() -> None:
    w = World(
        """
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: lockdown, namespace: default}
spec: {podSelector: {matchLabels: {app: server}}, ingress: [{from: [{podSelector: {matchLabels: {app: nobody}}}]}]}
""",
        small_cluster(),
    )
    decision = w.connection("default/client", "default/server").ingress
    assert decision.pending_hits == ("0|default|sknp:default/lockdown|deny|-1",)
    assert decision.enforced_hits == ("0|__PROFILE__|pro:kns.default|allow|0",)


def test_a_staged_policy_with_staged_action_ignore_is_never_evaluated() -> None:
    w = World(
        """
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: ignored}
spec: {stagedAction: Ignore, selector: all(), ingress: [{action: Deny}]}
""",
        small_cluster(),
    )
    assert w.connection("default/client", "default/server").ingress.pending_action == "allow"


def test_evaluate_uses_the_egress_side_for_src_reporters_and_ingress_for_dst() -> None:
    ps = policies(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-egress, namespace: default}
spec: {podSelector: {matchLabels: {app: client}}, policyTypes: [Egress]}
"""
    )
    ev = Evaluator(ps)
    client = Endpoint("wep", "default", "client-*", {"app": "client"})
    server = Endpoint("wep", "default", "server-*", {"app": "server"})
    src = ev.evaluate(FlowKey("src", client, server, "tcp", 80))
    dst = ev.evaluate(FlowKey("dst", client, server, "tcp", 80))
    assert (src.action, src.enforced_hits) == ("deny", ("0|default|knp:default/no-egress|deny|-1",))
    assert (dst.action, dst.enforced_hits) == ("allow", ("0|__PROFILE__|pro:kns.default|allow|0",))
    assert ev.evaluate(FlowKey("src", client, server, "tcp", 80)) is src  # memoized


def test_host_endpoints_are_selected_by_global_policies_and_denied_without_an_allowing_profile() -> None:
    w = World(
        """
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node1-eth0, labels: {role: node}}
spec: {node: node1, interfaceName: eth0, expectedIPs: [192.168.1.10]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node2-eth0, labels: {role: node}}
spec: {node: node2, interfaceName: eth0, expectedIPs: [192.168.1.11], profiles: [projectcalico-default-allow]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: ssh}
spec:
  selector: role == 'node'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [22]}}]
""",
        small_cluster(),
    )
    assert w.allowed("8.8.8.8", "192.168.1.10", 22)
    assert w.ingress_trace("8.8.8.8", "192.168.1.10", 443) == ["0|default|gnp:ssh|deny|-1"]
    # No policy for egress of node1: no profile allows, so Calico's host-endpoint default deny.
    assert w.egress_trace("192.168.1.10", "8.8.8.8", 443) == ["0|__PROFILE__|pro:__NO_MATCH__|deny|0"]
    assert w.egress_trace("192.168.1.11", "8.8.8.8", 443) == [
        "0|__PROFILE__|pro:projectcalico-default-allow|allow|0"
    ]


def test_kubernetes_policies_never_select_host_endpoints() -> None:
    w = World(
        """
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: h, labels: {app: server}}
spec: {node: n, expectedIPs: [192.168.1.10], profiles: [projectcalico-default-allow]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: default}
spec: {podSelector: {}}
""",
        small_cluster(),
    )
    assert w.allowed("8.8.8.8", "192.168.1.10", 22)
