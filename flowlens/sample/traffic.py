"""Traffic simulation: the model's connections, interval by interval, turned into Felix flow records.

Felix's rules are applied here (the reference is Calico's ``flowlog`` collector):

* one record per 5-minute export interval, per node, per reporter (``src`` at the source endpoint,
  ``dst`` at the destination; an address outside the cluster never reports);
* allowed traffic is aggregated at level 2 (IPs null, names ``-``, keyed by the aggregated name)
  and denied traffic at level 1 (source port null, IPs and names present);
* the labels of an aggregated record are the intersection over the endpoints it aggregates;
* counters are per interval: persistent connections continue with ``num_flows_started`` = 0;
* the policy trace of each record comes from a pluggable decision function, asked once per
  distinct flow (not once per record) and cached.

Nothing here reads the clock: the caller passes the start time. One seeded ``random.Random``
drives everything, so a seed gives the same records every time.
"""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowlens.errors import UsageError
from flowlens.formats.hits import PolicyHit, parse_hit
from flowlens.sample.model import ClusterModel, Connection, External, Node, Pod, resolve_ref

INTERVAL = 300  # flowLogsFlushInterval default, seconds
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def subnet_type(ip: str) -> str:
    """Calico's name for an address outside the cluster: ``pvt`` (RFC 1918) or ``pub``."""
    addr = ipaddress.ip_address(ip)
    return "pvt" if any(addr in n for n in _PRIVATE) else "pub"


@dataclass(frozen=True, slots=True)
class Member:
    """One end of a connection: a pod, a node's host endpoint or an address outside the cluster."""

    type: str  # wep | hep | net
    name: str  # pod name, host endpoint name, '-' for net
    name_aggr: str  # pod generateName + '*', hostname, pvt/pub
    namespace: str  # '-' when not namespaced
    ip: str
    labels: Mapping[str, str]
    node: str | None  # the node that reports for it
    service_account: str | None = None
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, port)
    domains: tuple[str, ...] = ()
    #: grouping identities: aggregated (level 2) and full (level 1); set in __post_init__
    agg_id: tuple[str, ...] = ()
    full_id: tuple[str, ...] = ()
    reports: bool = False  # workloads and host endpoints report; outside addresses do not

    def __post_init__(self) -> None:
        object.__setattr__(self, "agg_id", (self.type, self.namespace, self.name_aggr))
        object.__setattr__(self, "full_id", (self.type, self.namespace, self.name, self.ip))
        object.__setattr__(self, "reports", self.type in ("wep", "hep"))


def pod_member(pod: Pod) -> Member:
    return Member(
        "wep",
        pod.name,
        pod.aggregated_name,
        pod.namespace,
        pod.ip,
        pod.labels,
        pod.node,
        pod.service_account,
        tuple((p.name, p.protocol, p.port) for p in pod.ports if p.name),
    )


def node_member(node: Node) -> Member:
    return Member("hep", node.host_endpoint, node.name, "-", node.ip, node.hep_labels, node.name)


def net_member(ext: External, ip: str) -> Member:
    return Member("net", "-", subnet_type(ip), "-", ip, {}, None, domains=ext.domains)


@dataclass(frozen=True)
class Verdict:
    """The decision at one reporter: the action and the policy traces Calico writes."""

    action: str  # allow | deny
    enforced: tuple[PolicyHit, ...]
    pending: tuple[PolicyHit, ...]


#: (connection, reporter, source, destination, proto, port) -> Verdict
Decide = Callable[[Connection, str, Member, Member, str, int], Verdict]


def verdict_from_hits(enforced: Sequence[PolicyHit], pending: Sequence[PolicyHit]) -> Verdict:
    if not enforced:
        raise ValueError("an enforced trace needs at least one hit")
    action = enforced[-1].action
    if action not in ("allow", "deny"):
        raise ValueError(f"a trace must end in allow or deny, not {action!r}")
    return Verdict(action, tuple(enforced), tuple(pending))


def declared_decisions(model: ClusterModel) -> Decide:
    """Decisions as the model declares them (``expect`` of each connection)."""
    table: dict[tuple[str, str], Verdict] = {}
    for c in model.connections:
        for reporter, trace in c.expect.items():
            table[(c.id, reporter)] = verdict_from_hits(
                [parse_hit(h) for h in trace.enforced], [parse_hit(h) for h in trace.pending]
            )

    def decide(conn: Connection, reporter: str, src: Member, dst: Member, proto: str, port: int) -> Verdict:
        try:
            return table[(conn.id, reporter)]
        except KeyError:
            raise UsageError(
                f"connection {conn.id!r} declares no expected trace for reporter {reporter!r}: "
                "add expect." + reporter + " to the cluster model"
            ) from None

    return decide


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class RecordKey:
    """Everything of a record that does not change from one interval to the next.

    Renderers cache their templates on it (``cache``), so a record costs one string format.
    """

    reporter: str
    action: str
    src: Member  # masked view (level 2: name '-', ip '') for allowed records
    dst: Member
    src_labels: tuple[str, ...]  # 'k=v', intersection over the aggregated endpoints
    dst_labels: tuple[str, ...]
    dest_port: int
    proto: str
    service: tuple[str, str, str, int] | None  # namespace, name, port name, port number
    domains: tuple[str, ...]
    verdict: Verdict
    host: str
    index: int  # creation order; also varies the (random in Felix) order of trace entries
    offset: int = 0  # the reporting node's flush second within the interval
    gm_key: tuple[Any, ...] = ()  # identity across nodes, for Goldmane aggregation
    ent_tpl: tuple[str, str] | None = None  # rendered static parts (see render.py)
    es_tpl: tuple[str, str] | None = None
    cache: dict[str, Any] = field(default_factory=dict)


# counters, relative to the reporting endpoint
BYTES_IN, BYTES_OUT, PACKETS_IN, PACKETS_OUT, NUM_FLOWS, STARTED, COMPLETED = range(7)


@dataclass(frozen=True)
class Interval:
    """The records Felix exports for one 5-minute interval (all nodes)."""

    index: int
    start: int  # epoch seconds of the interval (aligned); nodes add their own offset
    records: list[tuple[RecordKey, list[int]]]


def _labels_tuple(members: Sequence[Member]) -> tuple[str, ...]:
    first = members[0].labels
    common = {k: v for k, v in first.items() if all(m.labels.get(k) == v for m in members[1:])}
    return tuple(f"{k}={v}" for k, v in common.items())


def _masked(m: Member) -> Member:
    """The level-2 view: no IP, no name (Felix keys such records by the aggregated name)."""
    return Member(m.type, "-", m.name_aggr, m.namespace, "", m.labels, m.node)


def _cycle(schedule: str, minute_of_day: int) -> float:
    hour = minute_of_day / 60.0
    if schedule == "flat":
        return 1.0
    if schedule == "nightly":
        return 1.0 if 60 <= minute_of_day < 180 else 0.0
    if schedule == "office":
        return 1.0 if 480 <= minute_of_day < 1080 else 0.0
    # peak at 14:00 UTC, a quiet night that never quite stops
    if 6.0 <= hour <= 22.0:
        return 0.06 + 0.94 * math.sin(math.pi * (hour - 6.0) / 16.0) ** 1.5
    return 0.06


def node_offsets(model: ClusterModel) -> dict[str, int]:
    """Each node's Felix flushes at its own second within the 5 minutes."""
    return {n.name: (37 + 53 * i) % INTERVAL for i, n in enumerate(model.nodes)}


_CYCLES: dict[str, tuple[float, ...]] = {}


def _cycle_at(schedule: str, minute_of_day: int) -> float:
    table = _CYCLES.get(schedule)
    if table is None:
        table = _CYCLES[schedule] = tuple(_cycle(schedule, m) for m in range(0, 1440, INTERVAL // 60))
    return table[minute_of_day * 60 // INTERVAL]


@dataclass(eq=False, slots=True)
class _Route:
    """Where one (source, destination, port) flow lands: its verdicts and, per reporter, the record
    group and the bits of its two endpoints in that group (for the label intersection)."""

    allowed: bool
    src_group: int | None  # index into TrafficModel.group_list
    src_bits: tuple[int, int]
    dst_group: int | None
    dst_bits: tuple[int, int]
    bytes_out: int  # per connection (or per persistent connection and interval) at peak
    bytes_in: int


@dataclass(eq=False, slots=True)
class _Pair:
    src: Member
    dst: Member
    port: int
    persistent: int
    lam: float  # new connections per interval at peak
    route: _Route | None = None
    carry: int = 0  # short connections still open at the end of the last interval


@dataclass(eq=False, slots=True)
class _Plan:
    conn: Connection
    pairs: list[_Pair]
    net_sources: tuple[Member, ...] = ()  # for connections from outside: sampled per interval
    dst_members: tuple[Member, ...] = ()
    service: tuple[str, str, str, int] | None = None
    routes: list[_Route | None] = field(default_factory=list)  # sampled connections, by index


@dataclass(eq=False, slots=True)
class _Group:
    """The static part of a record group: who reports, with which verdict, and its endpoints."""

    plan: _Plan
    reporter: str
    verdict: Verdict
    port: int
    src_members: list[Member] = field(default_factory=list)
    dst_members: list[Member] = field(default_factory=list)
    src_index: dict[tuple[str, ...], int] = field(default_factory=dict)
    dst_index: dict[tuple[str, ...], int] = field(default_factory=dict)

    def bit(self, m: Member, side: str) -> int:
        index, members = (
            (self.src_index, self.src_members) if side == "src" else (self.dst_index, self.dst_members)
        )
        key = m.full_id if m.type != "net" else ()
        i = index.get(key)
        if i is None:
            i = index[key] = len(members)
            members.append(m)
        return 1 << i


def _members(model: ClusterModel, ref: str, cid: str) -> tuple[Member, ...]:
    kind, items = resolve_ref(model, ref, cid)
    if kind == "wep":
        return tuple(pod_member(p) for p in items)
    if kind == "hep":
        return tuple(node_member(n) for n in items)
    ext = items[0]
    return tuple(net_member(ext, ip) for ip in ext.addresses)


def _service(model: ClusterModel, conn: Connection, port: int) -> tuple[str, str, str, int] | None:
    if not conn.service:
        return None
    svc = model.service(conn.service)
    sp = svc.port_for(port, conn.proto)
    if sp is None:
        return None
    return (svc.namespace, svc.name, sp.name or "-", sp.port)


class TrafficModel:
    """The model's connections prepared for simulation, with the decision cache."""

    def __init__(self, model: ClusterModel, decide: Decide, key_cache: int = 8192) -> None:
        self.model = model
        self._decide = decide
        # Rendered records are cached up to ``key_cache`` of them (the cache is dropped when full:
        # rare keys such as one scanner address on one port would otherwise pile up); a record's
        # index is kept for good, so a re-created record renders the same bytes.
        self._key_cache = key_cache
        self._key_index: dict[tuple[int, int, int], int] = {}
        self._verdicts: dict[tuple[Any, ...], Verdict] = {}
        self._interned: dict[Verdict, Verdict] = {}
        self._group_ids: dict[tuple[Any, ...], int] = {}
        self.group_list: list[_Group] = []
        self._routes: dict[tuple[Any, ...], _Route] = {}
        self._keys: dict[tuple[int, int, int], RecordKey] = {}
        self.plans = [self._plan(conn) for conn in model.connections]
        self.node_offsets = node_offsets(model)
        self.scan_plans = [p for p in self.plans if p.conn.scan > 0]

    def _plan(self, conn: Connection) -> _Plan:
        srcs = _members(self.model, conn.source, conn.id)
        if conn.exclude:
            left_out = {m.full_id for ref in conn.exclude for m in _members(self.model, ref, conn.id)}
            srcs = tuple(m for m in srcs if m.full_id not in left_out)
        dsts = _members(self.model, conn.dest, conn.id)
        service = _service(self.model, conn, conn.ports[0])
        if srcs[0].type == "net":
            return _Plan(conn, [], net_sources=srcs, dst_members=dsts, service=service)
        pairs = []
        for s in srcs:
            targets = [d for d in dsts if d.ip != s.ip]
            for j, d in enumerate(targets):
                share = conn.persistent // len(targets) + (1 if j < conn.persistent % len(targets) else 0)
                for port in conn.ports:
                    pairs.append(_Pair(s, d, port, share, conn.rate / len(targets)))
        return _Plan(conn, pairs, dst_members=dsts, service=service)

    # -- decisions -----------------------------------------------------------------------------

    def verdict(self, conn: Connection, reporter: str, src: Member, dst: Member, port: int) -> Verdict:
        key = (conn.id, reporter, src.full_id, dst.full_id, conn.proto, port)
        v = self._verdicts.get(key)
        if v is None:
            v = self._decide(conn, reporter, src, dst, conn.proto, port)
            # equal verdicts share one object: records are grouped by its identity
            v = self._interned.setdefault(v, v)
            self._verdicts[key] = v
        return v

    def distinct_flows(self) -> Iterator[tuple[Connection, str, Member, Member, int]]:
        """Every (connection, reporter, source, destination, port) the simulation can produce."""
        for plan in self.plans:
            conn = plan.conn
            if plan.pairs:
                combos = [(p.src, p.dst, p.port) for p in plan.pairs]
            else:
                combos = [
                    (s, d, port) for s in plan.net_sources for d in plan.dst_members for port in conn.ports
                ]
            for s, d, port in combos:
                src_ok = True
                if s.reports:
                    yield conn, "src", s, d, port
                    src_ok = self.verdict(conn, "src", s, d, port).action == "allow"
                if d.reports and src_ok:
                    yield conn, "dst", s, d, port

    # -- routes and groups ------------------------------------------------------------------------

    def _group(self, plan: _Plan, reporter: str, v: Verdict, src: Member, dst: Member, port: int) -> int:
        """The record group of a flow at one reporter: what Felix aggregates into one record."""
        ok = v.action == "allow"
        gk = (
            reporter,
            id(v),
            src.agg_id if ok else src.full_id,
            src.node if reporter == "src" else dst.node,
            dst.agg_id if ok else dst.full_id,
            port,
            plan.conn.proto,
            plan.service,
        )
        gid = self._group_ids.get(gk)
        if gid is None:
            gid = self._group_ids[gk] = len(self.group_list)
            self.group_list.append(_Group(plan, reporter, v, port))
        return gid

    def route(self, plan: _Plan, src: Member, dst: Member, port: int) -> _Route:
        rkey = (id(plan), src.full_id, dst.full_id, port)
        r = self._routes.get(rkey)
        if r is not None:
            return r
        conn = plan.conn
        allowed = True
        src_group = dst_group = None
        src_bits = dst_bits = (0, 0)
        if src.reports:
            v = self.verdict(conn, "src", src, dst, port)
            allowed = v.action == "allow"
            src_group = self._group(plan, "src", v, src, dst, port)
            g = self.group_list[src_group]
            src_bits = (g.bit(src, "src"), g.bit(dst, "dst"))
        if dst.reports and allowed:
            v = self.verdict(conn, "dst", src, dst, port)
            allowed = v.action == "allow"
            dst_group = self._group(plan, "dst", v, src, dst, port)
            g = self.group_list[dst_group]
            dst_bits = (g.bit(src, "src"), g.bit(dst, "dst"))
        r = self._routes[rkey] = _Route(
            allowed, src_group, src_bits, dst_group, dst_bits, conn.bytes_out, conn.bytes_in if allowed else 0
        )
        return r

    # -- simulation ------------------------------------------------------------------------------

    def simulate(self, start: int, intervals: int, rng: random.Random) -> Iterator[Interval]:
        """Yield ``intervals`` intervals of records from ``start`` (epoch seconds, aligned)."""
        for i in range(intervals):
            yield self.interval(i, start + i * INTERVAL, rng)

    def interval(self, index: int, t0: int, rng: random.Random, fill_to: int | None = None) -> Interval:
        """One interval's records. ``fill_to``: add internet scans until there are that many."""
        minute = (t0 % 86400) // 60
        rnd = rng.random
        groups: dict[int, list[int]] = {}
        cycle: dict[str, float] = {}
        for plan in self.plans:
            conn = plan.conn
            if conn.scan > 0:
                continue
            if conn.schedule == "rare":
                if rnd() >= 0.03:
                    continue
                f = 1.0
            else:
                f = cycle.get(conn.schedule, -1.0)
                if f < 0:
                    f = cycle[conn.schedule] = _cycle_at(conn.schedule, minute)
            if plan.pairs:
                emit = self._emit
                for pair in plan.pairs:
                    lam = pair.lam * f
                    started = int(lam + rnd()) if lam > 0 else 0
                    if started or pair.persistent or pair.carry:
                        route = pair.route
                        if route is None:
                            route = pair.route = self.route(plan, pair.src, pair.dst, pair.port)
                        emit(groups, route, started, pair, f, rnd)
            elif f > 0:
                n = int(conn.rate * len(plan.net_sources) * f + rnd())
                if n:
                    self._sample(groups, plan, n, f, rnd)
        for plan in self.scan_plans:
            n = int(plan.conn.scan + rnd())
            if n:
                self._sample(groups, plan, n, 1.0, rnd)
        if fill_to is not None and len(groups) < fill_to:
            self._fill(groups, fill_to, rnd)
        return Interval(index, t0, self.finish(groups))

    def _fill(self, groups: dict[int, list[int]], want: int, rnd: Callable[[], float]) -> None:
        if not self.scan_plans:
            raise UsageError(
                "the model has no 'scan' connection to fill up --records over --days: "
                "drop --days (the span then follows from --records) or add a scan connection"
            )
        plan = self.scan_plans[0]
        attempts = 0
        limit = 20 * (want - len(groups)) + 1000
        while len(groups) < want:
            attempts += 1
            if attempts > limit:
                raise UsageError(
                    f"{want} records per 5 minutes is more than this model can make: use more --days"
                )
            self._sample(groups, plan, 1, 1.0, rnd)

    def _sample(
        self,
        groups: dict[int, list[int]],
        plan: _Plan,
        n: int,
        f: float,
        rnd: Callable[[], float],
    ) -> None:
        """``n`` connections from random outside addresses to random destinations and ports."""
        srcs, dsts, ports = plan.net_sources, plan.dst_members, plan.conn.ports
        ns, nd, np_ = len(srcs), len(dsts), len(ports)
        routes = plan.routes
        if not routes:
            routes.extend([None] * (ns * nd * np_))
        emit = self._emit
        for _ in range(n):
            si, di = int(rnd() * ns), int(rnd() * nd)
            pi = int(rnd() * np_) if np_ > 1 else 0
            k = (si * nd + di) * np_ + pi
            route = routes[k]
            if route is None:
                route = routes[k] = self.route(plan, srcs[si], dsts[di], ports[pi])
            emit(groups, route, 1, None, f, rnd)

    @staticmethod
    def _emit(
        groups: dict[int, list[int]],
        route: _Route,
        started: int,
        pair: _Pair | None,
        f: float,
        rnd: Callable[[], float],
    ) -> None:
        allowed = route.allowed
        persistent = carry_in = carry_out = 0
        jitter = 0.6 + 0.8 * rnd()
        if pair is not None:
            carry_in = pair.carry
            if allowed:  # a denied connection is never established: nothing is kept open
                persistent = pair.persistent
                if persistent and rnd() < 0.02:
                    started += 1  # a pooled connection was re-opened
                if started and rnd() < 0.08:
                    carry_out = 1
            pair.carry = carry_out
        volume = (started + persistent * f) * jitter
        b_out = int(volume * route.bytes_out) + 60 * started
        p_out = b_out // 900 + 2 * started + (1 if persistent else 0)
        if route.bytes_in:
            b_in = int(volume * route.bytes_in) + 60 * started
            p_in = b_in // 1200 + 2 * started + (1 if persistent else 0)
        else:
            b_in = p_in = 0
        num_flows = persistent + started + carry_in
        completed = started + carry_in - carry_out
        # Each side counts bytes and packets as (in, out) of its own endpoint.
        if route.src_group is not None:
            at_src = (b_in, b_out, p_in, p_out, num_flows, started, completed)
            _accumulate(groups, route.src_group, route.src_bits, at_src)
        if route.dst_group is not None:
            # the destination receives what the source sends
            at_dst = (b_out, b_in, p_out, p_in, num_flows, started, completed)
            _accumulate(groups, route.dst_group, route.dst_bits, at_dst)

    def finish(self, groups: dict[int, list[int]]) -> list[tuple[RecordKey, list[int]]]:
        """Turn the interval's groups into records (one per group)."""
        out = []
        keys = self._keys
        if len(keys) > self._key_cache:
            keys.clear()
        for gid, c in groups.items():
            key = (gid, c[7], c[8])
            rk = keys.get(key)
            if rk is None:
                g = self.group_list[gid]
                srcs = tuple(m for i, m in enumerate(g.src_members) if c[7] >> i & 1)
                dsts = tuple(m for i, m in enumerate(g.dst_members) if c[8] >> i & 1)
                index = self._key_index.setdefault(key, len(self._key_index))
                rk = keys[key] = self._record_key(g, srcs, dsts, index)
            out.append((rk, c))
        return out

    def _record_key(
        self, g: _Group, src_members: tuple[Member, ...], dst_members: tuple[Member, ...], index: int
    ) -> RecordKey:
        conn, verdict, reporter = g.plan.conn, g.verdict, g.reporter
        src0, dst0 = src_members[0], dst_members[0]
        allowed = verdict.action == "allow"
        rk = RecordKey(
            reporter=reporter,
            action=verdict.action,
            src=_masked(src0) if allowed else src0,
            dst=_masked(dst0) if allowed else dst0,
            src_labels=_labels_tuple(src_members),
            dst_labels=_labels_tuple(dst_members),
            dest_port=g.port,
            proto=conn.proto,
            service=g.plan.service,
            domains=tuple(sorted({d for m in dst_members for d in m.domains})),
            verdict=verdict,
            host=(src0 if reporter == "src" else dst0).node or "-",
            index=index,
        )
        rk.offset = self.node_offsets.get(rk.host, 0)
        rk.gm_key = (
            reporter,
            id(verdict),
            src0.agg_id,
            dst0.agg_id,
            g.port,
            conn.proto,
            g.plan.service,
        )
        return rk


def _accumulate(
    groups: dict[int, list[int]], key: int, bits: tuple[int, int], counters: tuple[int, ...]
) -> None:
    """Add one connection's counters (bytes in, bytes out, packets in, packets out, flows,
    started, completed)
    and its reporter bits to the record group ``key``."""
    c = groups.get(key)
    if c is None:
        groups[key] = [*counters, bits[0], bits[1]]
        return
    for i, value in enumerate(counters):
        c[i] += value
    c[7] |= bits[0]
    c[8] |= bits[1]
