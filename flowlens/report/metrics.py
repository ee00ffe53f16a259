"""Segmentation coverage metrics of one window: their definitions, their values and the score.

Owns :data:`DEFINITIONS` (printed in every report), the frozen dataclasses a report is built from
(:class:`Coverage` and its parts, down to one direction of one workload, :class:`Traffic`) and
the arithmetic on them: coverage ratios, workload statuses, the flows-based default-deny verdict
and the capped, traffic-weighted score. :mod:`flowlens.report.coverage` computes the values from
an engine.

Direction follows the reporter: ingress = records reported by the destination (``reporter =
'dst'``, decided by the destination's ingress policy), egress = records reported by the source
(``reporter = 'src'``). A workload is ``namespace/name_aggr``. Connections are
``num_flows_started`` (connections that began in the window), bytes are ``bytes_in + bytes_out``
of the reporting endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

#: Workloads whose allowed connections exceed this share of a direction's total weigh no more
#: than this share in the score, so one chatty workload cannot decide it.
SCORE_WEIGHT_CAP = 0.10

# Statuses of one direction of one workload.
PROTECTED = "protected"
EXPOSED = "exposed"
UNATTRIBUTED = "unattributed"
NO_TRAFFIC = "no traffic"

DEFINITIONS: dict[str, str] = {
    "ingress": (
        "Traffic into a workload, as reported by the destination (reporter 'dst'): the "
        "destination's ingress policy decided it."
    ),
    "egress": (
        "Traffic out of a workload, as reported by the source (reporter 'src'): the source's egress "
        "policy decided it."
    ),
    "workload": (
        "A namespace and aggregated name (name_aggr, e.g. 'frontend-7d4f8c9b5-*'): the pods of one "
        "ReplicaSet, as Calico aggregates them. Host endpoints are reported separately."
    ),
    "connections": (
        "num_flows_started summed over records: the connections that began in the window (Calico "
        "decides a connection when it starts, so each decision counts once; long connections weigh in "
        "through bytes)."
    ),
    "explicit": (
        "An allowed record whose enforced policy trace ends in an allow rule of a policy (rule_index "
        ">= 0, or unknown in old 4-part hits): not the profile. Calico tiers never default to allow, "
        "so every allow that is not the profile's comes from a rule."
    ),
    "profile": (
        "An allowed record whose trace contains a Profile hit (tier __PROFILE__, kns.<namespace>): "
        "no policy selected the endpoint, or every tier passed (pass rules or end-of-tier pass, "
        "rule_index -1) and the default profile allowed it. A pass chain that ends in the profile "
        "counts as profile."
    ),
    "unattributed": (
        "An allowed record without a policy trace (policies were not logged): neither explicit nor "
        "profile, and it lowers coverage."
    ),
    "protected": (
        "Every allowed record of the workload in that direction was explicit (at least one record "
        "seen, allowed or denied)."
    ),
    "exposed": "At least one allowed record of the workload in that direction was decided by the profile.",
    "coverage": (
        "Traffic-weighted coverage: explicit connections / allowed connections (and the same for "
        "bytes), per workload, namespace or cluster and per direction. '-' when nothing was allowed."
    ),
    "default deny (flows)": (
        "Per namespace and direction, from the flows: 'enforced' = denies observed and nothing "
        "allowed by the profile; 'partial' = denies observed but some traffic allowed by the "
        "profile; 'implied' = no denies seen, but every allowed record explicit (every workload seen "
        "is selected by a policy, so its tier's end-of-tier deny applies); 'absent' = traffic "
        "allowed by the profile and no denies; 'no traffic' = nothing observed."
    ),
    "default deny (policies)": (
        "With --policies and --inventory, per namespace and direction: 'selected' = share of the "
        "namespace's inventory workloads that at least one enforced policy applies to; 'default "
        "deny' = share whose policies deny a probe nobody allowed (from/to an unknown internet "
        "address, TCP port 1), evaluated by flowlens' policy engine. A tier that passes everything "
        "on selects a workload without denying by default."
    ),
    "end-of-tier deny": (
        "A deny hit with rule_index -1: the endpoint was selected by a policy of the tier, no rule "
        "matched, and the tier's default action denied it."
    ),
    "cross-namespace edge": (
        "Connections between two different namespaces, each connection counted once (from the "
        "destination's record when the destination is a pod or host, else from the source's)."
    ),
    "internet exposure": (
        "Ingress from and egress to public networks (endpoint type net, name 'pub': an address "
        "outside 10/8, 172.16/12 and 192.168/16 that is no known endpoint)."
    ),
    "host endpoint exposure": "The same coverage figures for host endpoints (type hep), per host.",
    "unexpectedly allowed": (
        "Allowed traffic in the categories of the unexpected-allowed query (a flow can be in "
        "several): default-allow (the profile decided, per side), public-ingress (internet into a "
        "pod), public-egress (a pod or host to the internet), cross-namespace (pod to pod across "
        "namespaces), staged-deny (allowed now, a staged policy would deny it), host-endpoint "
        "(into a host endpoint). Connection-level categories count the destination's record, or "
        "the source's for the internet."
    ),
    "score": (
        "100 x the mean of ingress and egress weighted coverage (a direction without allowed "
        "traffic is left out). Weighted coverage of a direction = sum(w x coverage) / sum(w) over "
        "workloads with allowed traffic, with w = the workload's share of the direction's allowed "
        "connections, capped at 10%."
    ),
}


# --------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Traffic:
    """One direction of a workload, namespace or the whole cluster: record, connection, byte sums."""

    allowed_records: int = 0
    explicit_records: int = 0
    profile_records: int = 0
    unknown_records: int = 0
    allowed_connections: int = 0
    explicit_connections: int = 0
    profile_connections: int = 0
    unknown_connections: int = 0
    allowed_bytes: int = 0
    explicit_bytes: int = 0
    profile_bytes: int = 0
    unknown_bytes: int = 0
    denied_records: int = 0
    denied_connections: int = 0
    denied_bytes: int = 0
    end_of_tier_denied_connections: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def connection_coverage(self) -> float | None:
        """Explicit connections / allowed connections; None when nothing was allowed."""
        return _ratio(self.explicit_connections, self.allowed_connections)

    @property
    def byte_coverage(self) -> float | None:
        """Explicit bytes / allowed bytes; None when no allowed bytes."""
        return _ratio(self.explicit_bytes, self.allowed_bytes)

    @property
    def status(self) -> str:
        """protected, exposed, unattributed or 'no traffic' (see DEFINITIONS)."""
        if self.profile_records > 0:
            return EXPOSED
        if self.unknown_records > 0:
            return UNATTRIBUTED
        if self.allowed_records > 0 or self.denied_records > 0:
            return PROTECTED
        return NO_TRAFFIC

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["connection_coverage"] = _round(self.connection_coverage)
        out["byte_coverage"] = _round(self.byte_coverage)
        out["status"] = self.status
        return out


@dataclass(frozen=True)
class WorkloadCoverage:
    """Coverage of one workload (or host endpoint) in both directions."""

    namespace: str
    name: str
    endpoint_type: str
    ingress: Traffic
    egress: Traffic


@dataclass(frozen=True)
class PolicySelection:
    """From --policies and --inventory: inventory workloads that policies select / deny by default."""

    workloads: int
    ingress_selected: int
    egress_selected: int
    ingress_default_deny: int = 0
    egress_default_deny: int = 0

    @property
    def ingress_share(self) -> float | None:
        return _ratio(self.ingress_selected, self.workloads)

    @property
    def egress_share(self) -> float | None:
        return _ratio(self.egress_selected, self.workloads)

    @property
    def ingress_default_deny_share(self) -> float | None:
        return _ratio(self.ingress_default_deny, self.workloads)

    @property
    def egress_default_deny_share(self) -> float | None:
        return _ratio(self.egress_default_deny, self.workloads)


@dataclass(frozen=True)
class NamespaceCoverage:
    """Coverage of one namespace: its workloads summed, counts of protected/exposed, default deny."""

    namespace: str
    workloads: int
    ingress: Traffic
    egress: Traffic
    ingress_protected: int
    ingress_exposed: int
    egress_protected: int
    egress_exposed: int
    default_deny_ingress: str
    default_deny_egress: str
    policy_selection: PolicySelection | None = None


@dataclass(frozen=True)
class Score:
    """The headline score and its two halves (all 0-100, None when there was no allowed traffic)."""

    value: float | None
    ingress: float | None
    egress: float | None
    weight_cap: float = SCORE_WEIGHT_CAP


@dataclass(frozen=True)
class DeniedFlow:
    source: str
    dest: str
    source_type: str
    dest_type: str
    proto: str
    dest_port: int | None
    reporter: str
    policy: str
    end_of_tier: bool
    records: int
    connections: int
    bytes: int


@dataclass(frozen=True)
class DenyingPolicy:
    policy: str
    tier: str | None
    decided_by: str | None
    end_of_tier: bool
    records: int
    connections: int
    bytes: int
    workloads: int


@dataclass(frozen=True)
class UnexpectedExample:
    source: str
    dest: str
    proto: str
    dest_port: int | None
    side: str
    allowed_by: str
    pending_by: str | None
    records: int
    connections: int
    bytes: int


@dataclass(frozen=True)
class UnexpectedCategory:
    """One category of the ``unexpected-allowed`` query, summed, with its largest flows."""

    category: str
    flows: int
    records: int
    connections: int
    bytes: int
    examples: tuple[UnexpectedExample, ...]


@dataclass(frozen=True)
class Edge:
    source: str
    dest: str
    cross_namespace: bool
    allowed_connections: int
    explicit_connections: int
    profile_connections: int
    denied_connections: int
    bytes: int


@dataclass(frozen=True)
class InternetExposure:
    direction: str
    namespace: str
    name: str
    endpoint_type: str
    allowed_connections: int
    explicit_connections: int
    profile_connections: int
    denied_connections: int
    bytes: int
    ports: tuple[str, ...]
    destinations: int


@dataclass(frozen=True)
class State:
    """What the next run compares against: sorted talkers, external destinations, denied flows."""

    talkers: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coverage:
    """Every coverage figure of one window."""

    records: int
    workloads: tuple[WorkloadCoverage, ...]
    hosts: tuple[WorkloadCoverage, ...]
    namespaces: tuple[NamespaceCoverage, ...]
    cluster_ingress: Traffic
    cluster_egress: Traffic
    score: Score
    denied_flows: tuple[DeniedFlow, ...]
    denying_policies: tuple[DenyingPolicy, ...]
    unexpected: tuple[UnexpectedCategory, ...]
    edges: tuple[Edge, ...]
    internet: tuple[InternetExposure, ...]
    state: State = field(default_factory=State)
    policy_notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------- helpers


def _ratio(num: int, den: int) -> float | None:
    return None if den <= 0 else num / den


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def weighted_coverage(
    items: Iterable[tuple[int, float | None]], cap: float = SCORE_WEIGHT_CAP
) -> float | None:
    """Capped, traffic-weighted mean of coverages: items are (allowed connections, coverage).

    Each item weighs its share of the total allowed connections, capped at ``cap``; items without
    allowed connections are left out. None when nothing was allowed.
    """
    kept = [(n, c) for n, c in items if n > 0 and c is not None]
    total = sum(n for n, _ in kept)
    if total == 0:
        return None
    weights = [(min(n / total, cap), c) for n, c in kept]
    return sum(w * c for w, c in weights) / sum(w for w, _ in weights)


def compute_score(workloads: Sequence[WorkloadCoverage], cap: float = SCORE_WEIGHT_CAP) -> Score:
    """The headline score (see ``DEFINITIONS['score']``)."""
    ing = weighted_coverage(
        ((w.ingress.allowed_connections, w.ingress.connection_coverage) for w in workloads), cap
    )
    egr = weighted_coverage(
        ((w.egress.allowed_connections, w.egress.connection_coverage) for w in workloads), cap
    )
    halves = [h for h in (ing, egr) if h is not None]
    value = None if not halves else 100 * sum(halves) / len(halves)
    return Score(
        value=_round(value, 1),
        ingress=_round(None if ing is None else 100 * ing, 1),
        egress=_round(None if egr is None else 100 * egr, 1),
        weight_cap=cap,
    )


def default_deny_status(traffic: Traffic) -> str:
    """The flows-based default-deny verdict of one namespace direction (see DEFINITIONS)."""
    if traffic.allowed_records == 0 and traffic.denied_records == 0:
        return NO_TRAFFIC
    if traffic.denied_records > 0:
        return "partial" if traffic.profile_records > 0 else "enforced"
    if traffic.profile_records > 0:
        return "absent"
    if traffic.unknown_records > 0:
        return "unknown"
    return "implied"
