"""The suggestion's model: options, and the flavor-independent plan the renderers turn into YAML.

:class:`SuggestOptions` holds every choice of ``flowlens suggest``; :class:`Plan` is what the
synthesis (:mod:`.synth`) makes of the observed traffic: per namespace the workload policies with
their rules, each rule with the :class:`Evidence` it rests on, and the edges left out or held
back, with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from flowlens.suggest.edges import DNS_LABELS, DNS_NAMESPACE, DNS_PORT, Port, ports_text
from flowlens.suggest.observed import DEFAULT_LABEL_KEYS, Labels, Workload
from flowlens.suggest.screen import HeldBack, Screening, ScreenOptions

__all__ = [
    "DNS_LABELS",
    "DNS_NAMESPACE",
    "DNS_PORT",
    "FLAVORS",
    "SYSTEM_NAMESPACES",
    "SYSTEM_PREFIXES",
    "Evidence",
    "LeftOut",
    "NamespacePlan",
    "Peer",
    "Plan",
    "Port",
    "Rule",
    "SuggestOptions",
    "WorkloadPolicy",
    "is_system_namespace",
]

FLAVORS = ("kubernetes", "calico")
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "calico-system", "calico-apiserver")
SYSTEM_PREFIXES = ("tigera-",)
#: A rule whose weakest evidence was seen in fewer intervals than this is marked THIN.
THIN_INTERVALS = 6


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
    min_days: int = 0  # leave out edges seen on fewer distinct days
    thin_intervals: int = THIN_INTERVALS
    screen: ScreenOptions = field(default_factory=ScreenOptions)


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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Evidence:
    """What was observed for one peer and port of a rule: how much, and how steadily.

    ``intervals``/``days``: distinct export intervals and UTC days it was seen in;
    ``admitted``: why it was held back, when ``--admit`` kept it anyway.
    """

    peer: str  # the peer as logged
    port: str
    connections: int
    bytes: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    reporters: tuple[str, ...]
    remediation: bool
    intervals: int = 1
    days: int = 1
    admitted: str | None = None

    @property
    def strength(self) -> tuple[int, int, int]:
        """Weakest first: fewest days, then fewest intervals, then fewest connections."""
        return (self.days, self.intervals, self.connections)

    def line(self) -> str:
        first = self.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        last = self.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ")
        tag = "REMEDIATION (observed denied) " if self.remediation else ""
        return (
            f"{tag}{self.peer} {self.port}: {_plural(self.connections, 'connection')}, {self.bytes} bytes, "
            f"seen on {_plural(self.days, 'day')} in {_plural(self.intervals, 'interval')}, "
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

    @property
    def weakest(self) -> Evidence:
        """The evidence seen least steadily (the rule is only as sure as it)."""
        return min(self.evidence, key=lambda e: (*e.strength, e.peer, e.port))

    def thin(self, thin_intervals: int) -> str | None:
        """Why the rule rests on thin evidence (seen in fewer than ``thin_intervals`` intervals), or None."""
        if not self.evidence:
            return None
        weak = self.weakest
        if weak.intervals >= thin_intervals:
            return None
        return (
            f"{weak.peer} {weak.port} was seen in only {_plural(weak.intervals, 'interval')} on "
            f"{_plural(weak.days, 'day')} (fewer than {thin_intervals}): check it before enforcing"
        )

    @property
    def admitted(self) -> tuple[str, ...]:
        return tuple(sorted({e.admitted for e in self.evidence if e.admitted}))


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


def left_out_groups(items: Sequence[LeftOut]) -> list[tuple[LeftOut, str]]:
    """Edges left out, one per namespace, direction, workload, peer and reason (a scan's many
    ports denied by the policies in force make one), with its ports as one text and its
    connections summed; in the order of their first edge."""
    groups: dict[tuple[str, str, str, str, str], list[LeftOut]] = {}
    for x in items:
        groups.setdefault((x.namespace, x.direction, x.workload, x.peer, x.reason), []).append(x)
    out = []
    for edges in groups.values():
        first = edges[0]
        total = dataclasses.replace(first, connections=sum(e.connections for e in edges))
        out.append(
            (total, ports_text(Port.from_text(e.port) for e in edges) if len(edges) > 1 else first.port)
        )
    return out


@dataclass(frozen=True)
class NamespacePlan:
    """Everything suggested for one namespace."""

    namespace: str
    policies: tuple[WorkloadPolicy, ...]
    dns_evidence: tuple[Evidence, ...]
    left_out: tuple[LeftOut, ...]
    notes: tuple[str, ...]
    held_back: tuple[HeldBack, ...] = ()  # groups with an edge of this namespace, admitted ones too


@dataclass(frozen=True)
class Plan:
    """The synthesis for all target namespaces."""

    options: SuggestOptions
    namespaces: tuple[NamespacePlan, ...]
    workloads: tuple[tuple[Workload, Labels], ...]  # every known workload with its common labels
    notes: tuple[str, ...] = ()  # about the whole suggestion (per-namespace notes are in namespaces)
    screening: Screening | None = None

    @cached_property
    def labels_by_namespace(self) -> dict[str, tuple[dict[str, str], ...]]:
        """The common labels of the known workloads, per namespace (for counting what a rule
        admits without a pass over every workload of the cluster per rule)."""
        out: dict[str, list[dict[str, str]]] = {}
        for workload, labels in self.workloads:
            out.setdefault(workload.namespace, []).append(dict(labels))
        return {namespace: tuple(found) for namespace, found in out.items()}
