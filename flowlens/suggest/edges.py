"""Observed edges: who talked to whom on which port, at the granularity policies are written for.

An edge is a source side, a destination side and a port. A side is a :class:`Workload` (pods of
one namespace sharing a selector, see :mod:`.observed`) or an :class:`External` (a host endpoint,
a network set, or addresses outside the cluster, as logged). :func:`edge_map` folds the report
groups of a window into one frozen :class:`EdgeStats` per edge; the synthesis writes rules from
them, the screening (:mod:`.screen`) classifies them, and the proof replays their reports.

The same connection is reported by the source (egress side) and by the destination (ingress
side): counts are summed per reporter and the larger reporter's count is the edge's, never the
sum of both; one report is enough to make an edge.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flowlens.suggest.observed import Labels, LoggedEndpoint, Report, Workload

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)
#: The cluster DNS every namespace's allow-dns policy admits: never a rule of a workload policy.
DNS_PORT = 53
DNS_NAMESPACE = "kube-system"
DNS_LABELS: Labels = (("k8s-app", "kube-dns"),)


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

    @classmethod
    def from_text(cls, text: str) -> Port:
        """The port :attr:`text` names (``tcp/5432``, ``icmp``)."""
        proto, _, number = text.partition("/")
        return cls(proto, int(number) if number else None)


def port_ranges(ports: Sequence[Port]) -> list[tuple[str, int | None, int | None]]:
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


def ports_text(ports: Iterable[Port]) -> str:
    """Ports in order, as text: ``tcp/21-23, tcp/80, udp/53`` (ranges as :func:`port_ranges`)."""
    ordered = sorted(set(ports), key=lambda p: p.sort_key)
    return ", ".join(
        proto if first is None else f"{proto}/{first}" if first == last else f"{proto}/{first}-{last}"
        for proto, first, last in port_ranges(ordered)
    )


@dataclass(frozen=True, order=True)
class External:
    """A side that is not a pod of a namespace, exactly as logged: a host endpoint (``hep``), a
    network set (``ns``) or addresses (``net``: ``pub``/``pvt`` with or without the IP)."""

    type: str
    namespace: str | None
    name_aggr: str
    ip: str | None


Side = Workload | External


def side_of(ep: LoggedEndpoint, workloads: Mapping[tuple[str, str], Workload]) -> Side:
    """The side a logged endpoint belongs to (``workloads`` from :func:`~.observed.build_workloads`)."""
    if ep.type == "wep" and ep.namespace is not None:
        return workloads[(ep.namespace, ep.name_aggr)]
    return External(ep.type, ep.namespace, ep.name_aggr, ep.ip)


def side_sort_key(side: Side) -> tuple[int, str, str, str]:
    """A total order on sides: workloads first (namespace, selector), then the others."""
    if isinstance(side, Workload):
        return (0, side.namespace, repr(side.selector), "")
    return (1, side.type, side.namespace or "", f"{side.name_aggr}|{side.ip or ''}")


def logged_text(side: Side) -> str:
    """The side for people, as it was logged: ``app=api (shop)``, ``pub 93.184.216.34``."""
    if isinstance(side, Workload):
        return f"{side.display} ({side.namespace})"
    if side.type == "net":
        return f"{side.name_aggr} {side.ip}" if side.ip else f"{side.name_aggr} (address not logged)"
    where = side.namespace or "global"
    kind = {"hep": "host", "ns": "network set"}.get(side.type, side.type)
    ip = f" {side.ip}" if side.ip else ""
    return f"{kind} {side.name_aggr} ({where}){ip}"


def is_cluster_dns(side: Side, port: Port, labels: Mapping[Workload, Labels]) -> bool:
    """Whether ``side`` on ``port`` is the cluster DNS (``labels``: each workload's common labels)."""
    if not isinstance(side, Workload) or side.namespace != DNS_NAMESPACE:
        return False
    if port.port != DNS_PORT or port.proto not in ("udp", "tcp"):
        return False
    have = dict(labels.get(side, ()))
    return all(have.get(k) == v for k, v in DNS_LABELS)


@dataclass(frozen=True)
class Edge:
    """One source side reaching one destination side on one port."""

    source: Side
    dest: Side
    port: Port

    @property
    def sort_key(self) -> tuple[object, ...]:
        return (side_sort_key(self.source), side_sort_key(self.dest), self.port.sort_key)

    @property
    def text(self) -> str:
        return f"{logged_text(self.source)} -> {logged_text(self.dest)} {self.port.text}"


def edge_of(rep: Report, workloads: Mapping[tuple[str, str], Workload]) -> Edge:
    """The edge a report belongs to."""
    return Edge(side_of(rep.source, workloads), side_of(rep.dest, workloads), Port(rep.proto, rep.dest_port))


@dataclass(frozen=True)
class EdgeStats:
    """What was observed on one edge over the window.

    ``connections``: the larger reporter's count (connections started, or the most connections
    seen live at once, at least 1 per reporter); ``bytes``: the larger reporter's bytes (0 when no
    record logged any); ``verdict``: ``allow`` unless one reporter only ever denied it (then the
    connection never got through).
    """

    connections: int
    bytes: int
    verdict: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    reporters: tuple[str, ...]


@dataclass
class _Accumulator:
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

    def freeze(self) -> EdgeStats:
        # The two reporters see the same connections: take the larger count, never the sum.
        # A group of records is at least one connection, even if its counters say 0.
        verdict = "deny" if any(acts == {"deny"} for acts in self.actions.values()) else "allow"
        return EdgeStats(
            connections=max(max(a[0], a[1], 1) for a in self.by_reporter.values()),
            bytes=max(a[2] for a in self.by_reporter.values()),
            verdict=verdict,
            first_seen=self.first or _EPOCH,
            last_seen=self.last or _EPOCH,
            reporters=tuple(sorted(self.by_reporter)),
        )


def edge_map(
    reports: Sequence[Report], workloads: Mapping[tuple[str, str], Workload]
) -> dict[Edge, EdgeStats]:
    """Every edge of ``reports`` with what was observed on it."""
    acc: dict[Edge, _Accumulator] = {}
    for rep in reports:
        acc.setdefault(edge_of(rep, workloads), _Accumulator()).add(rep)
    return {edge: a.freeze() for edge, a in acc.items()}
