"""Rendering the cluster guardrails as manifests, each rule with its evidence in a comment.

Owns two flavors: ``kubernetes`` writes ``policy.networking.k8s.io/v1alpha2``
ClusterNetworkPolicy (Calico v3.32+ enforces it in ``kube-admin`` and ``kube-baseline``);
``calico`` writes ``projectcalico.org/v3`` GlobalNetworkPolicy in the tiers chosen for the two
layers (by default Calico's own guardrail tiers), plus a Tier manifest for a tier Calico does
not create itself. Both express exactly the model of :mod:`flowlens.suggest.cluster.synth`, so
they replay the same (rulebook G3-G7).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowlens.policy.model import ANP_TIER, BANP_TIER, KUBE_ADMIN_TIER, KUBE_BASELINE_TIER
from flowlens.suggest.cluster.synth import ClusterPlan, Guardrail, GuardRule, Peer, Ports, Subject
from flowlens.suggest.yamlout import Commented, Document

CNP_API = "policy.networking.k8s.io/v1alpha2"
CALICO_API = "projectcalico.org/v3"
NAME_LABEL = "kubernetes.io/metadata.name"
#: Tiers Calico creates itself: no Tier manifest is written for them.
STATIC_TIERS = frozenset({KUBE_ADMIN_TIER, KUBE_BASELINE_TIER, ANP_TIER, BANP_TIER})
#: Orders of a tier the user names: the Admin layer before every other tier, the Baseline after
#: the default tier (order 1,000,000), as Calico orders its own guardrail tiers.
CUSTOM_TIER_ORDERS = {"Admin": 1, "Baseline": 10_000_000}


def render(plan: ClusterPlan, flavor: str, tiers: dict[str, str]) -> list[tuple[str, Document]]:
    """Every guardrail of ``plan`` as a document with its layer (Admin or Baseline), Admin layer
    first; ``tiers`` maps the layers to the Calico tiers of the ``calico`` flavor."""
    docs: list[tuple[str, Document]] = []
    if flavor == "calico":
        for layer in ("Admin", "Baseline"):
            if tiers[layer] not in STATIC_TIERS and any(g.tier == layer for g in plan.guardrails):
                docs.append((layer, _tier(tiers[layer], layer)))
    for g in sorted(plan.guardrails, key=lambda g: (g.tier != "Admin", g.priority, g.name)):
        body = _cnp(g) if flavor == "kubernetes" else _gnp(g, tiers[g.tier])
        heading = f"{g.tier} layer: {g.name}, priority {g.priority}, subject {g.subject.display}"
        docs.append((g.tier, Document(body, (heading, *g.comments))))
    return docs


# --------------------------------------------------------------------------------------------
# ClusterNetworkPolicy


def _label_selector(labels: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {"matchLabels": dict(labels)} if labels else {}


def _namespaces(names: Sequence[str]) -> dict[str, Any]:
    if not names:
        return {}
    if len(names) == 1:
        return {"matchLabels": {NAME_LABEL: names[0]}}
    return {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": list(names)}]}


def _cnp_peer(peer: Peer) -> dict[str, Any]:
    if peer.kind == "pods":
        return {
            "pods": {
                "namespaceSelector": _namespaces((peer.namespace,)),
                "podSelector": _label_selector(peer.selector),
            }
        }
    if peer.kind == "namespace":
        return {"namespaces": _namespaces((peer.namespace,))}
    if peer.kind == "any-namespace":
        return {"namespaces": {}}
    return {"networks": list(peer.nets)}


def _cnp_protocols(ports: Ports) -> list[dict[str, Any]]:
    out = []
    for proto, port in ports:
        dest = {"number": port} if port is not None else {"range": {"start": 1, "end": 65535}}
        out.append({proto: {"destinationPort": dest}})
    return out


def _cnp_rule(rule: GuardRule, direction: str) -> Commented:
    body: dict[str, Any] = {
        "name": rule.name,
        "action": rule.action,
        ("from" if direction == "ingress" else "to"): [_cnp_peer(p) for p in rule.peers],
    }
    if rule.ports:
        body["protocols"] = _cnp_protocols(rule.ports)
    return Commented(body, rule.evidence)


def _cnp_subject(subject: Subject) -> dict[str, Any]:
    if subject.pods is not None:
        return {
            "pods": {
                "namespaceSelector": _namespaces((subject.pods.namespace,)),
                "podSelector": _label_selector(subject.pods.selector),
            }
        }
    return {"namespaces": _namespaces(subject.namespaces)}


def _cnp(g: Guardrail) -> dict[str, Any]:
    spec: dict[str, Any] = {"tier": g.tier, "priority": g.priority, "subject": _cnp_subject(g.subject)}
    if g.ingress:
        spec["ingress"] = [_cnp_rule(r, "ingress") for r in g.ingress]
    if g.egress:
        spec["egress"] = [_cnp_rule(r, "egress") for r in g.egress]
    return {"apiVersion": CNP_API, "kind": "ClusterNetworkPolicy", "metadata": {"name": g.name}, "spec": spec}


# --------------------------------------------------------------------------------------------
# Calico GlobalNetworkPolicy


def _tier(name: str, layer: str) -> Document:
    body = {
        "apiVersion": CALICO_API,
        "kind": "Tier",
        "metadata": {"name": name},
        "spec": {"order": CUSTOM_TIER_ORDERS[layer], "defaultAction": "Pass"},
    }
    return Document(body, (f"the tier of the {layer} layer: unmatched traffic passes on to the next tier",))


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _calico_labels(labels: Sequence[tuple[str, str]]) -> str:
    return " && ".join(f"{k} == '{v}'" for k, v in labels)


def _calico_namespaces(names: Sequence[str]) -> str:
    if not names:
        return "all()"
    if len(names) == 1:
        return f"projectcalico.org/name == '{names[0]}'"
    return f"projectcalico.org/name in {{{_quoted(names)}}}"


def _calico_entity(peer: Peer) -> dict[str, Any]:
    if peer.kind == "pods":
        selector = "projectcalico.org/orchestrator == 'k8s'"
        if peer.selector:
            selector += " && " + _calico_labels(peer.selector)
        return {"selector": selector, "namespaceSelector": _calico_namespaces((peer.namespace,))}
    if peer.kind == "namespace":
        return {"namespaceSelector": _calico_namespaces((peer.namespace,))}
    if peer.kind == "any-namespace":
        return {"namespaceSelector": "all()"}
    return {"nets": list(peer.nets)}


def _calico_rules(rule: GuardRule, direction: str) -> list[Commented]:
    """One Calico rule per protocol and peer, protocols sorted, as Calico converts the cluster
    policy kinds (rulebook G7)."""
    action = "Allow" if rule.action == "Accept" else rule.action
    by_proto: dict[str, list[int | str]] = {}
    for name, port in rule.ports:
        by_proto.setdefault(name.upper(), []).append(port if port is not None else "1:65535")
    protos: list[str | None] = [*sorted(by_proto)] if by_proto else [None]
    out: list[Commented] = []
    for proto in protos:
        for peer in rule.peers:
            entity = _calico_entity(peer)
            body: dict[str, Any] = {"action": action}
            if proto is not None:
                body["protocol"] = proto
            if direction == "ingress":
                if entity:
                    body["source"] = entity
                if proto is not None:
                    body["destination"] = {"ports": by_proto[proto]}
            else:
                dest = dict(entity)
                if proto is not None:
                    dest["ports"] = by_proto[proto]
                body["destination"] = dest
            body["metadata"] = {"annotations": {"name": rule.name}}
            out.append(Commented(body, rule.evidence if not out else ()))
    return out


def _gnp(g: Guardrail, tier: str) -> dict[str, Any]:
    selector = "projectcalico.org/orchestrator == 'k8s'"
    if g.subject.pods is not None:
        namespaces: Sequence[str] = (g.subject.pods.namespace,)
        if g.subject.pods.selector:
            selector += " && " + _calico_labels(g.subject.pods.selector)
    else:
        namespaces = g.subject.namespaces
    spec: dict[str, Any] = {
        "tier": tier,
        "order": g.priority,
        "namespaceSelector": _calico_namespaces(namespaces),
        "selector": selector,
        "types": [t for t, rules in (("Ingress", g.ingress), ("Egress", g.egress)) if rules],
    }
    if g.ingress:
        spec["ingress"] = [c for r in g.ingress for c in _calico_rules(r, "ingress")]
    if g.egress:
        spec["egress"] = [c for r in g.egress for c in _calico_rules(r, "egress")]
    # Up to Calico v3.31 a policy in a tier other than default must be named <tier>.<name>.
    return {
        "apiVersion": CALICO_API,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"{tier}.{g.name}"},
        "spec": spec,
    }
