"""Computing the coverage of one window: from the flows through an engine, and from the policies.

:func:`compute` runs one scan of the window's records (the ``coverage-facts`` query, over the
``flow_summary`` view) into a small facts table, registers it on the engine as
``coverage_facts``, and reads every other figure from it with the ``coverage-*`` helper queries,
so a report reads the flows once. Unexpectedly allowed traffic uses the categories of the
``unexpected-allowed`` query, computed from the same facts (``coverage-unexpected``).
With a policy set and an inventory, :func:`policy_selection` gives the share of workloads that
enforced policies select, and deny by default, per namespace and direction.
The metrics themselves, and their definitions, are in :mod:`flowlens.report.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowlens.engine import Engine
from flowlens.report.metrics import (
    EXPOSED,
    PROTECTED,
    Coverage,
    DeniedFlow,
    DenyingPolicy,
    Edge,
    InternetExposure,
    NamespaceCoverage,
    PolicySelection,
    State,
    Traffic,
    UnexpectedCategory,
    UnexpectedExample,
    WorkloadCoverage,
    compute_score,
    default_deny_status,
)
from flowlens.schema import SHORT_KINDS


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


#: Counters of one row of the coverage-* queries, by the name a figure and the query share.
_TOTALS = ("records", "connections", "bytes")
_CONNECTIONS = (
    "allowed_connections",
    "explicit_connections",
    "profile_connections",
    "denied_connections",
    "bytes",
)


def _ints(row: Mapping[str, Any], names: Sequence[str]) -> dict[str, int]:
    """The counters ``names`` of ``row`` as integers (a NULL sum counts 0)."""
    return {name: _int(row[name]) for name in names}


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
    engine: Engine,
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
    with engine.temporary_table("coverage_facts", facts):
        return _compute(engine, facts, top, examples, selection, tuple(policy_notes))


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
                        **_ints(r, _TOTALS),
                    )
                    for r in items[:examples]
                ),
            )
        )
    return tuple(out)


def _compute(
    engine: Engine,
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
            **_ints(r, _TOTALS),
        )
        for r in engine.run("coverage-denied-flows", {"top": top}).to_pylist()
    )
    denying = tuple(
        DenyingPolicy(
            policy=_policy_label(r["tier"], r["decided_by"]),
            tier=r["tier"],
            decided_by=r["decided_by"],
            end_of_tier=bool(r["end_of_tier"]),
            **_ints(r, (*_TOTALS, "workloads")),
        )
        for r in engine.run("coverage-denying-policies", {"top": top}).to_pylist()
    )
    unexpected = _unexpected(engine.run("coverage-unexpected", {}).to_pylist(), examples)
    edges = tuple(
        Edge(
            source=r["source_node"],
            dest=r["dest_node"],
            cross_namespace=bool(r["cross_namespace"]),
            **_ints(r, _CONNECTIONS),
        )
        for r in engine.run("coverage-edges", {}).to_pylist()
    )
    internet = tuple(
        InternetExposure(
            direction=r["direction"],
            namespace=r["namespace"],
            name=r["name"],
            endpoint_type=r["endpoint_type"],
            ports=tuple(r["ports"] or ()),
            **_ints(r, (*_CONNECTIONS, "destinations")),
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
