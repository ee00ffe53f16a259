"""Screening the observed edges before synthesis: what looks like a scan or a probe is held back.

A least-privilege suggestion legitimises whatever happened while the logs were recorded, so an
edge that looks like reconnaissance is *held back*: left out of the policies (it will be denied)
and listed with its evidence and why, until ``--admit`` or ``--admit-held`` keeps it on purpose.

Shapes (:data:`CLASSES`, checked in this order; an edge gets the first that fits):

``port-scan``
    one source reached at least ``scan_ports`` ports of one destination, each seen in a single
    interval with only tiny connections, or with few that read no more than a banner or a small
    page (:data:`GRAB_FACTOR` times ``probe_bytes`` each); those ports are held back, and with
    them the pair's ports tried again in other intervals (*retried*: only tiny connections, no
    more than ``probe_connections`` per interval), such as a port the scanner was denied on
    before: a denied or repeated attempt is no sign of use.
``host-sweep``
    one source reached at least ``sweep_hosts`` destinations on one protocol and port with only
    tiny connections (few of them, or all in one interval), and they outnumber the destinations
    it talks to on that port for real (a scraper, a gateway, a mesh sidecar keeps its pattern).
``no-listener``
    only tiny connections to a port that no container of the destination's pods declares (known
    only with ``--inventory``): nothing answered, nothing listens there.
``denied-source``
    a probe (few, tiny connections) from a source whose connections were at least
    ``denied_share`` denied or held back (by the shapes above; for a source that met a deny,
    checked again after ``one-off``, so that its one-off probes count as held back too).
``one-off``
    a probe seen in at most ``one_off_intervals`` intervals (DNS, port 53, excepted: a name is
    resolved once and cached); and the port such a probe found open: few connections of no more
    than a banner or a small page each, in an interval in which the same source probed at least
    two other ports of the same destination.

*Tiny* means at most ``probe_bytes`` bytes per connection on average, both directions counted: a
handshake and little or nothing else (a connection to a closed port is about 100 bytes, an open
one closed without a request about 200-330, the smallest real request and answer 500 or more).
An edge whose records logged no bytes at all is never tiny. *Few* means at most
``probe_connections`` connections. Real applications' edges repeat across intervals and days,
or carry bytes, so they are kept: a scraper reaching many pods on one port, a batch job seen once
a day that moves data, node health checks (many connections), DNS (never held back: the
namespace's allow-dns policy covers it).

:func:`screen` is the entry point for every kind of suggestion (namespace policies here, and the
cluster-level suggestions): it returns a :class:`Screening` that says, per :class:`Edge`, whether
it is held back and why.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flowlens.errors import UsageError
from flowlens.suggest.activity import Activity, activity_from_reports
from flowlens.suggest.admit import parse_admit, side_token
from flowlens.suggest.edges import (
    DNS_PORT,
    Edge,
    EdgeStats,
    Port,
    Side,
    edge_map,
    is_cluster_dns,
    logged_text,
    ports_text,
    side_sort_key,
)
from flowlens.suggest.observed import Labels, Report, Workload, build_workloads, intersect_labels

if TYPE_CHECKING:
    from flowlens.policy.inventory import Inventory

#: A port-scan's ports may carry up to this many times ``probe_bytes`` per connection (a service
#: scan reads banners and small pages); a port that moved more was used, not probed.
GRAB_FACTOR = 16
CLASSES = ("port-scan", "host-sweep", "no-listener", "denied-source", "one-off")
PORT_PROTOCOLS = ("tcp", "udp", "sctp")
_PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132}


@dataclass(frozen=True)
class ScreenOptions:
    """The thresholds of the screening (``flowlens suggest`` options and ``flowlens.yaml``).

    Defaults come from the measurements in ``bench/suggest_screen.py`` (the sample cluster and the
    Online Boutique, Sock Shop and bookinfo call graphs): see ``docs/suggest.md``.
    """

    probe_bytes: int = 300
    probe_connections: int = 2
    scan_ports: int = 10
    sweep_hosts: int = 10
    denied_share: float = 0.5
    one_off_intervals: int = 1
    classes: tuple[str, ...] = CLASSES  # the shapes that hold edges back
    admit: tuple[str, ...] = ()  # --admit EDGE patterns (see parse_admit)
    admit_all: bool = False  # --admit-held

    def check(self) -> None:
        """:class:`UsageError` for thresholds out of range, unknown classes or bad ``admit`` patterns."""
        for name in ("probe_bytes", "probe_connections", "scan_ports", "sweep_hosts", "one_off_intervals"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be 0 or more")
        if not 0 <= self.denied_share <= 1:
            raise UsageError("--denied-share is a share of connections between 0 and 1 (0 turns it off)")
        unknown = sorted(set(self.classes) - set(CLASSES))
        if unknown:
            raise UsageError(
                f"--hold-back: unknown class(es) {', '.join(unknown)}; the classes are {', '.join(CLASSES)}"
            )
        for text in self.admit:
            parse_admit(text)


@dataclass(frozen=True)
class HeldBack:
    """A group of edges held back for one reason: a scan's ports, a sweep's destinations, or one
    edge. ``admitted``: kept anyway by ``--admit``/``--admit-held`` (then it is in the policies)."""

    kind: str
    source: Side
    dest: Side | None  # None: a sweep's many destinations
    edges: tuple[Edge, ...]
    connections: int
    bytes: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    why: str
    token: str  # the --admit EDGE that admits exactly this group
    admitted: bool = False

    @property
    def text(self) -> str:
        dest = logged_text(self.dest) if self.dest is not None else _ports_text(self.edges)
        return f"{logged_text(self.source)} -> {dest}: {self.why}"

    @property
    def sort_key(self) -> tuple[object, ...]:
        return (side_sort_key(self.source), self.edges[0].sort_key, self.kind)


@dataclass(frozen=True)
class Screening:
    """The outcome of :func:`screen`: the observed edges and which of them are held back."""

    workloads: Mapping[tuple[str, str], Workload]
    edges: Mapping[Edge, EdgeStats]
    activity: Activity
    groups: tuple[HeldBack, ...]  # admitted ones included, sorted
    unmatched_admits: tuple[str, ...] = ()
    _by_edge: dict[Edge, HeldBack] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for group in self.groups:
            for edge in group.edges:
                self._by_edge[edge] = group

    def group_of(self, edge: Edge) -> HeldBack | None:
        """The held-back group ``edge`` is in, admitted or not."""
        return self._by_edge.get(edge)

    def held(self, edge: Edge) -> HeldBack | None:
        """The group holding ``edge`` back, or None when it goes into the policies."""
        group = self._by_edge.get(edge)
        return group if group is not None and not group.admitted else None

    @property
    def held_back(self) -> tuple[HeldBack, ...]:
        return tuple(g for g in self.groups if not g.admitted)

    @property
    def admitted(self) -> tuple[HeldBack, ...]:
        return tuple(g for g in self.groups if g.admitted)


# --- the shapes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    stats: EdgeStats
    intervals: int
    tiny: bool
    few: bool
    probe_bytes: int

    @property
    def probe(self) -> bool:
        return self.tiny and self.few

    @property
    def grab(self) -> bool:
        """No more than a banner or a small page per connection (a service scan reads that much)."""
        return self.stats.bytes <= GRAB_FACTOR * self.probe_bytes * self.stats.connections


def _tiny(stats: EdgeStats, options: ScreenOptions) -> bool:
    """At most ``probe_bytes`` per connection on average (an edge that logged no bytes never is)."""
    return stats.bytes > 0 and stats.bytes <= options.probe_bytes * stats.connections


def _few(stats: EdgeStats, options: ScreenOptions) -> bool:
    return stats.connections <= options.probe_connections


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 120:
        return f"{minutes} min"
    hours = round(minutes / 60)
    return f"{hours} h" if hours < 48 else f"{round(hours / 24)} days"


def _each(values: Sequence[int], unit: str) -> str:
    low, high = min(values), max(values)
    plural = unit if high == 1 else f"{unit}s"
    return f"{low} {plural} each" if low == high else f"{low}-{high} {plural} each"


def _per_connection(stats: Sequence[EdgeStats]) -> str:
    total = sum(s.bytes for s in stats)
    conns = sum(s.connections for s in stats)
    return f"{round(total / conns)} bytes per connection" if total and conns else "no bytes logged"


def _span(stats: Sequence[EdgeStats], activity: Activity) -> str:
    first = min(s.first_seen for s in stats)
    last = max(s.last_seen for s in stats)
    return _duration(max((last - first).total_seconds(), activity.interval_seconds))


def _ports_text(edges: Sequence[Edge]) -> str:
    return ports_text(e.port for e in edges)


def _group(
    kind: str,
    source: Side,
    dest: Side | None,
    edges: Sequence[Edge],
    facts: Mapping[Edge, _Facts] | Mapping[Edge, EdgeStats],
    why: str,
    admitted: bool = False,
) -> HeldBack:
    stats = [f.stats if isinstance(f, _Facts) else f for f in (facts[e] for e in edges)]
    ordered = tuple(sorted(edges, key=lambda e: e.sort_key))
    dest_token = side_token(dest) if dest is not None else "*"
    return HeldBack(
        kind=kind,
        source=source,
        dest=dest,
        edges=ordered,
        connections=sum(s.connections for s in stats),
        bytes=sum(s.bytes for s in stats),
        first_seen=min(s.first_seen for s in stats),
        last_seen=max(s.last_seen for s in stats),
        why=why,
        token=f"{side_token(source)}->{dest_token}@{_ports_text(ordered).replace(', ', ',')}",
        admitted=admitted,
    )


def _declared(dest: Workload, inventory: Inventory) -> set[tuple[int | str, int]] | None:
    """Every (protocol, port) the pods of ``dest`` declare; None when unknown (no pod found, or
    a pod declares nothing, or runs in the host's network)."""
    want = dict(dest.selector)
    pods = [
        p
        for p in inventory.pods
        if p.namespace == dest.namespace and all(p.labels.get(k) == v for k, v in want.items())
    ]
    if not pods or any(not p.declared_ports or p.host_network for p in pods):
        return None
    return {d for p in pods for d in p.declared_ports}


_Groups = dict[tuple[Side, Side | Port], list[Edge]]


def _in_order(groups: _Groups) -> list[tuple[tuple[Side, Side | Port], list[Edge]]]:
    return sorted(groups.items(), key=lambda kv: min(e.sort_key for e in kv[1]))


def _port_scans(facts: Mapping[Edge, _Facts], activity: Activity, options: ScreenOptions) -> list[HeldBack]:
    pairs: _Groups = defaultdict(list)
    retried: _Groups = defaultdict(list)
    for edge, f in facts.items():
        if edge.port.port is None or edge.port.proto not in PORT_PROTOCOLS:
            continue
        if f.intervals <= 1 and (f.tiny or (f.few and f.grab)):
            pairs[(edge.source, edge.dest)].append(edge)
        elif (f.tiny or f.grab) and f.stats.connections <= options.probe_connections * f.intervals:
            # Tried again in another interval (a retry, denied before and tried in the scan, or
            # scanned twice, once reading banners): it only joins a scan found on the
            # single-interval ports, never makes one. A port used for real carries more than a
            # banner per connection, or many connections in every interval (health checks).
            retried[(edge.source, edge.dest)].append(edge)
    out = []
    for (source, dest), group in _in_order(pairs):
        if len(group) < options.scan_ports or isinstance(dest, Port):
            continue
        again = retried.get((source, dest), [])
        stats = [facts[e].stats for e in group]
        more = f", and {len(again)} more tried in other intervals too" if again else ""
        why = (
            f"{len(group)} ports in {_span(stats, activity)}, "
            f"{_each([s.connections for s in stats], 'connection')}, {_per_connection(stats)}{more}: "
            "looks like a port scan"
        )
        out.append(_group("port-scan", source, dest, group + again, facts, why))
    return out


def _host_sweeps(facts: Mapping[Edge, _Facts], activity: Activity, options: ScreenOptions) -> list[HeldBack]:
    thin: _Groups = defaultdict(list)
    real: dict[tuple[Side, Port], int] = defaultdict(int)
    for edge, f in facts.items():
        if f.tiny and (f.few or f.intervals <= 1):
            thin[(edge.source, edge.port)].append(edge)
        else:
            real[(edge.source, edge.port)] += 1
    out = []
    for (source, port), group in _in_order(thin):
        if (
            not isinstance(port, Port)
            or len(group) < options.sweep_hosts
            or len(group) <= real[(source, port)]
        ):
            continue
        stats = [facts[e].stats for e in group]
        why = (
            f"{len(group)} destinations on {port.text} in {_span(stats, activity)}, "
            f"{_each([s.connections for s in stats], 'connection')}, {_per_connection(stats)}: "
            "looks like a host sweep"
        )
        out.append(_group("host-sweep", source, None, group, facts, why))
    return out


def _no_listener(facts: Mapping[Edge, _Facts], inventory: Inventory) -> list[HeldBack]:
    declared_of: dict[Workload, set[tuple[int | str, int]] | None] = {}
    out = []
    for edge, f in sorted(facts.items(), key=lambda kv: kv[0].sort_key):
        dest = edge.dest
        if not f.tiny or not isinstance(dest, Workload) or edge.port.port is None:
            continue
        if dest not in declared_of:
            declared_of[dest] = _declared(dest, inventory)
        declared = declared_of[dest]
        if (
            declared is None
            or (_PROTOCOL_NUMBERS.get(edge.port.proto, edge.port.proto), edge.port.port) in declared
        ):
            continue
        listed = ", ".join(sorted(f"{_proto_name(p)}/{n}" for p, n in declared))
        why = (
            f"{_probe_text(f)}, to {edge.port.text}, which no container of the pods declares "
            f"(they declare {listed}): nothing listens there"
        )
        out.append(_group("no-listener", edge.source, dest, [edge], facts, why))
    return out


def _denied_sources(
    facts: Mapping[Edge, _Facts],
    edges: Mapping[Edge, EdgeStats],
    held: Collection[Edge],
    options: ScreenOptions,
    *,
    after_one_offs: bool = False,
) -> list[HeldBack]:
    """``after_one_offs``: the second look, which holds back only probes of sources that met a
    deny (their one-off probes now count as held back)."""
    total: dict[Side, int] = defaultdict(int)
    denied: dict[Side, int] = defaultdict(int)
    met_deny: set[Side] = set()
    for edge, stats in edges.items():
        total[edge.source] += stats.connections
        # What is held back already (a scan, a sweep) will be denied too: it counts as denied.
        if stats.verdict == "deny" or edge in held:
            denied[edge.source] += stats.connections
        if stats.verdict == "deny":
            met_deny.add(edge.source)
    out = []
    for edge, f in sorted(facts.items(), key=lambda kv: kv[0].sort_key):
        if not f.probe or f.stats.verdict != "allow" or not denied[edge.source]:
            continue
        if after_one_offs and edge.source not in met_deny:
            continue
        share = denied[edge.source] / total[edge.source]
        if share >= options.denied_share:
            why = (
                f"{_probe_text(f)}; {round(100 * share)}% of this source's {total[edge.source]} "
                "connections were denied or held back: looks like probing"
            )
            out.append(_group("denied-source", edge.source, edge.dest, [edge], facts, why))
    return out


def _one_offs(facts: Mapping[Edge, _Facts], activity: Activity, options: ScreenOptions) -> list[HeldBack]:
    out = []
    for edge, f in sorted(facts.items(), key=lambda kv: kv[0].sort_key):
        # A name is resolved once and then cached: one small DNS exchange is not a probe.
        dns = edge.port.port == DNS_PORT and edge.port.proto in ("udp", "tcp")
        if f.probe and f.intervals <= options.one_off_intervals and not dns:
            seen = "once (1 interval)" if f.intervals == 1 else f"in {f.intervals} intervals"
            why = (
                f"{_probe_text(f)}, seen {seen} of the {activity.window_intervals} intervals with "
                "traffic: looks like a one-off probe"
            )
            out.append(_group("one-off", edge.source, edge.dest, [edge], facts, why))
    return out


def _probe_companions(
    facts: Mapping[Edge, _Facts], edges: Mapping[Edge, EdgeStats], options: ScreenOptions
) -> list[HeldBack]:
    """Ports a probe found open: an edge seen in a single interval with few connections that read
    no more than a banner or a small page, while the same source probed at least two other ports
    of the same destination in that interval (few, tiny connections, allowed or denied). A
    scanner reads a little from the port that answers; a real client of that port has no reason
    to knock on the others."""
    probes: dict[tuple[Side, Side], list[tuple[Port, EdgeStats]]] = defaultdict(list)
    for edge, stats in edges.items():
        if _tiny(stats, options) and _few(stats, options):
            probes[(edge.source, edge.dest)].append((edge.port, stats))
    out = []
    for edge, f in sorted(facts.items(), key=lambda kv: kv[0].sort_key):
        dns = edge.port.port == DNS_PORT and edge.port.proto in ("udp", "tcp")
        if dns or f.tiny or not (f.few and f.grab) or f.intervals > options.one_off_intervals:
            continue
        others = {
            port
            for port, stats in probes.get((edge.source, edge.dest), ())
            if port != edge.port
            and stats.first_seen < f.stats.last_seen
            and f.stats.first_seen < stats.last_seen
        }
        if len(others) >= 2:
            why = (
                f"{_probe_text(f)}, seen once, in the interval in which this source probed "
                f"{len(others)} other ports of the destination: looks like a port the probe found open"
            )
            out.append(_group("one-off", edge.source, edge.dest, [edge], facts, why))
    return out


def _allowed_part(group: HeldBack, edges: Mapping[Edge, EdgeStats], include_denied: bool) -> HeldBack | None:
    """The group without its denied edges (unless ``include_denied``); None when nothing is left."""
    if include_denied:
        return group
    part = [e for e in group.edges if edges[e].verdict == "allow"]
    if len(part) == len(group.edges):
        return group
    return _group(group.kind, group.source, group.dest, part, edges, group.why) if part else None


def screen_edges(
    edges: Mapping[Edge, EdgeStats],
    activity: Activity,
    options: ScreenOptions,
    *,
    inventory: Inventory | None = None,
    exempt: Collection[Edge] = (),
    include_denied: bool = False,
) -> tuple[HeldBack, ...]:
    """The held-back groups among ``edges`` (none admitted yet), sorted; ``exempt`` edges are never held.

    Denied edges count towards a scan or a sweep (a scan meets closed doors too) but are held back
    only with ``include_denied``: otherwise they are left out as denied anyway.
    """
    on = set(options.classes)
    facts: dict[Edge, _Facts] = {}
    for edge, stats in edges.items():
        if edge in exempt:
            continue
        facts[edge] = _Facts(
            stats,
            activity.seen(edge).intervals,
            _tiny(stats, options),
            _few(stats, options),
            options.probe_bytes,
        )
    groups: list[HeldBack] = []
    denied_on = "denied-source" in on and options.denied_share > 0

    def denied_sources(fs: Mapping[Edge, _Facts], *, after_one_offs: bool = False) -> list[HeldBack]:
        held = {e for g in groups for e in g.edges}
        return _denied_sources(fs, edges, held, options, after_one_offs=after_one_offs)

    shapes: list[tuple[bool, Callable[[Mapping[Edge, _Facts]], list[HeldBack]]]] = [
        ("port-scan" in on and options.scan_ports > 0, lambda fs: _port_scans(fs, activity, options)),
        ("host-sweep" in on and options.sweep_hosts > 0, lambda fs: _host_sweeps(fs, activity, options)),
        (
            "no-listener" in on and inventory is not None,
            lambda fs: _no_listener(fs, inventory) if inventory else [],
        ),
        (denied_on, denied_sources),
        ("one-off" in on and options.one_off_intervals > 0, lambda fs: _one_offs(fs, activity, options)),
        ("one-off" in on and options.one_off_intervals > 0, lambda fs: _probe_companions(fs, edges, options)),
        # A denied source's one-off probes are held back too: counted with its denied connections,
        # they can make it a mostly-denied source whose probe seen in two intervals was not one-off.
        (denied_on, lambda fs: denied_sources(fs, after_one_offs=True)),
    ]
    for enabled, find in shapes:
        if not enabled:
            continue
        found = [_allowed_part(g, edges, include_denied) for g in find(facts)]
        groups.extend(g for g in found if g is not None)
        # An edge gets the first shape that fits: the later ones look only at what is left.
        taken = {e for g in found if g is not None for e in g.edges}
        facts = {e: f for e, f in facts.items() if e not in taken}
    return tuple(sorted(groups, key=lambda g: g.sort_key))


def _proto_name(proto: int | str) -> str:
    names = {v: k for k, v in _PROTOCOL_NUMBERS.items()}
    return names.get(proto, str(proto)) if isinstance(proto, int) else proto


def _probe_text(f: _Facts) -> str:
    conns = f.stats.connections
    return f"{conns} connection{'s' if conns != 1 else ''}, {_per_connection([f.stats])}"


def screen(
    reports: Sequence[Report],
    label_keys: Sequence[str],
    options: ScreenOptions,
    *,
    activity: Activity | None = None,
    inventory: Inventory | None = None,
    include_denied: bool = False,
) -> Screening:
    """Classify the edges of ``reports`` (workloads by ``label_keys``) and apply the admits.

    ``activity``: intervals and days per edge (:func:`~.activity.load_activity`); estimated from
    the reports when None. ``inventory``: the pods' declared ports, for ``no-listener``.
    ``include_denied``: denied edges may be held back too (they would become rules).
    Edges to the cluster DNS are never held back (allow-dns admits them for every pod).
    """
    options.check()
    workloads = build_workloads(reports, label_keys)
    edges = edge_map(reports, workloads)
    if activity is None:
        activity = activity_from_reports(reports, label_keys)
    label_sets: dict[Workload, list[Labels | None]] = defaultdict(list)
    for rep in reports:
        for ep in (rep.source, rep.dest):
            if ep.type == "wep" and ep.namespace is not None:
                label_sets[workloads[(ep.namespace, ep.name_aggr)]].append(ep.labels)
    labels = {w: intersect_labels(s) or () for w, s in label_sets.items()}
    exempt = {e for e in edges if is_cluster_dns(e.dest, e.port, labels)}
    groups = screen_edges(
        edges, activity, options, inventory=inventory, exempt=exempt, include_denied=include_denied
    )
    patterns = [parse_admit(text) for text in options.admit]
    used: set[str] = set()
    out: list[HeldBack] = []
    for group in groups:
        kept: list[Edge] = []
        for edge in group.edges:
            hit = [p.text for p in patterns if p.matches(edge)]
            used.update(hit)
            if hit or options.admit_all:
                kept.append(edge)
        held = [e for e in group.edges if e not in kept]
        # An --admit that keeps part of a group splits it: the rest stays held back.
        for part, admitted in ((held, False), (kept, True)):
            if part:
                out.append(_group(group.kind, group.source, group.dest, part, edges, group.why, admitted))
    unmatched = tuple(p.text for p in patterns if p.text not in used)
    return Screening(
        workloads, edges, activity, tuple(sorted(out, key=lambda g: (g.sort_key, g.admitted))), unmatched
    )
