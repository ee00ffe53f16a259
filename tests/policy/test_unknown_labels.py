"""A flow record that did not log labels still has a known namespace."""

from __future__ import annotations

from flowlens.policy import Endpoint, Evaluator, FlowKey, policies_from_objects

DENY_ALL_IN_SHOP = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all", "namespace": "shop"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}


def test_a_namespaced_policy_never_selects_a_pod_of_another_namespace_whose_labels_are_unknown():
    evaluator = Evaluator(policies_from_objects([DENY_ALL_IN_SHOP]))
    other = Endpoint("wep", "other", "a-7d4f8c9b5-*", labels={}, labels_known=False)
    shop = Endpoint("wep", "shop", "b-6c7d8e9f0-*", labels={"app": "b"})
    decision = evaluator.evaluate(FlowKey("src", other, shop, "tcp", 80))
    assert decision.action == "allow"
    assert [h.hit for h in decision.enforced] == ["0|__PROFILE__|pro:kns.other|allow|0"]
    assert not any("deny-all" in note for note in decision.notes)
    # the same unknown-label pod inside shop is still selected by the stricter assumption
    inside = Endpoint("wep", "shop", "a-7d4f8c9b5-*", labels={}, labels_known=False)
    assert evaluator.evaluate(FlowKey("src", inside, shop, "tcp", 80)).action == "deny"
