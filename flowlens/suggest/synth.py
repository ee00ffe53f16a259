"""Synthesis: observed edges -> per-workload allow rules (flavor-independent model).

For every target namespace, each workload gets ingress rules from the peers observed reaching it
and egress rules to the peers it was observed reaching, with ports merged per peer and peers that
share the same ports merged into one rule. DNS to kube-dns is left to the namespace's allow-dns
policy. The renderer (``render/``) turns this model into Kubernetes or Calico manifests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flowlens.policy.inventory import Inventory
from flowlens.suggest.cidr import ANY_V4, RFC1918, aggregate, host_network
from flowlens.suggest.observed import (
    DEFAULT_LABEL_KEYS,
    Labels,
    LoggedEndpoint,
    Report,
    Workload,
    build_workloads,
    intersect_labels,
    is_stable_label,
)

FLAVORS = ("kubernetes", "calico")
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
DNS_PORT = 53
DNS_NAMESPACE = "kube-system"
DNS_LABELS: Labels = (("k8s-app", "kube-dns"),)
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "calico-system", "calico-apiserver")
SYSTEM_PREFIXES = ("tigera-",)
#: Names of the per-namespace policies; a workload with such a name gets a suffix.
RESERVED_NAMES = frozenset({"default-deny", "allow-dns"})


def is_system_namespace(namespace: str) -> bool:
    """Namespaces ``--all-namespaces`` skips unless ``--include-system``."""
    return namespace in SYSTEM_NAMESPACES or namespace.startswith(SYSTEM_PREFIXES)


@dataclass(frozen=True)
class SuggestOptions:
    """What to synthesise and how (the CLI options of ``flowlens suggest``)."""

    namespaces: tuple[str, ...]
    flavor: str = "kubernetes"
    label_keys: tuple[str, ...] = DEFAULT_LABEL_KEYS
    tier: str = "flowlens"
    tier_order: int = 10000
    staged: bool = False
    baseline: bool = False
    min_connections: int = 1
    include_denied: bool = False
    max_extra_addresses: int = 0


@dataclass(frozen=True)
class Port:
    """A protocol and destination port; ``port`` None means every port of the protocol."""

    proto: str
    port: int | None

    @property
    def text(self) -> str:
        return self.proto if self.port is None else f"{self.proto}/{self.port}"

    @property
    def sort_key(self) -> tuple[str, int]:
        return (self.proto, -1 if self.port is None else self.port)


@dataclass(frozen=True, order=True)
class Peer:
    """The far side of a rule.

    ``workload``: pods of ``namespace`` matching ``selector`` (empty: every pod there);
    ``entity``: Calico host endpoints or network sets matching ``selector`` (``namespace`` None:
    non-namespaced, ``global()``); ``nets``: addresses in ``nets`` minus ``except_nets``.
    ``broad`` says why a peer admits more than what was observed (None when it is exact).
    """

    kind: str
    namespace: str | None = None
    selector: Labels = ()
    nets: tuple[str, ...] = ()
    except_nets: tuple[str, ...] = ()
    broad: str | None = None
    service_account: str | None = None  # Calico flavor: the one SA all the pods run as

    @property
    def text(self) -> str:
        if self.kind == "workload":
            sel = ",".join(f"{k}={v}" for k, v in self.selector) or "all pods"
            return f"{sel} in {self.namespace}"
        if self.kind == "entity":
            sel = ",".join(f"{k}={v}" for k, v in self.selector)
            return f"{sel} ({'global' if self.namespace is None else self.namespace})"
        ex = f" except {', '.join(self.except_nets)}" if self.except_nets else ""
        return ", ".join(self.nets) + ex


@dataclass(frozen=True)
class Evidence:
    """What was observed for one peer and port of a rule."""

    peer: str  # the peer as logged
    port: str
    connections: int
    bytes: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    reporters: tuple[str, ...]
    remediation: bool

    def line(self) -> str:
        first = self.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        last = self.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        tag = "REMEDIATION (observed denied) " if self.remediation else ""
        return (
            f"{tag}{self.peer} {self.port}: {self.connections} connections, {self.bytes} bytes, "
            f"{first}..{last}, reported by {'+'.join(self.reporters)}"
        )


@dataclass(frozen=True)
class Rule:
    """One allow rule of a workload policy: any of ``peers`` on any of ``ports`` (empty: all)."""

    direction: str  # ingress | egress
    peers: tuple[Peer, ...]
    ports: tuple[Port, ...]
    evidence: tuple[Evidence, ...]
    notes: tuple[str, ...] = ()

    @property
    def remediation(self) -> bool:
        return any(e.remediation for e in self.evidence)

    @property
    def broad(self) -> tuple[str, ...]:
        return tuple(sorted({p.broad for p in self.peers if p.broad} | set(self.notes)))


@dataclass(frozen=True)
class WorkloadPolicy:
    """The allow rules of one workload."""

    workload: Workload
    name: str  # readable, unique in the namespace (without prefix)
    labels: Labels  # all common labels of the workload's pods
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]


@dataclass(frozen=True)
class LeftOut:
    """An edge left out of the suggestion, and why."""

    namespace: str
    direction: str
    workload: str
    peer: str
    port: str
    connections: int
    reason: str


@dataclass(frozen=True)
class NamespacePlan:
    """Everything suggested for one namespace."""

    namespace: str
    policies: tuple[WorkloadPolicy, ...]
    dns_evidence: tuple[Evidence, ...]
    left_out: tuple[LeftOut, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The synthesis for all target namespaces."""

    options: SuggestOptions
    namespaces: tuple[NamespacePlan, ...]
    workloads: tuple[tuple[Workload, Labels], ...]  # every known workload with its common labels
    notes: tuple[str, ...] = ()  # about the whole suggestion (per-namespace notes are in namespaces)


# --- edges -----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _External:
    type: str
    namespace: str | None
    name_aggr: str
    ip: str | None


_Side = Workload | _External


@dataclass
class _Stats:
    by_reporter: dict[str, list[int]] = field(default_factory=dict)  # started, live, bytes
    actions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def add(self, rep: Report) -> None:
        acc = self.by_reporter.setdefault(rep.reporter, [0, 0, 0])
        acc[0] += rep.connections
        acc[1] = max(acc[1], rep.live_connections)
        acc[2] += rep.bytes
        self.actions[rep.reporter].add(rep.action)
        self.first = rep.first_seen if self.first is None else min(self.first, rep.first_seen)
        self.last = rep.last_seen if self.last is None else max(self.last, rep.last_seen)

    @property
    def connections(self) -> int:
        # The two reporters see the same connections: take the larger count, never the sum.
        # A group of records is at least one connection, even if its counters say 0.
        return max(max(a[0], a[1], 1) for a in self.by_reporter.values())

    @property
    def bytes(self) -> int:
        return max(a[2] for a in self.by_reporter.values())

    @property
    def verdict(self) -> str:
        """'allow' unless one side only ever denied it (then the connection never got through)."""
        for acts in self.actions.values():
            if acts == {"deny"}:
                return "deny"
        return "allow"


def _side(ep: LoggedEndpoint, workloads: Mapping[tuple[str, str], Workload]) -> _Side:
    if ep.type == "wep" and ep.namespace is not None:
        return workloads[(ep.namespace, ep.name_aggr)]
    return _External(ep.type, ep.namespace, ep.name_aggr, ep.ip)


def _edge_map(
    reports: Sequence[Report], workloads: Mapping[tuple[str, str], Workload]
) -> dict[tuple[_Side, _Side, Port], _Stats]:
    edges: dict[tuple[_Side, _Side, Port], _Stats] = {}
    for rep in reports:
        key = (_side(rep.source, workloads), _side(rep.dest, workloads), Port(rep.proto, rep.dest_port))
        edges.setdefault(key, _Stats()).add(rep)
    return edges


@dataclass(frozen=True)
class EdgeInfo:
    """The edge a report belongs to (at the chosen label granularity), and its fate."""

    edge: tuple[object, ...]
    verdict: str
    connections: int
    left_out: bool  # fewer connections than --min-connections


def edge_keys(reports: Sequence[Report], options: SuggestOptions) -> list[EdgeInfo]:
    """One :class:`EdgeInfo` per report, in the same order."""
    workload_of = build_workloads(reports, options.label_keys)
    edges = _edge_map(reports, workload_of)
    out = []
    for rep in reports:
        key = (_side(rep.source, workload_of), _side(rep.dest, workload_of), Port(rep.proto, rep.dest_port))
        stats = edges[key]
        out.append(
            EdgeInfo(key, stats.verdict, stats.connections, stats.connections < options.min_connections)
        )
    return out


# --- peers ------------------------------------------------------------------------------------


def _sort_side(side: _Side) -> tuple[int, str, str, str]:
    if isinstance(side, Workload):
        return (0, side.namespace, repr(side.selector), "")
    return (1, side.type, side.namespace or "", f"{side.name_aggr}|{side.ip or ''}")


def _logged_text(side: _Side) -> str:
    if isinstance(side, Workload):
        return f"{side.display} ({side.namespace})"
    if side.type == "net":
        return f"{side.name_aggr} {side.ip}" if side.ip else f"{side.name_aggr} (address not logged)"
    where = side.namespace or "global"
    kind = {"hep": "host", "ns": "network set"}.get(side.type, side.type)
    ip = f" {side.ip}" if side.ip else ""
    return f"{kind} {side.name_aggr} ({where}){ip}"


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


def _external_peer(side: _External, flavor: str, entity_labels: Labels | None) -> Peer:
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
    """Workloads whose selector, in the inventory, selects pods that all run as one service account."""
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
        if len(accounts) == 1:
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


def _peer_order(p: Peer) -> tuple[int, str, str, tuple[int, int, int]]:
    rank = {"workload": 0, "entity": 1, "nets": 2}[p.kind]
    netkey: tuple[int, int, int]
    if p.nets:
        n = ipaddress.ip_network(p.nets[0], strict=False)
        netkey = (n.version, int(n.network_address), n.prefixlen)
    else:
        netkey = (0, 0, 0)
    return (rank, p.namespace or "", repr(p.selector), netkey)


def _is_dns(side: _Side, port: Port, all_labels: Mapping[Workload, Labels]) -> bool:
    if not isinstance(side, Workload) or side.namespace != DNS_NAMESPACE:
        return False
    if port.port != DNS_PORT or port.proto not in ("udp", "tcp"):
        return False
    labels = dict(all_labels.get(side, ()))
    return all(labels.get(k) == v for k, v in DNS_LABELS)


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


def synthesise(
    reports: Sequence[Report], options: SuggestOptions, inventory: Inventory | None = None
) -> Plan:
    """The suggestion for ``options.namespaces`` from the observed ``reports``.

    With an ``inventory`` and the Calico flavor, pod peers whose pods all run as one service
    account are also matched by it (``serviceAccounts.names``, ANDed with the selector).
    """
    if options.flavor not in FLAVORS:
        raise ValueError(f"unknown flavor {options.flavor!r}")
    workload_of = build_workloads(reports, options.label_keys)
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
    edges = _edge_map(reports, workload_of)
    targets = set(options.namespaces)
    service_accounts = (
        _service_accounts(set(workload_of.values()), inventory) if options.flavor == "calico" else {}
    )

    plans = []
    for ns in sorted(targets):
        rules_in: dict[Workload, dict[Peer, tuple[set[Port], list[Evidence]]]] = defaultdict(dict)
        rules_out: dict[Workload, dict[Peer, tuple[set[Port], list[Evidence]]]] = defaultdict(dict)
        subjects: set[Workload] = {w for w in label_sets if w.namespace == ns}
        dns: list[Evidence] = []
        left_out: list[LeftOut] = []
        for (src, dst, port), stats in sorted(
            edges.items(), key=lambda kv: (_sort_side(kv[0][0]), _sort_side(kv[0][1]), kv[0][2].sort_key)
        ):
            verdict = stats.verdict
            remediation = verdict == "deny"
            for direction, subject, other in (("egress", src, dst), ("ingress", dst, src)):
                if not (isinstance(subject, Workload) and subject.namespace == ns):
                    continue
                ev = Evidence(
                    peer=("to " if direction == "egress" else "from ") + _logged_text(other),
                    port=port.text,
                    connections=stats.connections,
                    bytes=stats.bytes,
                    first_seen=stats.first or dt.datetime.min.replace(tzinfo=dt.UTC),
                    last_seen=stats.last or dt.datetime.min.replace(tzinfo=dt.UTC),
                    reporters=tuple(sorted(stats.by_reporter)),
                    remediation=remediation,
                )
                if remediation and not options.include_denied:
                    left_out.append(
                        LeftOut(
                            ns, direction, subject.display, ev.peer, port.text, stats.connections, "denied"
                        )
                    )
                    continue
                if stats.connections < options.min_connections:
                    left_out.append(
                        LeftOut(
                            ns,
                            direction,
                            subject.display,
                            ev.peer,
                            port.text,
                            stats.connections,
                            f"fewer than {options.min_connections} connections",
                        )
                    )
                    continue
                if direction == "egress" and _is_dns(other, port, all_labels):
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
                ports.add(port)
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
            )
        )
    known = tuple(sorted((w, all_labels.get(w, ())) for w in set(workload_of.values())))
    return Plan(options, tuple(plans), known)
