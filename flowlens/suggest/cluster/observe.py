"""What the traffic of all namespaces shows, as the cluster guardrails need it.

Owns :func:`observe`: the window's report groups folded into :class:`Path` values, one per
(source, destination, protocol, port), where a side is a workload (pods of one namespace that
share a selector, see :func:`flowlens.suggest.observed.build_workloads`), an address outside the
cluster or a host. The same connection reported by both ends counts once (the larger report).
From the paths it tells the roles the guardrails name: DNS servers (pods that other namespaces
reach on port 53), cluster-wide clients (pods that reach pods of two or more other namespaces,
like a monitoring scraper) and ingress controllers (pods the internet reaches that forward into
other namespaces).

Scans and probes are held back as ``flowlens suggest`` holds them back
(:func:`flowlens.suggest.screen.screen`, with its defaults: port scans, host sweeps, one-off and
denied-source probes), and on top of it by :func:`held_back`, a rule over the cluster's paths: a
source whose traffic looks like reconnaissance is never turned into an exception or a named
path, so the guardrails deny it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flowlens.suggest.activity import Activity
from flowlens.suggest.edges import edge_of
from flowlens.suggest.model import is_system_namespace
from flowlens.suggest.observed import Labels, Report, Workload, build_workloads

DNS_PORT = 53
#: Ports a single source reaching one destination must exceed to look like a port scan.
SCAN_PORTS = 10
#: At most this many allowed connections make a path probe-sized.
PROBE_CONNECTIONS = 5


@dataclass(frozen=True, order=True)
class Side:
    """One end of a path: ``pods`` (a workload: namespace and selector), ``net`` (an address
    outside the cluster: its IP, or Calico's ``pvt``/``pub`` when masked) or ``host``."""

    kind: str
    namespace: str
    selector: Labels
    name: str  # the display name: workload selector, address, or host name
    ip: str | None = None

    @property
    def display(self) -> str:
        if self.kind == "pods":
            return f"{self.namespace}/{self.name}"
        return self.name


@dataclass
class Path:
    """The traffic between two sides on one protocol and port, over the window."""

    source: Side
    dest: Side
    proto: str
    port: int | None
    allowed: int = 0  # connections (the larger of the two reports)
    denied: int = 0
    records: int = 0
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    _by_reporter: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    @property
    def cross_namespace(self) -> bool:
        return (
            self.source.kind == "pods"
            and self.dest.kind == "pods"
            and self.source.namespace != self.dest.namespace
        )


#: A held-back path as its records name it: source (namespace, name_aggr or address), destination
#: (namespace, name_aggr or address), protocol, port.
HeldKey = tuple[str, str, str, str, str, int | None]


def record_key(
    src_ns: str | None,
    src_name: str | None,
    src_ip: str | None,
    dst_ns: str | None,
    dst_name: str | None,
    dst_ip: str | None,
    proto: str | None,
    port: int | None,
) -> HeldKey:
    """The :data:`HeldKey` of a record: a side by its aggregated name, or by its address where
    the name says only ``pvt``/``pub`` (the records of one connection at different aggregation
    levels then still agree)."""

    def ns(value: str | None) -> str:
        return "" if value in (None, "-") else str(value)

    def who(name: str | None, ip: str | None) -> str:
        return (ip or name or "") if name in (None, "", "-", "pvt", "pub") else str(name)

    return (
        ns(src_ns),
        who(src_name, src_ip),
        ns(dst_ns),
        who(dst_name, dst_ip),
        (proto or "").lower(),
        port,
    )


@dataclass(frozen=True)
class Observed:
    """The paths of the window and the roles they show."""

    paths: tuple[Path, ...]
    namespaces: tuple[str, ...]  # every namespace with pods in the window
    dns_servers: tuple[Side, ...]
    clients: tuple[tuple[Side, str], ...]  # (workload, 'cluster-wide client' | 'ingress controller')
    held: Mapping[tuple[Side, Side, str, int | None], str]  # paths held back as scans or probes, and why
    held_keys: frozenset[HeldKey]  # the same paths as their records name them

    def allowed(self) -> list[Path]:
        """Paths with allowed connections that are not held back."""
        return [p for p in self.paths if p.allowed and (p.source, p.dest, p.proto, p.port) not in self.held]

    def is_dns(self, path: Path) -> bool:
        return path.dest in self.dns_servers and path.port == DNS_PORT


def _side(
    ep_type: str,
    namespace: str | None,
    name_aggr: str,
    ip: str | None,
    workloads: Mapping[tuple[str, str], Workload],
) -> Side:
    if ep_type == "wep" and namespace is not None:
        w = workloads[(namespace, name_aggr)]
        return Side("pods", namespace, w.selector, w.display)
    if ep_type == "net":
        return Side("net", "", (), ip or name_aggr, ip)
    return Side("host", namespace or "", (), name_aggr, ip)


def observe(
    reports: Sequence[Report], label_keys: Sequence[str], activity: Activity | None = None
) -> Observed:
    """Fold the report groups of the window into paths and tell the roles. ``activity``: the
    intervals and days each edge was seen in (estimated from the reports when None), for the
    screening of scans and probes."""
    from flowlens.suggest.screen import ScreenOptions, screen

    workloads = build_workloads(reports, label_keys)
    screening = screen(reports, label_keys, ScreenOptions(), activity=activity)
    screened: dict[tuple[Side, Side, str, int | None], str] = {}
    paths: dict[tuple[Side, Side, str, int | None], Path] = {}
    namespaces: set[str] = set()
    logged: dict[tuple[Side, Side, str, int | None], set[HeldKey]] = defaultdict(set)
    for rep in reports:
        src = _side(rep.source.type, rep.source.namespace, rep.source.name_aggr, rep.source.ip, workloads)
        dst = _side(rep.dest.type, rep.dest.namespace, rep.dest.name_aggr, rep.dest.ip, workloads)
        namespaces.update(s.namespace for s in (src, dst) if s.kind == "pods")
        key = (src, dst, rep.proto, rep.dest_port)
        group = screening.held(edge_of(rep, screening.workloads))
        if group is not None and key not in screened:
            screened[key] = group.text
        logged[key].add(
            record_key(
                rep.source.namespace,
                rep.source.name_aggr,
                rep.source.ip,
                rep.dest.namespace,
                rep.dest.name_aggr,
                rep.dest.ip,
                rep.proto,
                rep.dest_port,
            )
        )
        path = paths.get(key)
        if path is None:
            path = paths[key] = Path(src, dst, rep.proto, rep.dest_port)
        counts = path._by_reporter
        slot = (rep.reporter, rep.action)
        counts[slot] = counts.get(slot, 0) + rep.connections
        path.records += rep.records
        path.first_seen = min(filter(None, (path.first_seen, rep.first_seen)))
        path.last_seen = max(filter(None, (path.last_seen, rep.last_seen)))
    for path in paths.values():
        # One connection is reported by both ends: the larger report counts, never the sum. It
        # is allowed only if the destination let it in too: where the destination reported,
        # its allowed count is the path's (an egress allowed at the source and denied at the
        # destination was denied).
        c = path._by_reporter
        dst_reported = ("dst", "allow") in c or ("dst", "deny") in c
        path.allowed = c.get(("dst", "allow"), 0) if dst_reported else c.get(("src", "allow"), 0)
        path.denied = max(c.get(("src", "deny"), 0), c.get(("dst", "deny"), 0))
    ordered = tuple(
        sorted(paths.values(), key=lambda p: (p.source, p.dest, p.proto, -1 if p.port is None else p.port))
    )
    held = {**held_back(ordered), **screened}
    dns = _dns_servers(ordered)
    held_keys = frozenset(k for path in held for k in logged[path])
    return Observed(ordered, tuple(sorted(namespaces)), dns, _clients(ordered, dns, held), held, held_keys)


def held_back(paths: Sequence[Path]) -> dict[tuple[Side, Side, str, int | None], str]:
    """Paths that look like a scan or a probe, and why (the seam for the suggest screening): every
    path of a source that reached more than :data:`SCAN_PORTS` ports of one destination, and the
    probe-sized paths (at most :data:`PROBE_CONNECTIONS` allowed connections) of a source whose
    connections were at least half denied. They are never made into an exception or a named
    path, so the guardrails deny them; a source's real traffic (a scraper whose scrapes of one
    namespace are denied still scrapes others many times) is kept."""
    allowed: dict[Side, int] = defaultdict(int)
    denied: dict[Side, int] = defaultdict(int)
    ports: dict[tuple[Side, Side], set[tuple[str, int | None]]] = defaultdict(set)
    for p in paths:
        allowed[p.source] += p.allowed
        denied[p.source] += p.denied
        ports[(p.source, p.dest)].add((p.proto, p.port))
    out: dict[tuple[Side, Side, str, int | None], str] = {}
    for p in paths:
        key = (p.source, p.dest, p.proto, p.port)
        scanned = len(ports[(p.source, p.dest)])
        if scanned > SCAN_PORTS:
            out[key] = f"{p.source.display} reached {scanned} ports of {p.dest.display} (a port scan)"
        elif p.allowed and p.allowed <= PROBE_CONNECTIONS and denied[p.source] >= allowed[p.source]:
            total = allowed[p.source] + denied[p.source]
            out[key] = (
                f"{p.source.display} -> {p.dest.display} {p.proto}/{p.port}: {p.allowed} connection(s) from a "
                f"source {denied[p.source]:,} of whose {total:,} connections were denied (a probe)"
            )
    return out


def _dns_servers(paths: Sequence[Path]) -> tuple[Side, ...]:
    servers = {
        p.dest
        for p in paths
        if p.allowed and p.port == DNS_PORT and p.dest.kind == "pods" and p.cross_namespace
    }
    return tuple(sorted(servers))


def _clients(
    paths: Sequence[Path], dns: Sequence[Side], held: Mapping[tuple[Side, Side, str, int | None], str]
) -> tuple[tuple[Side, str], ...]:
    into: dict[Side, set[str]] = defaultdict(set)
    from_internet: set[Side] = set()
    for p in paths:
        if not p.allowed or (p.source, p.dest, p.proto, p.port) in held:
            continue
        if p.cross_namespace and not (p.dest in dns and p.port == DNS_PORT):
            into[p.source].add(p.dest.namespace)
        if p.source.kind == "net" and p.dest.kind == "pods":
            from_internet.add(p.dest)
    out = []
    for side, namespaces in sorted(into.items()):
        if len(namespaces) >= 2:
            out.append((side, "cluster-wide client"))
        elif side in from_internet:
            out.append((side, "ingress controller"))
    return tuple(out)


def guarded_namespaces(observed: Observed, include_system: bool) -> tuple[str, ...]:
    """The namespaces the Baseline layer covers: those with pods, system ones only when asked."""
    return tuple(n for n in observed.namespaces if include_system or not is_system_namespace(n))
