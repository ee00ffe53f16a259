"""What both flavors of rendering share: the rule summaries, breadth, evidence comments and metadata.

Every rule is rendered with comments saying why it is there: ``BROAD:`` warnings first, then
``REMEDIATION:`` for rules that allow observed denied traffic, ``ADMITTED:`` for held-back edges
kept by ``--admit``, ``THIN:`` when its weakest evidence was seen in few intervals, then how much
it admits (:func:`breadth`), then one ``evidence:`` line per observed flow (with the days and
intervals it was seen in). Every policy says which workload
it selects and how. Document order is the same in both flavors: the namespace's allow-DNS policy
first, its default deny, then one policy per workload in the plan's order; the ``order`` values of
:data:`ORDER_DNS` and the rest place the Calico policies the same way inside their tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowlens.suggest.cidr import count_addresses
from flowlens.suggest.model import NamespacePlan, Plan, Port, Rule, WorkloadPolicy
from flowlens.suggest.observed import Labels
from flowlens.suggest.yamlout import Document

CALICO_API = "projectcalico.org/v3"
MANAGED_BY = ("app.kubernetes.io/managed-by", "flowlens")
DEFAULT_DENY = "default-deny"
ALLOW_DNS = "allow-dns"
ORDER_DNS = 100
ORDER_WORKLOAD = 200
ORDER_DENY = 1000
ORDER_BASELINE = 10000


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
    days: int = 0  # of its weakest evidence (see Rule.weakest): the summary ranks rules by them
    intervals: int = 0
    connections: int = 0
    weakest: str = ""  # that evidence's peer and port
    thin: str | None = None
    admitted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rendered:
    """Documents per namespace (and cluster-scoped ones), plus every rule for the summary."""

    cluster: tuple[Document, ...]
    namespaces: tuple[tuple[str, tuple[Document, ...]], ...]
    rules: tuple[RenderedRule, ...]


def _count_ports(ports: Sequence[Port]) -> int | None:
    if not ports or any(p.port is None for p in ports):
        return None
    return len(ports)


def breadth(rule: Rule, plan: Plan) -> Breadth:
    """Addresses, ports and known workloads that ``rule`` admits."""
    nets = [n for p in rule.peers if p.kind == "nets" for n in p.nets]
    excepts = [n for p in rule.peers if p.kind == "nets" for n in p.except_nets]
    selectors: dict[str, list[Labels]] = {}
    for p in rule.peers:
        if p.kind == "workload" and p.namespace is not None:
            selectors.setdefault(p.namespace, []).append(p.selector)
    workloads = sum(
        1
        for namespace, chosen in selectors.items()
        for have in plan.labels_by_namespace.get(namespace, ())
        if any(all(have.get(k) == v for k, v in selector) for selector in chosen)
    )
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


def rule_comments(rule: Rule, b: Breadth, thin_intervals: int) -> tuple[str, ...]:
    lines = [f"BROAD: {reason}" for reason in b.broad]
    if rule.remediation:
        lines.append("REMEDIATION: allows traffic that was observed denied (--include-denied)")
    lines.extend(f"ADMITTED: held back ({why}), kept by --admit" for why in rule.admitted)
    thin = rule.thin(thin_intervals)
    if thin is not None:
        lines.append(f"THIN: {thin}")
    lines.append(_breadth_comment(b))
    lines.extend("evidence: " + e.line() for e in rule.evidence)
    return tuple(lines)


def policy_comments(policy: WorkloadPolicy, plan: Plan) -> tuple[str, ...]:
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


def metadata(
    name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(labels) if labels else {MANAGED_BY[0]: MANAGED_BY[1]}
    return meta


def dns_comments(ns: NamespacePlan) -> tuple[str, ...]:
    lines = ["DNS to kube-dns for every pod of the namespace (placed first)"]
    if ns.dns_evidence:
        lines.extend("evidence: " + e.line() for e in ns.dns_evidence)
    else:
        lines.append("no DNS traffic was observed in the window; kept so that name lookups keep working")
    return tuple(lines)


def rendered_rule(namespace: str, policy: str, rule: Rule, b: Breadth, thin_intervals: int) -> RenderedRule:
    weak = rule.weakest if rule.evidence else None
    return RenderedRule(
        namespace=namespace,
        policy=policy,
        direction=rule.direction,
        peers=tuple(p.text for p in rule.peers),
        ports=tuple(p.text for p in rule.ports) or ("all",),
        breadth=b,
        remediation=rule.remediation,
        days=weak.days if weak else 0,
        intervals=weak.intervals if weak else 0,
        connections=weak.connections if weak else 0,
        weakest=f"{weak.peer} {weak.port}" if weak else "",
        thin=rule.thin(thin_intervals),
        admitted=rule.admitted,
    )


def summarise_rule(
    rule: Rule, plan: Plan, namespace: str, policy: str, rules_out: list[RenderedRule]
) -> tuple[str, ...]:
    """The comments of one rule of ``policy``; its summary is added to ``rules_out``."""
    b = breadth(rule, plan)
    rules_out.append(rendered_rule(namespace, policy, rule, b, plan.options.thin_intervals))
    return rule_comments(rule, b, plan.options.thin_intervals)
