"""Rendering a :class:`~flowlens.suggest.synth.Plan` as manifests with evidence comments.

``kubernetes`` flavor: ``networking.k8s.io/v1`` NetworkPolicy (``StagedKubernetesNetworkPolicy``
with ``--staged``). ``calico`` flavor: ``projectcalico.org/v3`` NetworkPolicy in a tier of its
own (with the Tier object), GlobalNetworkSets for groups of external CIDRs, and optionally a
GlobalNetworkPolicy baseline. Output is sorted and free of timestamps other than the evidence,
so the same plan always renders to the same bytes.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowlens.suggest.cidr import count_addresses
from flowlens.suggest.observed import Labels
from flowlens.suggest.synth import (
    DNS_LABELS,
    DNS_NAMESPACE,
    DNS_PORT,
    SYSTEM_NAMESPACES,
    SYSTEM_PREFIXES,
    NamespacePlan,
    Peer,
    Plan,
    Port,
    Rule,
    WorkloadPolicy,
)
from flowlens.suggest.yamlout import Commented, Document

K8S_API = "networking.k8s.io/v1"
CALICO_API = "projectcalico.org/v3"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
MANAGED_BY = ("app.kubernetes.io/managed-by", "flowlens")
NETSET_LABEL = "flowlens.io/network-set"
DEFAULT_DENY = "default-deny"
ALLOW_DNS = "allow-dns"
BASELINE = "flowlens-baseline"
ORDER_DNS = 100
ORDER_WORKLOAD = 200
ORDER_DENY = 1000
ORDER_BASELINE = 10000
#: A Calico rule peer group with at least this many CIDRs becomes a GlobalNetworkSet.
NETSET_MIN_CIDRS = 2

_K8S_PROTO = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}
_CALICO_PROTO = {
    "tcp": "TCP",
    "udp": "UDP",
    "sctp": "SCTP",
    "icmp": "ICMP",
    "icmp6": "ICMPv6",
    "icmpv6": "ICMPv6",
    "udplite": "UDPLite",
}


@dataclass(frozen=True)
class Breadth:
    """How much one rule admits."""

    addresses: int | None  # None: no address peers
    ports: int | None  # None: every port
    workloads: int  # known workloads its pod peers select
    broad: tuple[str, ...]


@dataclass(frozen=True)
class RenderedRule:
    """A rule as the summary reports it."""

    namespace: str
    policy: str
    direction: str
    peers: tuple[str, ...]
    ports: tuple[str, ...]
    breadth: Breadth
    remediation: bool


@dataclass(frozen=True)
class Rendered:
    """Documents per namespace (and cluster-scoped ones), plus every rule for the summary."""

    cluster: tuple[Document, ...]
    namespaces: tuple[tuple[str, tuple[Document, ...]], ...]
    rules: tuple[RenderedRule, ...]


# --- shared helpers ---------------------------------------------------------------------------


def _port_ranges(ports: Sequence[Port]) -> list[tuple[str, int | None, int | None]]:
    """(proto, first, last) entries: runs of 3 or more consecutive ports become one range."""
    out: list[tuple[str, int | None, int | None]] = []
    by_proto: dict[str, list[int | None]] = {}
    for p in ports:
        by_proto.setdefault(p.proto, []).append(p.port)
    for proto in sorted(by_proto):
        values = by_proto[proto]
        if None in values:
            out.append((proto, None, None))
            continue
        nums = sorted(v for v in values if v is not None)
        i = 0
        while i < len(nums):
            j = i
            while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
                j += 1
            if j - i >= 2:
                out.append((proto, nums[i], nums[j]))
            else:
                out.extend((proto, n, n) for n in nums[i : j + 1])
            i = j + 1
    return out


def _count_ports(ports: Sequence[Port]) -> int | None:
    if not ports or any(p.port is None for p in ports):
        return None
    return len(ports)


def _matches(selector: Labels, labels: Labels) -> bool:
    have = dict(labels)
    return all(have.get(k) == v for k, v in selector)


def breadth(rule: Rule, plan: Plan) -> Breadth:
    """Addresses, ports and known workloads that ``rule`` admits."""
    nets = [n for p in rule.peers if p.kind == "nets" for n in p.nets]
    excepts = [n for p in rule.peers if p.kind == "nets" for n in p.except_nets]
    workloads = 0
    for w, labels in plan.workloads:
        if any(
            p.kind == "workload" and p.namespace == w.namespace and _matches(p.selector, labels)
            for p in rule.peers
        ):
            workloads += 1
    return Breadth(
        addresses=count_addresses(nets, excepts) if nets else None,
        ports=_count_ports(rule.ports),
        workloads=workloads,
        broad=rule.broad,
    )


def _breadth_comment(b: Breadth) -> str:
    parts = []
    if b.workloads:
        parts.append(f"{b.workloads} workload{'s' if b.workloads != 1 else ''}")
    if b.addresses is not None:
        parts.append(f"{b.addresses} address{'es' if b.addresses != 1 else ''}")
    parts.append("every port" if b.ports is None else f"{b.ports} port{'s' if b.ports != 1 else ''}")
    return "admits: " + ", ".join(parts)


def _rule_comments(rule: Rule, b: Breadth) -> tuple[str, ...]:
    lines = [f"BROAD: {reason}" for reason in b.broad]
    if rule.remediation:
        lines.append("REMEDIATION: allows traffic that was observed denied (--include-denied)")
    lines.append(_breadth_comment(b))
    lines.extend("evidence: " + e.line() for e in rule.evidence)
    return tuple(lines)


def _policy_comments(policy: WorkloadPolicy, plan: Plan) -> tuple[str, ...]:
    w = policy.workload
    lines = [f"workload {w.display} in {w.namespace}: pods {', '.join(w.members)}"]
    if w.how == "fallback":
        lines.append(
            f"selected by common labels: none of {', '.join(plan.options.label_keys)} is on these pods"
        )
    elif w.how == "unlabelled":
        lines.append(
            "BROAD: these pods have no usable labels, so this policy selects every pod in the namespace"
        )
    return tuple(lines)


def _metadata(
    name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(labels) if labels else {MANAGED_BY[0]: MANAGED_BY[1]}
    return meta


def _short(text: str, limit: int = 63) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[: limit - 9].rstrip("-.") + "-" + digest


# --- Kubernetes flavor ------------------------------------------------------------------------


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
    for proto, first, last in _port_ranges(ports):
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
        return CALICO_API, "StagedKubernetesNetworkPolicy"
    return K8S_API, "NetworkPolicy"


def _k8s_doc(plan: Plan, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    api, kind = _k8s_kind(plan)
    if plan.options.staged:
        spec = {"stagedAction": "Set", **spec}
    return {"apiVersion": api, "kind": kind, "metadata": _metadata(name, namespace), "spec": spec}


def _dns_comments(ns: NamespacePlan) -> tuple[str, ...]:
    lines = ["DNS to kube-dns for every pod of the namespace (placed first)"]
    if ns.dns_evidence:
        lines.extend("evidence: " + e.line() for e in ns.dns_evidence)
    else:
        lines.append("no DNS traffic was observed in the window; kept so that name lookups keep working")
    return tuple(lines)


def _render_k8s_namespace(plan: Plan, ns: NamespacePlan, rules_out: list[RenderedRule]) -> list[Document]:
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
                plan, ALLOW_DNS, n, {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns_rule]}
            ),
            _dns_comments(ns),
        ),
        Document(
            _k8s_doc(plan, DEFAULT_DENY, n, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
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
                b = breadth(rule, plan)
                items.append(Commented(_k8s_rule(rule, n), _rule_comments(rule, b)))
                rules_out.append(_rendered(n, name, rule, b))
            spec[direction] = items
        docs.append(Document(_k8s_doc(plan, name, n, spec), _policy_comments(policy, plan)))
    return docs


def _rendered(namespace: str, policy: str, rule: Rule, b: Breadth) -> RenderedRule:
    return RenderedRule(
        namespace=namespace,
        policy=policy,
        direction=rule.direction,
        peers=tuple(p.text for p in rule.peers),
        ports=tuple(p.text for p in rule.ports) or ("all",),
        breadth=b,
        remediation=rule.remediation,
    )


# --- Calico flavor ----------------------------------------------------------------------------


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
        for proto_name, first, last in _port_ranges(rule.ports):
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
        "apiVersion": CALICO_API,
        "kind": _calico_kind(plan, kind),
        "metadata": _metadata(name, namespace),
        "spec": spec,
    }


def _render_calico_namespace(plan: Plan, ns: NamespacePlan, rules_out: list[RenderedRule]) -> list[Document]:
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
                f"{tier}.{ALLOW_DNS}",
                n,
                {
                    "tier": tier,
                    "order": ORDER_DNS,
                    "selector": "all()",
                    "types": ["Egress"],
                    "egress": [
                        {"action": "Allow", "protocol": "UDP", "destination": dns_dest},
                        {"action": "Allow", "protocol": "TCP", "destination": dns_dest},
                    ],
                },
            ),
            _dns_comments(ns),
        ),
        Document(
            _calico_doc(
                plan,
                "NetworkPolicy",
                f"{tier}.{DEFAULT_DENY}",
                n,
                {"tier": tier, "order": ORDER_DENY, "selector": "all()", "types": ["Ingress", "Egress"]},
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
            "order": ORDER_WORKLOAD,
            "selector": calico_selector(policy.workload.selector),
        }
        spec["types"] = [t for t, rules in (("Ingress", policy.ingress), ("Egress", policy.egress)) if rules]
        for direction, rules in (("ingress", policy.ingress), ("egress", policy.egress)):
            if not rules:
                continue
            items: list[Any] = []
            for index, rule in enumerate(rules):
                b = breadth(rule, plan)
                label = _short(f"{n}.{policy.name}.{direction}-{index + 1}")
                before = dict(netsets)
                calico = _calico_rules(rule, n, netsets, label)
                for cidrs, netset_label in netsets.items():
                    if cidrs not in before:
                        netset_docs.append(_netset_doc(netset_label, cidrs, n, policy, direction))
                comments = _rule_comments(rule, b)
                for i, r in enumerate(calico):
                    items.append(Commented(r, comments if i == 0 else ("(same evidence as the rule above)",)))
                rules_out.append(_rendered(n, name, rule, b))
            spec[direction] = items
        docs.append(
            Document(_calico_doc(plan, "NetworkPolicy", name, n, spec), _policy_comments(policy, plan))
        )
    return docs + sorted(netset_docs, key=lambda d: str(d.body["metadata"]["name"]))


def _netset_doc(
    label: str, cidrs: Sequence[str], namespace: str, policy: WorkloadPolicy, direction: str
) -> Document:
    body = {
        "apiVersion": CALICO_API,
        "kind": "GlobalNetworkSet",
        "metadata": {
            "name": f"flowlens.{label}",
            "labels": {NETSET_LABEL: label, MANAGED_BY[0]: MANAGED_BY[1]},
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


def _cluster_docs(plan: Plan) -> list[Document]:
    docs: list[Document] = []
    if plan.options.flavor == "calico":
        docs.append(
            Document(
                {
                    "apiVersion": CALICO_API,
                    "kind": "Tier",
                    "metadata": _metadata(plan.options.tier),
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
            "order": ORDER_BASELINE,
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
                    "apiVersion": CALICO_API,
                    "kind": "StagedGlobalNetworkPolicy" if plan.options.staged else "GlobalNetworkPolicy",
                    "metadata": _metadata(BASELINE),
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


def render(plan: Plan) -> Rendered:
    """All documents of ``plan``, grouped by namespace, plus the rules for the summary."""
    rules: list[RenderedRule] = []
    namespaces = []
    for ns in plan.namespaces:
        if plan.options.flavor == "calico":
            docs = _render_calico_namespace(plan, ns, rules)
        else:
            docs = _render_k8s_namespace(plan, ns, rules)
        namespaces.append((ns.namespace, tuple(docs)))
    return Rendered(tuple(_cluster_docs(plan)), tuple(namespaces), tuple(rules))
