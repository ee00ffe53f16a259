"""The ``kubernetes`` flavor: ``networking.k8s.io/v1`` NetworkPolicy per namespace.

With ``--staged``, ``StagedKubernetesNetworkPolicy`` (projectcalico.org/v3), which Calico evaluates
without enforcing. Workload peers become pod and namespace selectors (namespaces by their
``kubernetes.io/metadata.name`` label), address peers ``ipBlock``s, port runs ``endPort`` ranges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from flowlens.suggest.edges import port_ranges
from flowlens.suggest.model import DNS_LABELS, DNS_NAMESPACE, DNS_PORT, NamespacePlan, Peer, Plan, Port, Rule
from flowlens.suggest.observed import Labels
from flowlens.suggest.render import common
from flowlens.suggest.render.common import RenderedRule
from flowlens.suggest.yamlout import Commented, Document

K8S_API = "networking.k8s.io/v1"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"

_K8S_PROTO = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


def _k8s_selector(labels: Labels) -> dict[str, Any]:
    return {"matchLabels": dict(labels)} if labels else {}


def _k8s_peers(peer: Peer, namespace: str) -> list[dict[str, Any]]:
    if peer.kind == "workload":
        if peer.namespace == namespace:
            return [{"podSelector": _k8s_selector(peer.selector)}]
        item: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: peer.namespace}}}
        if peer.selector:
            item["podSelector"] = _k8s_selector(peer.selector)
        return [item]
    out = []
    for cidr in peer.nets:
        block: dict[str, Any] = {"cidr": cidr}
        inside = [e for e in peer.except_nets if _inside(e, cidr)]
        if inside:
            block["except"] = inside
        out.append({"ipBlock": block})
    return out


def _inside(inner: str, outer: str) -> bool:
    a, b = ipaddress.ip_network(inner), ipaddress.ip_network(outer)
    return a.version == b.version and a != b and a.subnet_of(b)  # type: ignore[arg-type]


def _k8s_ports(ports: Sequence[Port]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for proto, first, last in port_ranges(ports):
        entry: dict[str, Any] = {"protocol": _K8S_PROTO[proto]}
        if first is not None:
            entry["port"] = first
            if last is not None and last != first:
                entry["endPort"] = last
        out.append(entry)
    return out


def _k8s_rule(rule: Rule, namespace: str) -> dict[str, Any]:
    key = "from" if rule.direction == "ingress" else "to"
    body: dict[str, Any] = {key: [item for p in rule.peers for item in _k8s_peers(p, namespace)]}
    if rule.ports:
        body["ports"] = _k8s_ports(rule.ports)
    return body


def _k8s_kind(plan: Plan) -> tuple[str, str]:
    if plan.options.staged:
        return common.CALICO_API, "StagedKubernetesNetworkPolicy"
    return K8S_API, "NetworkPolicy"


def _k8s_doc(plan: Plan, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    api, kind = _k8s_kind(plan)
    if plan.options.staged:
        spec = {"stagedAction": "Set", **spec}
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": common.metadata(name, namespace),
        "spec": spec,
    }


def render_namespace(plan: Plan, ns: NamespacePlan, rules_out: list[RenderedRule]) -> list[Document]:
    n = ns.namespace
    dns_rule = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: DNS_NAMESPACE}},
                "podSelector": {"matchLabels": dict(DNS_LABELS)},
            }
        ],
        "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
    }
    docs = [
        Document(
            _k8s_doc(
                plan,
                common.ALLOW_DNS,
                n,
                {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns_rule]},
            ),
            common.dns_comments(ns),
        ),
        Document(
            _k8s_doc(plan, common.DEFAULT_DENY, n, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            ("deny every connection the policies below do not allow, in and out",),
        ),
    ]
    for policy in ns.policies:
        name = f"flowlens.{policy.name}"
        spec: dict[str, Any] = {"podSelector": _k8s_selector(policy.workload.selector)}
        types = [t for t, rules in (("Ingress", policy.ingress), ("Egress", policy.egress)) if rules]
        spec["policyTypes"] = types
        for direction, rules in (("ingress", policy.ingress), ("egress", policy.egress)):
            if not rules:
                continue
            items = []
            for rule in rules:
                items.append(
                    Commented(_k8s_rule(rule, n), common.summarise_rule(rule, plan, n, name, rules_out))
                )
            spec[direction] = items
        docs.append(Document(_k8s_doc(plan, name, n, spec), common.policy_comments(policy, plan)))
    return docs
