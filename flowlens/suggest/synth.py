"""Synthesis: observed edges -> per-workload allow rules (the flavor-independent :class:`Plan`).

For every target namespace, each workload gets ingress rules from the peers observed reaching it
and egress rules to the peers it was observed reaching, with ports merged per peer and peers that
share the same ports merged into one rule. DNS to kube-dns is left to the namespace's allow-dns
policy. Before that, the screening (:mod:`.screen`) holds back what looks like a scan or a probe,
and edges are left out on purpose: observed denied (unless ``--include-denied``), fewer than
``--min-connections``, seen on fewer than ``--min-days`` days. Every rule carries its evidence,
with the intervals and days it was seen in (:mod:`.activity`). The renderer (``render/``) turns
the plan into Kubernetes or Calico manifests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flowlens.policy.inventory import Inventory
from flowlens.suggest.activity import Activity, Seen
from flowlens.suggest.cidr import ANY_V4, RFC1918, aggregate, host_network
from flowlens.suggest.edges import Edge, EdgeStats, External, Port, edge_of, is_cluster_dns, logged_text
from flowlens.suggest.model import (
    FLAVORS,
    Evidence,
    LeftOut,
    NamespacePlan,
    Peer,
    Plan,
    Rule,
    SuggestOptions,
    WorkloadPolicy,
)
from flowlens.suggest.observed import Labels, Report, Workload, intersect_labels, is_stable_label
from flowlens.suggest.screen import PORT_PROTOCOLS, HeldBack, Screening, screen

#: Names of the per-namespace policies; a workload with such a name gets a suffix.
RESERVED_NAMES = frozenset({"default-deny", "allow-dns"})


def left_out_reason(stats: EdgeStats, seen: Seen, options: SuggestOptions) -> str | None:
    """Why an edge is left out on purpose (too rare, too few days), or None."""
    if stats.connections < options.min_connections:
        return f"fewer than {options.min_connections} connections"
    if seen.days < options.min_days:
        return f"seen on {seen.days} day{'s' if seen.days != 1 else ''}, fewer than --min-days {options.min_days}"
    return None


@dataclass(frozen=True)
class EdgeInfo:
    """The edge a report belongs to (at the chosen label granularity), and its fate."""

    edge: Edge
    verdict: str
    connections: int
    left_out: str | None  # why it is left out on purpose (--min-connections, --min-days)
    held_back: HeldBack | None  # the held-back group it is in (not admitted)


def edge_fates(reports: Sequence[Report], options: SuggestOptions, screening: Screening) -> list[EdgeInfo]:
    """One :class:`EdgeInfo` per report, in the same order (``screening`` of the same reports)."""
    out = []
    for rep in reports:
        edge = edge_of(rep, screening.workloads)
        stats = screening.edges[edge]
        seen = screening.activity.seen(edge)
        out.append(
            EdgeInfo(
                edge,
                stats.verdict,
                stats.connections,
                left_out_reason(stats, seen, options),
                screening.held(edge),
            )
        )
    return out


# --- peers ------------------------------------------------------------------------------------


def _broad_net(name: str) -> Peer:
    if name == "pvt":
        return Peer(
            "nets",
            nets=RFC1918,
            broad="private addresses were not logged: this rule admits all of RFC 1918 (pod IPs included)",
        )
    return Peer(
        "nets",
        nets=(ANY_V4,),
        except_nets=RFC1918,
        broad="public addresses were not logged: this rule admits every IPv4 address outside RFC 1918",
    )


def _external_peer(side: External, flavor: str, entity_labels: Labels | None) -> Peer:
    if side.type in ("hep", "ns") and flavor == "calico" and entity_labels:
        return Peer("entity", namespace=side.namespace if side.type == "ns" else None, selector=entity_labels)
    if side.ip:
        try:
            return Peer("nets", nets=(str(host_network(side.ip)),))
        except ValueError:
            pass
    if side.type == "net" and side.name_aggr in ("pvt", "pub"):
        return _broad_net(side.name_aggr)
    if side.type == "hep":
        return Peer(
            "nets",
            nets=RFC1918,
            broad=f"host {side.name_aggr}: no address or labels logged; admits all of RFC 1918",
        )
    return Peer(
        "nets",
        nets=(ANY_V4,),
        broad=f"{side.type} {side.name_aggr}: no address or labels logged; admits every IPv4 address",
    )


def _workload_peer(w: Workload, service_accounts: Mapping[Workload, str]) -> Peer:
    broad = None
    if w.how == "unlabelled":
        broad = f"pods {', '.join(w.members)} have no usable labels: admits every pod in {w.namespace}"
    return Peer(
        "workload",
        namespace=w.namespace,
        selector=w.selector,
        broad=broad,
        service_account=service_accounts.get(w),
    )


def _service_accounts(workloads: Iterable[Workload], inventory: Inventory | None) -> dict[Workload, str]:
    """Workloads whose pods all run as one service account, in the inventory: the pods its
    selector selects there, and the pods of each of its logged names (``frontend-7d4f8c9b5-*``),
    each of which the inventory must know. A name the inventory does not know (the pods of a
    rollout that ended before the inventory was taken) could run as another account: such a
    workload is left to its labels."""
    if inventory is None:
        return {}
    out = {}
    for w in workloads:
        if not w.selector:
            continue
        want = dict(w.selector)
        accounts = {
            p.service_account
            for p in inventory.pods
            if p.namespace == w.namespace and all(p.labels.get(k) == v for k, v in want.items())
        }
        for member in w.members:
            logged = inventory.logged_pods(w.namespace, member)
            if not logged:
                accounts.add("")  # not known: no account can be named for it
            accounts.update(p.service_account for p in logged)
        if len(accounts) == 1 and "" not in accounts:
            out[w] = accounts.pop()
    return out


# --- rules ------------------------------------------------------------------------------------


def _port_key(ports: frozenset[Port]) -> tuple[Port, ...]:
    return tuple(sorted(ports, key=lambda p: p.sort_key))


def _normalise_ports(ports: Iterable[Port], flavor: str) -> tuple[frozenset[Port], tuple[str, ...]]:
    """Drop ports a wider entry covers; in the Kubernetes flavor, protocols without ports make
    the rule port-less (NetworkPolicy only knows TCP, UDP and SCTP)."""
    ports = set(ports)
    notes: list[str] = []
    if flavor == "kubernetes":
        odd = sorted({p.proto for p in ports if p.proto not in PORT_PROTOCOLS})
        if odd:
            notes.append(
                f"{', '.join(odd)} cannot be expressed in a Kubernetes NetworkPolicy: this rule admits "
                "every port and protocol to/from its peers"
            )
            return frozenset(), tuple(notes)
    whole = {p.proto for p in ports if p.port is None}
    if any(p.proto in PORT_PROTOCOLS for p in ports if p.port is None):
        notes.append(
            "destination ports were not logged (aggregation level 3): admits every port of "
            + ", ".join(sorted(p for p in whole if p in PORT_PROTOCOLS))
        )
    return frozenset(p for p in ports if p.port is None or p.proto not in whole), tuple(notes)


def _build_rules(
    direction: str,
    per_peer: Mapping[Peer, tuple[set[Port], list[Evidence]]],
    options: SuggestOptions,
) -> tuple[Rule, ...]:
    # Group peers that were seen on the same ports: authors write one rule with several peers.
    groups: dict[tuple[tuple[Port, ...], tuple[str, ...]], list[Peer]] = defaultdict(list)
    for peer, (seen_ports, _ev) in per_peer.items():
        norm, notes = _normalise_ports(seen_ports, options.flavor)
        groups[(_port_key(norm), notes)].append(peer)
    rules: list[Rule] = []
    for (ports, notes), peers in groups.items():
        exact_nets = [p for p in peers if p.kind == "nets" and p.broad is None]
        others = [p for p in peers if not (p.kind == "nets" and p.broad is None)]
        merged: list[Peer] = list(others)
        if exact_nets:
            nets = [ipaddress.ip_network(n) for p in exact_nets for n in p.nets]
            blocks = aggregate(nets, options.max_extra_addresses)
            merged.extend(Peer("nets", nets=(str(b),)) for b in blocks)
        evidence = sorted(
            (e for p in peers for e in per_peer[p][1]),
            key=lambda e: (e.peer, e.port, e.first_seen),
        )
        rules.append(
            Rule(direction, tuple(sorted(set(merged), key=_peer_order)), ports, tuple(evidence), notes)
        )
    rules.sort(key=lambda r: (tuple(_peer_order(p) for p in r.peers), tuple(p.sort_key for p in r.ports)))
    return tuple(rules)


def _peer_order(p: Peer) -> tuple[object, ...]:
    """A total order of peers: kind, namespace, selector, first network, then every other field
    (two peers of one rule never tie, so their order does not depend on the order they were
    found in)."""
    rank = {"workload": 0, "entity": 1, "nets": 2}[p.kind]
    netkey: tuple[int, int, int]
    if p.nets:
        n = ipaddress.ip_network(p.nets[0], strict=False)
        netkey = (n.version, int(n.network_address), n.prefixlen)
    else:
        netkey = (0, 0, 0)
    return (
        rank,
        p.namespace or "",
        repr(p.selector),
        netkey,
        p.nets,
        p.except_nets,
        p.broad or "",
        p.service_account or "",
    )


def _policy_names(workloads: Iterable[Workload]) -> dict[Workload, str]:
    def base(w: Workload) -> str:
        if not w.selector:
            return "all-pods"
        raw = "-".join(v for _, v in w.selector).lower()
        name = re.sub(r"[^a-z0-9.-]+", "-", raw).strip("-.") or "workload"
        return name[:200]

    names: dict[Workload, str] = {}
    by_base: dict[str, list[Workload]] = defaultdict(list)
    for w in sorted(workloads):
        by_base[base(w)].append(w)
    for b, ws in by_base.items():
        if len(ws) == 1 and b not in RESERVED_NAMES:
            names[ws[0]] = b
            continue
        for w in ws:
            digest = hashlib.sha256(repr(w.selector).encode()).hexdigest()[:6]
            names[w] = f"{b}-{digest}"
    return names


def _evidence(
    direction: str, other: External | Workload, edge: Edge, stats: EdgeStats, seen: Seen, admitted: str | None
) -> Evidence:
    return Evidence(
        peer=("to " if direction == "egress" else "from ") + logged_text(other),
        port=edge.port.text,
        connections=stats.connections,
        bytes=stats.bytes,
        first_seen=stats.first_seen,
        last_seen=stats.last_seen,
        reporters=stats.reporters,
        remediation=stats.verdict == "deny",
        intervals=seen.intervals,
        days=seen.days,
        admitted=admitted,
    )


def synthesise(
    reports: Sequence[Report],
    options: SuggestOptions,
    inventory: Inventory | None = None,
    *,
    activity: Activity | None = None,
    screening: Screening | None = None,
) -> Plan:
    """The suggestion for ``options.namespaces`` from the observed ``reports``.

    ``activity``: the intervals and days of each edge, counted in the store
    (:func:`~.activity.load_activity`); estimated from ``reports`` when None. ``screening``: the
    held-back edges (:func:`~.screen.screen` with ``options.screen``), computed when None.
    With an ``inventory``, the screening knows which ports the pods declare, and in the Calico
    flavor pod peers whose pods all run as one service account are also matched by it
    (``serviceAccounts.names``, ANDed with the selector).
    """
    if options.flavor not in FLAVORS:
        raise ValueError(f"unknown flavor {options.flavor!r}")
    if screening is None:
        screening = screen(
            reports,
            options.label_keys,
            options.screen,
            activity=activity,
            inventory=inventory,
            include_denied=options.include_denied,
        )
    workload_of = screening.workloads
    # Common labels of each workload (over every record of every pod group it holds).
    label_sets: dict[Workload, list[Labels | None]] = defaultdict(list)
    entity_sets: dict[tuple[str, str | None, str], list[Labels | None]] = defaultdict(list)
    for rep in reports:
        for ep in (rep.source, rep.dest):
            if ep.type == "wep" and ep.namespace is not None:
                label_sets[workload_of[(ep.namespace, ep.name_aggr)]].append(ep.labels)
            elif ep.type in ("hep", "ns"):
                entity_sets[(ep.type, ep.namespace, ep.name_aggr)].append(ep.labels)
    all_labels = {w: intersect_labels(s) or () for w, s in label_sets.items()}
    entity_labels = {
        k: tuple((a, b) for a, b in (intersect_labels(s) or ()) if is_stable_label(a))
        for k, s in entity_sets.items()
    }
    targets = set(options.namespaces)
    service_accounts = (
        _service_accounts(set(workload_of.values()), inventory) if options.flavor == "calico" else {}
    )
    # Each target namespace's edges (a workload of it on one side), in edge order: a namespace's
    # rules cost its own edges, not every edge of the window.
    edges_of: dict[str, list[tuple[Edge, EdgeStats]]] = defaultdict(list)
    for edge, stats in sorted(screening.edges.items(), key=lambda kv: kv[0].sort_key):
        sides = {side.namespace for side in (edge.source, edge.dest) if isinstance(side, Workload)}
        for ns in sides & targets:
            edges_of[ns].append((edge, stats))

    plans = []
    for ns in sorted(targets):
        rules_in: dict[Workload, dict[Peer, tuple[set[Port], list[Evidence]]]] = defaultdict(dict)
        rules_out: dict[Workload, dict[Peer, tuple[set[Port], list[Evidence]]]] = defaultdict(dict)
        subjects: set[Workload] = {w for w in label_sets if w.namespace == ns}
        dns: list[Evidence] = []
        left_out: list[LeftOut] = []
        held: dict[int, HeldBack] = {}
        for edge, stats in edges_of.get(ns, ()):
            seen = screening.activity.seen(edge)
            group = screening.group_of(edge)
            for direction, subject, other in (
                ("egress", edge.source, edge.dest),
                ("ingress", edge.dest, edge.source),
            ):
                if not (isinstance(subject, Workload) and subject.namespace == ns):
                    continue
                ev = _evidence(direction, other, edge, stats, seen, group.why if group is not None else None)
                if ev.remediation and not options.include_denied:
                    left_out.append(
                        LeftOut(ns, direction, subject.display, ev.peer, ev.port, stats.connections, "denied")
                    )
                    continue
                if group is not None:
                    held[id(group)] = group
                    if not group.admitted:
                        continue
                reason = left_out_reason(stats, seen, options)
                if reason is not None:
                    left_out.append(
                        LeftOut(ns, direction, subject.display, ev.peer, ev.port, stats.connections, reason)
                    )
                    continue
                if direction == "egress" and is_cluster_dns(other, edge.port, all_labels):
                    # allow-dns covers every pod: say which workload each line is about.
                    dns.append(dataclasses.replace(ev, peer=f"{subject.display} {ev.peer}"))
                    continue
                if isinstance(other, Workload):
                    peer = _workload_peer(other, service_accounts)
                else:
                    peer = _external_peer(
                        other,
                        options.flavor,
                        entity_labels.get((other.type, other.namespace, other.name_aggr)),
                    )
                table = rules_out if direction == "egress" else rules_in
                ports, evs = table[subject].setdefault(peer, (set(), []))
                ports.add(edge.port)
                evs.append(ev)
        names = _policy_names(subjects)
        policies = []
        notes = []
        for w in sorted(subjects):
            if w not in rules_in and w not in rules_out:
                continue  # nothing observed to allow: the namespace's default-deny is its policy
            if w.how == "fallback":
                notes.append(
                    f"pods {', '.join(w.members)} carry none of the label keys "
                    f"({', '.join(options.label_keys)}): selected by their common labels {w.display}"
                )
            elif w.how == "unlabelled":
                notes.append(
                    f"pods {', '.join(w.members)} have no usable labels: their policy selects every pod "
                    f"in {ns}"
                )
            policies.append(
                WorkloadPolicy(
                    workload=w,
                    name=names[w],
                    labels=all_labels.get(w, ()),
                    ingress=_build_rules("ingress", rules_in.get(w, {}), options),
                    egress=_build_rules("egress", rules_out.get(w, {}), options),
                )
            )
        plans.append(
            NamespacePlan(
                namespace=ns,
                policies=tuple(sorted(policies, key=lambda p: p.name)),
                dns_evidence=tuple(sorted(dns, key=lambda e: (e.peer, e.port))),
                left_out=tuple(sorted(left_out, key=lambda x: (x.direction, x.workload, x.peer, x.port))),
                notes=tuple(notes),
                held_back=tuple(sorted(held.values(), key=lambda g: g.sort_key)),
            )
        )
    known = tuple(sorted((w, all_labels.get(w, ())) for w in set(workload_of.values())))
    plan_notes = tuple(f"--admit {text!r} matched no held-back edge" for text in screening.unmatched_admits)
    return Plan(options, tuple(plans), known, plan_notes, screening)
