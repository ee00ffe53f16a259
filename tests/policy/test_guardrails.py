"""Cluster guardrails in evaluation: the Calico version (flowlens.policy.versions), the complete
tier order, Pass and end-of-tier Pass, the Baseline behind the default tier, and the tie-break of
equal priorities; hypothesis checks that manifest order never changes a verdict."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.errors import UsageError
from flowlens.policy import Evaluator, policies_from_objects
from flowlens.policy.versions import CalicoVersion, detect_from_hits, detect_from_policies, for_version
from tests.policy.helpers import cluster, pod

CNP = "policy.networking.k8s.io/v1alpha2"
ANP = "policy.networking.k8s.io/v1alpha1"
PODS = [pod("shop", "web", {"app": "web"}, "10.0.1.1"), pod("shop", "db", {"app": "db"}, "10.0.1.2")]
PODS += [pod("ops", "probe", {"app": "probe"}, "10.0.2.1")]
INV = cluster(PODS, {"shop": {"team": "shop"}, "ops": {"team": "ops"}})
V3_31, V3_32 = CalicoVersion(3, 31), CalicoVersion(3, 32)


def cnp(
    name: str, tier: str, priority: int, ingress: list[dict[str, Any]], subject: str = "shop"
) -> dict[str, Any]:
    return {
        "apiVersion": CNP,
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "tier": tier,
            "priority": priority,
            "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": subject}}},
            "ingress": ingress,
        },
    }


def from_ops(action: str) -> dict[str, Any]:
    return {"action": action, "from": [{"namespaces": {"matchLabels": {"team": "ops"}}}]}


def knp_allow_ops(name: str = "allow-ops") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}],
        },
    }


def verdict(
    objects: list[dict[str, Any]], version: CalicoVersion | None = None
) -> tuple[str, tuple[str, ...]]:
    ev = Evaluator(policies_from_objects(objects), INV, calico_version=version)
    conn = ev.connection("ops/probe", "shop/db", "tcp", 5432)
    return conn.action, conn.ingress.enforced_hits


# --------------------------------------------------------------------------------------------
# Versions


def test_calico_versions_parse_and_say_what_they_enforce() -> None:
    assert CalicoVersion.parse("v3.32.1") == V3_32 == CalicoVersion.parse("3.32+")
    assert CalicoVersion.parse("3.31") == V3_31
    assert V3_32.enforces("ClusterNetworkPolicy") and not V3_32.enforces("AdminNetworkPolicy")
    assert V3_31.enforces("BaselineAdminNetworkPolicy") and not CalicoVersion(3, 29).enforces(
        "BaselineAdminNetworkPolicy"
    )
    assert [t.name for t in V3_31.static_tiers] == [
        "adminnetworkpolicy",
        "default",
        "baselineadminnetworkpolicy",
    ]
    assert [t.name for t in CalicoVersion(3, 29).static_tiers] == ["adminnetworkpolicy", "default"]
    with pytest.raises(UsageError, match=r"such as 3\.31 or 3\.32"):
        CalicoVersion.parse("latest")


def test_g1_the_version_is_detected_from_the_manifests_then_from_the_hits() -> None:
    guard = cnp("g", "Admin", 1, [from_ops("Deny")])
    anp = {**guard, "apiVersion": ANP, "kind": "AdminNetworkPolicy"}
    anp["spec"] = {k: v for k, v in guard["spec"].items() if k != "tier"}
    assert detect_from_policies(policies_from_objects([guard])) == V3_32
    assert detect_from_policies(policies_from_objects([anp])) == V3_31
    assert detect_from_policies(policies_from_objects([knp_allow_ops()])) is None
    assert detect_from_hits([("kube-baseline", "ClusterNetworkPolicy")]) == V3_32
    assert (
        detect_from_hits([("adminnetworkpolicy", "AdminNetworkPolicy"), ("default", "NetworkPolicy")])
        == V3_31
    )
    assert detect_from_hits([("default", "KubernetesNetworkPolicy")]) is None


def test_g1_a_kind_the_version_does_not_enforce_is_left_out_with_a_note() -> None:
    guard = cnp("g", "Admin", 1, [from_ops("Deny")])
    kept, version = for_version(policies_from_objects([guard, knp_allow_ops()]), V3_31)
    assert version == V3_31
    assert [p.kind for p in kept.policies] == ["KubernetesNetworkPolicy"]
    assert any("ClusterNetworkPolicy g is not enforced by Calico v3.31" in n for n in kept.notes)
    assert verdict([guard, knp_allow_ops()], V3_31)[0] == "allow"
    assert verdict([guard, knp_allow_ops()])[0] == "deny"  # detected: v3.32+


# --------------------------------------------------------------------------------------------
# Evaluation


def test_g5_an_admin_deny_overrides_the_namespace_policy_that_allows() -> None:
    action, trace = verdict([cnp("no-ops", "Admin", 5, [from_ops("Deny")]), knp_allow_ops()])
    assert (action, trace) == ("deny", ("0|kube-admin|kcnp:no-ops|deny|0",))


def test_g5_an_admin_pass_hands_the_connection_to_the_namespace_policy() -> None:
    action, trace = verdict([cnp("hand-over", "Admin", 5, [from_ops("Pass")]), knp_allow_ops()])
    assert (action, trace) == (
        "allow",
        ("0|kube-admin|kcnp:hand-over|pass|0", "1|default|knp:shop/allow-ops|allow|0"),
    )


def test_g10_the_admin_tier_end_of_tier_pass_is_a_pass_with_rule_index_minus_one() -> None:
    other = {"action": "Deny", "from": [{"namespaces": {"matchLabels": {"team": "nobody"}}}]}
    action, trace = verdict([cnp("unrelated", "Admin", 5, [other])])
    assert (action, trace) == (
        "allow",
        ("0|kube-admin|kcnp:unrelated|pass|-1", "1|__PROFILE__|pro:kns.shop|allow|0"),
    )


def test_g5_the_baseline_decides_only_when_no_namespace_policy_selects_the_pod() -> None:
    baseline = cnp("default-deny", "Baseline", 10, [from_ops("Deny")])
    assert verdict([baseline]) == ("deny", ("0|kube-baseline|kcnp:default-deny|deny|0",))
    # A namespace policy that selects the pod ends the default tier with its own verdict.
    assert verdict([baseline, knp_allow_ops()]) == ("allow", ("0|default|knp:shop/allow-ops|allow|0",))
    isolate = {**knp_allow_ops("isolate"), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    assert verdict([baseline, isolate]) == ("deny", ("0|default|knp:shop/isolate|deny|-1",))


def test_g5_a_tier_pass_reaches_the_baseline_through_a_default_tier_that_does_not_apply() -> None:
    objects = [
        cnp("hand-over", "Admin", 5, [from_ops("Pass")]),
        cnp("base", "Baseline", 1, [from_ops("Deny")]),
    ]
    assert verdict(objects) == (
        "deny",
        ("0|kube-admin|kcnp:hand-over|pass|0", "1|kube-baseline|kcnp:base|deny|0"),
    )


def test_g2_explain_walks_every_tier_of_the_order() -> None:
    ev = Evaluator(policies_from_objects([cnp("hand-over", "Admin", 5, [from_ops("Pass")])]), INV)
    steps = ev.explain("ops/probe", "shop/db", "tcp", 5432).ingress_steps
    assert (
        steps[1]
        == "Tier kube-admin (order 1000, cluster guardrails: Admin, defaultAction Pass) applies; policies in order: ClusterNetworkPolicy hand-over."
    )
    assert (
        "rule 0 'rule-0'" not in steps[2]
        and "(Pass): matches; Pass skips the rest of tier kube-admin." in steps[2]
    )
    assert steps[3] == "Tier default (order 1000000): holds no policy; skipped."
    assert steps[4].startswith(
        "Tier kube-baseline (order 10000000, cluster guardrails: Baseline, defaultAction Pass): holds no policy"
    )


def test_g2_explain_names_the_rule_of_a_cluster_policy() -> None:
    rule = {**from_ops("Deny"), "name": "no-ops"}
    ev = Evaluator(policies_from_objects([cnp("guard", "Admin", 5, [rule])]), INV)
    steps = ev.explain("ops/probe", "shop/db", "tcp", 5432).ingress_steps
    assert (
        "  ClusterNetworkPolicy guard ingress rule 0 'no-ops' (Deny): matches; the connection is denied."
        in steps
    )


def test_g8_equal_priorities_run_in_name_order_whatever_the_manifest_order() -> None:
    a, b = cnp("a-deny", "Admin", 5, [from_ops("Deny")]), cnp("b-accept", "Admin", 5, [from_ops("Accept")])
    assert verdict([a, b]) == verdict([b, a]) == ("deny", ("0|kube-admin|kcnp:a-deny|deny|0",))
    a2, b2 = cnp("a-accept", "Admin", 5, [from_ops("Accept")]), cnp("b-deny", "Admin", 5, [from_ops("Deny")])
    assert verdict([b2, a2])[0] == "allow"


def test_g8_the_tie_break_differs_between_calico_v3_31_and_v3_32() -> None:
    # A Calico NetworkPolicy at order 1000 ties with a Kubernetes NetworkPolicy. Up to v3.31 the
    # names compare as 'shop/default.b-deny' < 'shop/knp.default.a-allow'; from v3.32 as
    # 'a-allow/shop/KubernetesNetworkPolicy' < 'b-deny/shop/NetworkPolicy'.
    deny = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "b-deny", "namespace": "shop"},
        "spec": {"order": 1000, "ingress": [{"action": "Deny"}]},
    }
    objects = [deny, knp_allow_ops("a-allow")]
    assert verdict(objects, V3_31) == ("deny", ("0|default|np:shop/b-deny|deny|0",))
    assert verdict(objects, V3_32) == ("allow", ("0|default|knp:shop/a-allow|allow|0",))


# --------------------------------------------------------------------------------------------
# Hypothesis: manifest order


_ACTIONS = st.sampled_from(["Accept", "Deny", "Pass"])
_PEERS = st.sampled_from([{"team": "ops"}, {"team": "shop"}, {}])


@st.composite
def _guardrails(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 5))):
        rules = [
            {"action": draw(_ACTIONS), "from": [{"namespaces": {"matchLabels": draw(_PEERS)}}]}
            for _ in range(draw(st.integers(1, 3)))
        ]
        tier = draw(st.sampled_from(["Admin", "Baseline"]))
        # Priorities from a small range, so that ties are frequent.
        out.append(cnp(f"g{i}", tier, draw(st.integers(0, 2)), rules, draw(st.sampled_from(["shop", "ops"]))))
    if draw(st.booleans()):
        out.append(knp_allow_ops())
    return out


@settings(max_examples=60, deadline=None)
@given(_guardrails(), st.randoms(use_true_random=False))
def test_manifest_order_never_changes_a_verdict_or_a_trace(objects: list[dict[str, Any]], rnd: Any) -> None:
    shuffled = list(objects)
    rnd.shuffle(shuffled)
    first, second = (
        Evaluator(policies_from_objects(objects), INV),
        Evaluator(policies_from_objects(shuffled), INV),
    )
    for src, dst in [("ops/probe", "shop/db"), ("shop/web", "shop/db"), ("shop/db", "ops/probe")]:
        assert first.connection(src, dst, "tcp", 80) == second.connection(src, dst, "tcp", 80)


@settings(max_examples=60, deadline=None)
@given(
    _ACTIONS,
    _ACTIONS,
    st.text("abcdefgh", min_size=1, max_size=6),
    st.text("abcdefgh", min_size=1, max_size=6),
)
def test_g8_with_equal_priorities_the_smaller_name_decides(
    first: str, second: str, name1: str, name2: str
) -> None:
    if name1 == name2:
        name2 += "x"
    one, two = cnp(name1, "Admin", 3, [from_ops(first)]), cnp(name2, "Admin", 3, [from_ops(second)])
    winner = first if name1 < name2 else second
    action, trace = verdict([one, two])
    assert trace[0].split("|")[2] == f"kcnp:{min(name1, name2)}"
    assert trace[0].split("|")[3] == winner.lower().replace("accept", "allow")
    assert action == ("deny" if winner == "Deny" else "allow")
