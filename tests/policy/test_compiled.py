"""Compiled policies and plans (flowlens.policy.compiled): tier and policy order, staged plans,
and selectors combined the way Felix combines them."""

from __future__ import annotations

from flowlens.policy import policies_from_objects
from flowlens.policy.compiled import Plan, compile_plans, compile_policy
from tests.policy.helpers import policies

CALICO = "projectcalico.org/v3"
PLANNED = [
    {"apiVersion": CALICO, "kind": "Tier", "metadata": {"name": "early"}, "spec": {"order": 10}},
    *(
        {"apiVersion": CALICO, "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": spec}
        for name, spec in [
            ("late.b", {"tier": "late", "order": 5}),
            ("late.a", {"tier": "late", "order": 5}),
            ("early.unordered", {"tier": "early"}),
            ("early.first", {"tier": "early", "order": 1}),
            ("untracked", {"doNotTrack": True, "applyOnForward": True}),
        ]
    ),
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"podSelector": {}},
    },
]
STAGED = [
    {"apiVersion": CALICO, "kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec}
    for kind, name, spec in [
        ("StagedKubernetesNetworkPolicy", "web", {"stagedAction": "Delete", "podSelector": {}}),
        ("StagedNetworkPolicy", "proposed", {"order": 1}),
        ("StagedNetworkPolicy", "ignored", {"stagedAction": "Ignore"}),
    ]
]


def names(plan: Plan) -> list[tuple[str, list[str]]]:
    return [(tier.name, [cp.policy.name for cp in cpols]) for tier, cpols in plan]


def test_tiers_and_policies_are_planned_in_evaluation_order_without_untracked_policies() -> None:
    plans = compile_plans(policies_from_objects(PLANNED + STAGED))
    assert names(plans.enforced) == [
        ("early", ["early.first", "early.unordered"]),
        ("default", ["web"]),
        ("late", ["late.a", "late.b"]),
    ]


def test_the_pending_plan_adds_staged_policies_and_drops_what_a_staged_delete_removes() -> None:
    plans = compile_plans(policies_from_objects(PLANNED + STAGED))
    assert plans.has_staged
    default = dict(names(plans.pending))["default"]
    assert default == ["proposed"]  # web deleted by its staged counterpart, 'ignored' never evaluated
    assert not compile_plans(policies_from_objects(PLANNED)).has_staged


def test_a_namespaced_rule_selector_is_scoped_to_the_policy_namespace_and_a_namespace_selector_replaces_it() -> (
    None
):
    (policy,) = policies(
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  serviceAccountSelector: role == 'web'
  ingress:
  - {action: Allow, source: {selector: app == 'api'}}
  - {action: Allow, source: {selector: app == 'api', namespaceSelector: team == 'a'}}
  - {action: Allow, source: {nets: [10.0.0.0/8]}}
  - {action: Allow, source: {serviceAccounts: {names: [api]}}}
"""
    ).policies
    cp = compile_policy(policy)
    assert str(cp.selector) == '(all() && projectcalico.org/namespace == "shop" && pcsa.role == "web")'
    scoped, across, nets_only, accounts = (r.src for r in cp.ingress)
    assert str(scoped.positive) == '(app == "api" && projectcalico.org/namespace == "shop")'
    assert str(across.positive) == '(app == "api" && pcns.team == "a")'
    assert nets_only.positive is None and not nets_only.empty
    assert str(accounts.positive) == (
        '(projectcalico.org/namespace == "shop" && projectcalico.org/serviceaccount in {"api"})'
    )
