"""The ``calico`` flavor: ``projectcalico.org/v3`` NetworkPolicy in a tier of its own.

Per namespace the policies sit in the tier of ``--tier`` (the Tier object is rendered once, for
the cluster), with GlobalNetworkSets for groups of external CIDRs. The cluster documents
(:func:`cluster_docs`) are the Tier and, with ``--baseline`` in either flavor, a
GlobalNetworkPolicy that default-denies every non-system namespace but DNS.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from typing import Any

from flowlens.suggest.edges import port_ranges
from flowlens.suggest.model import (
    DNS_LABELS,
    DNS_NAMESPACE,
    DNS_PORT,
    SYSTEM_NAMESPACES,
    SYSTEM_PREFIXES,
    NamespacePlan,
    Plan,
    Rule,
    WorkloadPolicy,
)
from flowlens.suggest.observed import Labels
from flowlens.suggest.render import common
from flowlens.suggest.render.common import RenderedRule
from flowlens.suggest.yamlout import Commented, Document

NETSET_LABEL = "flowlens.io/network-set"
BASELINE = "flowlens-baseline"
#: A Calico rule peer group with at least this many CIDRs becomes a GlobalNetworkSet.
NETSET_MIN_CIDRS = 2

_CALICO_PROTO = {
    "tcp": "TCP",
    "udp": "UDP",
    "sctp": "SCTP",
    "icmp": "ICMP",
    "icmp6": "ICMPv6",
    "icmpv6": "ICMPv6",
    "udplite": "UDPLite",
}


def _short(text: str, limit: int = 63) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[: limit - 9].rstrip("-.") + "-" + digest


def _q(value: str) -> str:
    # Label keys and values cannot hold quotes (Kubernetes syntax), so single quotes are safe.
    return "'" + value.replace("'", "") + "'"


def calico_selector(labels: Labels) -> str:
    """``k == 'v' && ...``; ``all()`` for the empty selector."""
    if not labels:
        return "all()"
    return " && ".join(f"{k} == {_q(v)}" for k, v in labels)


def _calico_or(selectors: Sequence[Labels]) -> str:
    uniq = sorted(set(selectors))
    if any(not s for s in uniq):
        return "all()"
    if len(uniq) == 1:
        return calico_selector(uniq[0])
    keys = {s[0][0] for s in uniq if len(s) == 1}
    if len(keys) == 1 and all(len(s) == 1 for s in uniq):
        key = keys.pop()
        return f"{key} in {{{', '.join(_q(s[0][1]) for s in uniq)}}}"
    return " || ".join(f"({calico_selector(s)})" for s in uniq)


def _net_key(cidr: str) -> tuple[int, int, int]:
    net = ipaddress.ip_network(cidr)
    return (net.version, int(net.network_address), net.prefixlen)


def _calico_entities(
    rule: Rule, namespace: str, netsets: dict[tuple[str, ...], str], netset_name: str
) -> list[dict[str, Any]]:
    """EntityRules for the rule's peers: one per namespace scope, one per address group."""
    out: list[dict[str, Any]] = []
    by_scope: dict[tuple[str, str | None, str], list[Labels]] = {}
    for p in rule.peers:
        if p.kind == "workload":
            by_scope.setdefault(("ns", p.namespace, p.service_account or ""), []).append(p.selector)
        elif p.kind == "entity":
            scope = "global" if p.namespace is None else "ns"
            by_scope.setdefault((scope, p.namespace, ""), []).append(p.selector)
    for (scope, ns, account), sels in sorted(
        by_scope.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])
    ):
        entity: dict[str, Any] = {}
        if scope == "global":
            entity["selector"] = _calico_or(sels)
            entity["namespaceSelector"] = "global()"
        elif ns == namespace:
            entity["selector"] = _calico_or(sels)
        else:
            assert ns is not None
            entity["namespaceSelector"] = f"projectcalico.org/name == {_q(ns)}"
            if any(sels):
                entity["selector"] = _calico_or(sels)
        if account:
            entity["serviceAccounts"] = {"names": [account]}
        out.append(entity)
    exact = sorted(
        {n for p in rule.peers if p.kind == "nets" and p.broad is None and not p.except_nets for n in p.nets},
        key=_net_key,
    )
    if exact:
        if len(exact) >= NETSET_MIN_CIDRS:
            key = tuple(exact)
            label = netsets.setdefault(key, netset_name)
            out.append({"selector": f"{NETSET_LABEL} == {_q(label)}", "namespaceSelector": "global()"})
        else:
            out.append({"nets": exact})
    for p in rule.peers:
        if p.kind == "nets" and (p.broad is not None or p.except_nets):
            entity = {"nets": list(p.nets)}
            if p.except_nets:
                entity["notNets"] = list(p.except_nets)
            out.append(entity)
    return out


def _calico_rules(
    rule: Rule, namespace: str, netsets: dict[tuple[str, ...], str], netset_name: str
) -> list[dict[str, Any]]:
    entities = _calico_entities(rule, namespace, netsets, netset_name)
    port_groups: list[tuple[str | None, list[int | str]]] = []
    if not rule.ports:
        port_groups.append((None, []))
    else:
        by_proto: dict[str, list[int | str]] = {}
        for proto_name, first, last in port_ranges(rule.ports):
            lst = by_proto.setdefault(proto_name, [])
            if first is not None:
                lst.append(first if first == last else f"{first}:{last}")
        port_groups.extend(sorted(by_proto.items()))
    out = []
    for proto, ports in port_groups:
        for entity in entities:
            r: dict[str, Any] = {"action": "Allow"}
            if proto is not None:
                r["protocol"] = _CALICO_PROTO.get(proto, int(proto) if proto.isdigit() else proto.upper())
            if rule.direction == "ingress":
                r["source"] = dict(entity)
                if ports:
                    r["destination"] = {"ports": list(ports)}
            else:
                dest = dict(entity)
                if ports:
                    dest["ports"] = list(ports)
                r["destination"] = dest
            out.append(r)
    return out


def _calico_kind(plan: Plan, kind: str) -> str:
    return f"Staged{kind}" if plan.options.staged else kind


def _calico_doc(
    plan: Plan, kind: str, name: str, namespace: str | None, spec: dict[str, Any]
) -> dict[str, Any]:
    if plan.options.staged:
        spec = {"stagedAction": "Set", **spec}
    return {
        "apiVersion": common.CALICO_API,
        "kind": _calico_kind(plan, kind),
        "metadata": common.metadata(name, namespace),
        "spec": spec,
    }


def render_namespace(plan: Plan, ns: NamespacePlan, rules_out: list[RenderedRule]) -> list[Document]:
    n = ns.namespace
    tier = plan.options.tier
    dns_dest = {
        "selector": calico_selector(DNS_LABELS),
        "namespaceSelector": f"projectcalico.org/name == {_q(DNS_NAMESPACE)}",
        "ports": [DNS_PORT],
    }
    docs = [
        Document(
            _calico_doc(
                plan,
                "NetworkPolicy",
                f"{tier}.{common.ALLOW_DNS}",
                n,
                {
                    "tier": tier,
                    "order": common.ORDER_DNS,
                    "selector": "all()",
                    "types": ["Egress"],
                    "egress": [
                        {"action": "Allow", "protocol": "UDP", "destination": dns_dest},
                        {"action": "Allow", "protocol": "TCP", "destination": dns_dest},
                    ],
                },
            ),
            common.dns_comments(ns),
        ),
        Document(
            _calico_doc(
                plan,
                "NetworkPolicy",
                f"{tier}.{common.DEFAULT_DENY}",
                n,
                {
                    "tier": tier,
                    "order": common.ORDER_DENY,
                    "selector": "all()",
                    "types": ["Ingress", "Egress"],
                },
            ),
            (
                f"selects every pod of the namespace so that tier {tier!r} applies to it: what no",
                "policy of the tier allows meets the tier's end-of-tier deny",
            ),
        ),
    ]
    netsets: dict[tuple[str, ...], str] = {}
    netset_docs: list[Document] = []
    for policy in ns.policies:
        name = f"{tier}.{policy.name}"
        spec: dict[str, Any] = {
            "tier": tier,
            "order": common.ORDER_WORKLOAD,
            "selector": calico_selector(policy.workload.selector),
        }
        spec["types"] = [t for t, rules in (("Ingress", policy.ingress), ("Egress", policy.egress)) if rules]
        for direction, rules in (("ingress", policy.ingress), ("egress", policy.egress)):
            if not rules:
                continue
            items: list[Any] = []
            for index, rule in enumerate(rules):
                comments = common.summarise_rule(rule, plan, n, name, rules_out)
                label = _short(f"{n}.{policy.name}.{direction}-{index + 1}")
                before = dict(netsets)
                calico = _calico_rules(rule, n, netsets, label)
                for cidrs, netset_label in netsets.items():
                    if cidrs not in before:
                        netset_docs.append(_netset_doc(netset_label, cidrs, n, policy, direction))
                for i, r in enumerate(calico):
                    items.append(Commented(r, comments if i == 0 else ("(same evidence as the rule above)",)))
            spec[direction] = items
        docs.append(
            Document(_calico_doc(plan, "NetworkPolicy", name, n, spec), common.policy_comments(policy, plan))
        )
    return docs + sorted(netset_docs, key=lambda d: str(d.body["metadata"]["name"]))


def _netset_doc(
    label: str, cidrs: Sequence[str], namespace: str, policy: WorkloadPolicy, direction: str
) -> Document:
    body = {
        "apiVersion": common.CALICO_API,
        "kind": "GlobalNetworkSet",
        "metadata": {
            "name": f"flowlens.{label}",
            "labels": {NETSET_LABEL: label, common.MANAGED_BY[0]: common.MANAGED_BY[1]},
        },
        "spec": {"nets": list(cidrs)},
    }
    return Document(
        body,
        (f"external addresses {policy.workload.display} in {namespace} was observed using ({direction})",),
    )


def _system_selector() -> str:
    names = ", ".join(_q(n) for n in SYSTEM_NAMESPACES)
    prefixes = " && ".join(f"!(projectcalico.org/name starts with {_q(p)})" for p in SYSTEM_PREFIXES)
    return f"projectcalico.org/name not in {{{names}}} && {prefixes}"


def cluster_docs(plan: Plan) -> list[Document]:
    docs: list[Document] = []
    if plan.options.flavor == "calico":
        docs.append(
            Document(
                {
                    "apiVersion": common.CALICO_API,
                    "kind": "Tier",
                    "metadata": common.metadata(plan.options.tier),
                    "spec": {"order": plan.options.tier_order, "defaultAction": "Deny"},
                },
                (
                    "tier for flowlens suggestions: evaluated before the default tier (order 1000000),",
                    "so its allows and its end-of-tier deny decide first for the pods it selects",
                ),
            )
        )
    if plan.options.baseline:
        dns = {
            "selector": calico_selector(DNS_LABELS),
            "namespaceSelector": f"projectcalico.org/name == {_q(DNS_NAMESPACE)}",
            "ports": [DNS_PORT],
        }
        spec = {
            "order": common.ORDER_BASELINE,
            "namespaceSelector": _system_selector(),
            "selector": "all()",
            "types": ["Ingress", "Egress"],
            "egress": [
                {"action": "Allow", "protocol": "UDP", "destination": dns},
                {"action": "Allow", "protocol": "TCP", "destination": dns},
            ],
        }
        if plan.options.staged:
            spec = {"stagedAction": "Set", **spec}
        docs.append(
            Document(
                {
                    "apiVersion": common.CALICO_API,
                    "kind": "StagedGlobalNetworkPolicy" if plan.options.staged else "GlobalNetworkPolicy",
                    "metadata": common.metadata(BASELINE),
                    "spec": spec,
                },
                (
                    "BROAD: cluster baseline in the default tier: every pod outside the system namespaces",
                    "may only resolve names; everything else needs an allow from some policy",
                    "(Kubernetes NetworkPolicies run before it, at order 1000)",
                ),
            )
        )
    return docs
