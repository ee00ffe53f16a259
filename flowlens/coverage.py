"""Segmentation coverage metrics: how much of the observed traffic explicit policy rules decided.

Owns the definitions (see :data:`DEFINITIONS`, printed in every report) and their computation from
the ``flows`` view of an engine: one scan (the ``coverage-facts`` query) groups the window's
records into a small facts table, and the other ``coverage-*`` queries read that table.

Direction follows the reporter: ingress = records reported by the destination (``reporter =
'dst'``, decided by the destination's ingress policy), egress = records reported by the source
(``reporter = 'src'``). A workload is ``namespace/name_aggr``. Connections are
``num_flows_started`` (connections that began in the window), bytes are ``bytes_in + bytes_out``
of the reporting endpoint. Unexpectedly allowed traffic uses the categories of the ``unexpected-allowed`` query, computed
from the same facts (``coverage-unexpected``) so that a report reads the flows once.
With a policy set and an inventory, :func:`policy_selection` gives the share of workloads that
enforced policies select, per namespace and direction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from flowlens.schema import SHORT_KINDS

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


class _EngineLike(Protocol):
    def run(self, name: str, params: Mapping[str, Any] | None = None) -> pa.Table: ...


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


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _endpoint(namespace: str, name: str) -> str:
    return name if namespace in ("-", "") else f"{namespace}/{name}"


def _policy_label(tier: str | None, decided_by: str | None) -> str:
    """'knp:db/allow-api' in tier 'default' -> 'KubernetesNetworkPolicy db/allow-api (tier default)'."""
    if not decided_by:
        return "(policies not logged)"
    short, sep, rest = decided_by.partition(":")
    kind = SHORT_KINDS.get(short) if sep else None
    if kind is None:
        return f"{decided_by} (tier {tier})"
    if kind == "Profile":
        return f"profile {rest}"
    return f"{kind} {rest} (tier {tier})"


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


# ------------------------------------------------------------------------------------------ compute


def _traffic(row: Mapping[str, Any]) -> Traffic:
    return Traffic(**{f.name: _int(row.get(f.name)) for f in fields(Traffic)})


def _workloads(rows: list[dict[str, Any]]) -> tuple[list[WorkloadCoverage], list[WorkloadCoverage]]:
    by_key: dict[tuple[str, str, str], dict[str, Traffic]] = {}
    for row in rows:
        key = (row["endpoint_type"], row["namespace"], row["name"])
        by_key.setdefault(key, {})[row["direction"]] = _traffic(row)
    pods: list[WorkloadCoverage] = []
    hosts: list[WorkloadCoverage] = []
    for (etype, ns, name), sides in sorted(by_key.items()):
        w = WorkloadCoverage(ns, name, etype, sides.get("ingress", Traffic()), sides.get("egress", Traffic()))
        (hosts if etype == "hep" else pods).append(w)
    return pods, hosts


def _namespaces(
    workloads: Sequence[WorkloadCoverage], selection: Mapping[str, PolicySelection] | None
) -> list[NamespaceCoverage]:
    by_ns: dict[str, list[WorkloadCoverage]] = {}
    for w in workloads:
        by_ns.setdefault(w.namespace, []).append(w)
    for ns in selection or {}:
        by_ns.setdefault(ns, [])
    out = []
    for ns, items in sorted(by_ns.items()):
        ingress = sum((w.ingress for w in items), Traffic())
        egress = sum((w.egress for w in items), Traffic())
        out.append(
            NamespaceCoverage(
                namespace=ns,
                workloads=len(items),
                ingress=ingress,
                egress=egress,
                ingress_protected=sum(w.ingress.status == PROTECTED for w in items),
                ingress_exposed=sum(w.ingress.status == EXPOSED for w in items),
                egress_protected=sum(w.egress.status == PROTECTED for w in items),
                egress_exposed=sum(w.egress.status == EXPOSED for w in items),
                default_deny_ingress=default_deny_status(ingress),
                default_deny_egress=default_deny_status(egress),
                policy_selection=(selection or {}).get(ns),
            )
        )
    return out


def compute(
    engine: _EngineLike,
    *,
    top: int = 20,
    examples: int = 5,
    selection: Mapping[str, PolicySelection] | None = None,
    policy_notes: Sequence[str] = (),
) -> Coverage:
    """Compute every coverage figure over the engine's ``flows`` view (already limited to the window).

    Registers the ``coverage_facts`` table on the engine's connection for the other queries.
    """
    facts = engine.run("coverage-facts", {})
    con = getattr(engine, "con", None)
    if con is None:
        raise TypeError("the engine has no DuckDB connection (.con)")
    con.register("coverage_facts", facts)
    try:
        return _compute(engine, facts, top, examples, selection, tuple(policy_notes))
    finally:
        con.unregister("coverage_facts")


def _unexpected(rows: list[dict[str, Any]], examples: int) -> tuple[UnexpectedCategory, ...]:
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_cat.setdefault(row["category"], []).append(row)
    out = []
    for category, items in sorted(by_cat.items()):
        # The query ranks rows by connections, then bytes, records and key columns: keep its order.
        out.append(
            UnexpectedCategory(
                category=category,
                flows=len(items),
                records=sum(_int(r["records"]) for r in items),
                connections=sum(_int(r["connections"]) for r in items),
                bytes=sum(_int(r["bytes"]) for r in items),
                examples=tuple(
                    UnexpectedExample(
                        source=r["source"],
                        dest=r["dest"],
                        proto=r["proto"],
                        dest_port=r["dest_port"],
                        side=r["side"],
                        allowed_by=r["allowed_by"],
                        pending_by=r["pending_by"] or None,
                        records=_int(r["records"]),
                        connections=_int(r["connections"]),
                        bytes=_int(r["bytes"]),
                    )
                    for r in items[:examples]
                ),
            )
        )
    return tuple(out)


def _compute(
    engine: _EngineLike,
    facts: pa.Table,
    top: int,
    examples: int,
    selection: Mapping[str, PolicySelection] | None,
    policy_notes: tuple[str, ...],
) -> Coverage:
    records = int(pc.sum(facts["records"]).as_py() or 0) if facts.num_rows else 0
    pods, hosts = _workloads(engine.run("coverage-workloads", {}).to_pylist())
    namespaces = _namespaces(pods, selection)
    denied = tuple(
        DeniedFlow(
            source=_endpoint(r["source_namespace"], r["source_name_aggr"]),
            dest=_endpoint(r["dest_namespace"], r["dest_name_aggr"]),
            source_type=r["source_type"],
            dest_type=r["dest_type"],
            proto=r["proto"],
            dest_port=r["dest_port"],
            reporter=r["reporter"],
            policy=_policy_label(r["policy_tier"], r["decided_by"]),
            end_of_tier=bool(r["end_of_tier"]),
            records=_int(r["records"]),
            connections=_int(r["connections"]),
            bytes=_int(r["bytes"]),
        )
        for r in engine.run("coverage-denied-flows", {"top": top}).to_pylist()
    )
    denying = tuple(
        DenyingPolicy(
            policy=_policy_label(r["tier"], r["decided_by"]),
            tier=r["tier"],
            decided_by=r["decided_by"],
            end_of_tier=bool(r["end_of_tier"]),
            records=_int(r["records"]),
            connections=_int(r["connections"]),
            bytes=_int(r["bytes"]),
            workloads=_int(r["workloads"]),
        )
        for r in engine.run("coverage-denying-policies", {"top": top}).to_pylist()
    )
    unexpected = _unexpected(engine.run("coverage-unexpected", {}).to_pylist(), examples)
    edges = tuple(
        Edge(
            source=r["source_node"],
            dest=r["dest_node"],
            cross_namespace=bool(r["cross_namespace"]),
            allowed_connections=_int(r["allowed_connections"]),
            explicit_connections=_int(r["explicit_connections"]),
            profile_connections=_int(r["profile_connections"]),
            denied_connections=_int(r["denied_connections"]),
            bytes=_int(r["bytes"]),
        )
        for r in engine.run("coverage-edges", {}).to_pylist()
    )
    internet = tuple(
        InternetExposure(
            direction=r["direction"],
            namespace=r["namespace"],
            name=r["name"],
            endpoint_type=r["endpoint_type"],
            allowed_connections=_int(r["allowed_connections"]),
            explicit_connections=_int(r["explicit_connections"]),
            profile_connections=_int(r["profile_connections"]),
            denied_connections=_int(r["denied_connections"]),
            bytes=_int(r["bytes"]),
            ports=tuple(r["ports"] or ()),
            destinations=_int(r["destinations"]),
        )
        for r in engine.run("coverage-internet", {}).to_pylist()
    )
    state_rows = engine.run("coverage-state", {}).to_pylist()
    state = State(
        talkers=tuple(sorted(r["item"] for r in state_rows if r["kind"] == "talker")),
        external=tuple(sorted(r["item"] for r in state_rows if r["kind"] == "external")),
        denied=tuple(sorted(r["item"] for r in state_rows if r["kind"] == "denied")),
    )
    return Coverage(
        records=records,
        workloads=tuple(pods),
        hosts=tuple(hosts),
        namespaces=tuple(namespaces),
        cluster_ingress=sum((w.ingress for w in pods), Traffic()),
        cluster_egress=sum((w.egress for w in pods), Traffic()),
        score=compute_score(pods),
        denied_flows=denied,
        denying_policies=denying,
        unexpected=unexpected,
        edges=edges,
        internet=internet,
        state=state,
        policy_notes=policy_notes,
    )


# ------------------------------------------------------------------------------- policy selection

#: The peer of the default-deny probes: an address from TEST-NET-1 (RFC 5737), public to Calico,
#: that no real rule names, on a port no service uses.
PROBE_IP = "192.0.2.1"
PROBE_PORT = 1


def policy_selection(policy_set: Any, inventory: Any) -> dict[str, PolicySelection]:
    """Per namespace: inventory workloads (namespace/name_aggr) that policies select, and that deny by default.

    For every running pod the policy engine evaluates two probes: ingress from an unknown
    internet address and egress to it, TCP port 1. A pod is *selected* in a direction when the
    enforced trace holds a hit of a policy (any hit but the profile): at least one policy applies,
    as Calico Enterprise's compliance reports counted "protected". It is *default-deny* when the
    probe is denied: whatever no rule allows is dropped (a tier that passes everything on, as a
    baseline tier often does, selects the pod but does not deny by default). A workload counts
    when all of its pods do. Host-network and finished pods are not Calico workloads.
    """
    from flowlens.policy import Endpoint, Evaluator, FlowKey

    evaluator = Evaluator(policy_set, inventory)
    probe = Endpoint(kind="net", ip=PROBE_IP)
    pods: dict[tuple[str, str], list[tuple[bool, bool, bool, bool]]] = {}
    for pod in inventory.pods:
        if pod.host_network or pod.phase in ("Succeeded", "Failed"):
            continue
        ep = inventory.endpoint(pod)
        ingress = evaluator.evaluate(FlowKey("dst", probe, ep, "tcp", PROBE_PORT))
        egress = evaluator.evaluate(FlowKey("src", ep, probe, "tcp", PROBE_PORT))
        pods.setdefault((pod.namespace, pod.name_aggr), []).append(
            (
                any(h.kind != "Profile" for h in ingress.enforced),
                any(h.kind != "Profile" for h in egress.enforced),
                ingress.action == "deny",
                egress.action == "deny",
            )
        )
    counts: dict[str, list[int]] = {}
    for (ns, _), flags in sorted(pods.items()):
        c = counts.setdefault(ns, [0, 0, 0, 0, 0])
        c[0] += 1
        for k in range(4):
            c[k + 1] += all(f[k] for f in flags)
    return {ns: PolicySelection(c[0], c[1], c[2], c[3], c[4]) for ns, c in sorted(counts.items())}
