"""Traffic simulation: the model's connections, 5-minute interval after interval, turned into Felix
flow records.

Felix's rules are applied here (the reference is Calico's ``flowlog`` collector):

* one record per 5-minute export interval, per node, per reporter (``src`` at the source endpoint,
  ``dst`` at the destination; an address outside the cluster never reports);
* allowed traffic is aggregated at level 2 (IPs null, names ``-``, keyed by the aggregated name)
  and denied traffic at level 1 (source port null, IPs and names present);
* the labels of an aggregated record are the intersection over the endpoints it aggregates;
* counters are per interval: persistent connections continue with ``num_flows_started`` = 0;
* the policy trace of each record comes from a pluggable decision function, asked once per
  distinct flow (not once per record) and cached.

Nothing here reads the clock: the caller passes the start time. One seeded numpy generator
drives everything, so a seed gives the same records every time. The simulation is vectorised
(see :meth:`TrafficModel.simulate`): Python works per distinct flow, numpy per connection.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowlens.errors import UsageError
from flowlens.sample.model import ClusterModel, Connection
from flowlens.sample.records import (
    INTERVAL,
    Decide,
    Interval,
    Member,
    RecordKey,
    Verdict,
    common_labels,
    masked,
    members_of,
    service_of,
)
from flowlens.sample.schedule import RARE_SHARE, SLOTS_PER_DAY, cycle_table, node_offsets

#: intervals simulated together (the numpy arrays of one step); a constant, so the random
#: sequence, and the output, do not depend on how much is generated
CHUNK = 128
#: at most this many endpoints of one side are aggregated into one record (bits of an int64)
MAX_AGGREGATED = 62


@dataclass(eq=False, slots=True)
class _Pair:
    src: Member
    dst: Member
    port: int
    persistent: int
    lam: float  # new connections per interval at peak


@dataclass(eq=False, slots=True)
class _Plan:
    conn: Connection
    pairs: list[_Pair]
    net_sources: tuple[Member, ...] = ()  # for connections from outside: sampled per interval
    dst_members: tuple[Member, ...] = ()
    service: tuple[str, str, str, int] | None = None
    #: sampled connections: route id by (source, destination, port) index, -1 until needed
    route_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


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
            if len(members) >= MAX_AGGREGATED:
                raise UsageError(
                    f"connection {self.plan.conn.id!r}: more than {MAX_AGGREGATED} endpoints would be "
                    "aggregated into one record; split the workload or the connection"
                )
            i = index[key] = len(members)
            members.append(m)
        return 1 << i


# columns of the route table: a route is where one (source, destination, port) flow lands
(R_ALLOWED, R_SRC_GROUP, R_SRC_SBITS, R_SRC_DBITS, R_DST_GROUP, R_DST_SBITS, R_DST_DBITS) = range(7)
R_BYTES_OUT, R_BYTES_IN = 7, 8  # per connection (or per persistent connection and interval) at peak
R_SRC_HOST, R_DST_HOST = 9, 10  # the node reporting the record group (an index)
_R_COLUMNS = 11


def _seed_sequence(seed: int) -> np.random.SeedSequence:
    # any Python int (negative ones too) maps to its own non-negative entropy
    return np.random.SeedSequence(2 * seed if seed >= 0 else -2 * seed - 1)


class TrafficModel:
    """The model's connections prepared for simulation, with the decision cache.

    The simulation is vectorised: :data:`CHUNK` intervals at a time, every connection of every
    interval drawn in one numpy operation, the connections summed into Felix's record groups
    with a sort. Python work is left per distinct flow (decisions, routes, record templates),
    not per record.
    """

    def __init__(self, model: ClusterModel, decide: Decide, key_cache: int = 32768) -> None:
        self.model = model
        self._decide = decide
        # Record keys are cached up to ``key_cache`` of them (the cache is dropped when full:
        # rare keys such as one scanner address on one port would otherwise pile up); a record's
        # index is kept for good, so a re-created record renders the same bytes.
        self._key_cache = key_cache
        self._key_index: dict[tuple[int, int, int], int] = {}
        self._verdicts: dict[tuple[Any, ...], Verdict] = {}
        self._interned: dict[Verdict, Verdict] = {}
        self._group_ids: dict[tuple[Any, ...], int] = {}
        self.group_list: list[_Group] = []
        self._route_ids: dict[tuple[Any, ...], int] = {}
        self._routes = np.zeros((64, _R_COLUMNS), np.int64)
        self._n_routes = 0
        self._keys: dict[tuple[int, int, int], RecordKey] = {}
        self._widths = (1, 1)  # the most source and destination endpoints of a group
        self._hosts: dict[str, int] = {}
        self.plans = [self._plan(conn) for conn in model.connections]
        self.node_offsets = node_offsets(model)
        self.scan_plans = [p for p in self.plans if p.conn.scan > 0]
        # Plans whose traffic follows a schedule (every plan but the scans), and of those the
        # ones with fixed pairs and the ones whose sources outside the cluster are sampled.
        self._rate_plans = [p for p in self.plans if p.conn.scan <= 0]
        self._tables = (
            np.stack([cycle_table(p.conn.schedule) for p in self._rate_plans])
            if self._rate_plans
            else np.ones((0, SLOTS_PER_DAY))
        )
        self._rare = np.array(
            [i for i, p in enumerate(self._rate_plans) if p.conn.schedule == "rare"], np.int64
        )
        pairs = [(i, pair) for i, p in enumerate(self._rate_plans) for pair in p.pairs]
        self._pair_plan = np.array([i for i, _ in pairs], np.int64)
        self._pair_lam = np.array([pair.lam for _, pair in pairs], np.float64)
        self._pair_route = np.array(
            [self.route(self._rate_plans[i], pair.src, pair.dst, pair.port) for i, pair in pairs], np.int64
        )
        allowed = self._routes[self._pair_route, R_ALLOWED] if pairs else np.zeros(0, np.int64)
        # a denied connection is never established: nothing is kept open
        self._pair_persistent = np.array([pair.persistent for _, pair in pairs], np.int64) * allowed
        self._pair_allowed = allowed.astype(bool)
        # sampled plans: (plan, index of its schedule in the rate plans or -1 for a scan)
        self._sampled = [(p, i) for i, p in enumerate(self._rate_plans) if not p.pairs and p.net_sources]
        self._sampled += [(p, -1) for p in self.scan_plans]

    def _plan(self, conn: Connection) -> _Plan:
        srcs = members_of(self.model, conn.source, conn.id)
        if conn.exclude:
            left_out = {m.full_id for ref in conn.exclude for m in members_of(self.model, ref, conn.id)}
            srcs = tuple(m for m in srcs if m.full_id not in left_out)
        dsts = members_of(self.model, conn.dest, conn.id)
        service = service_of(self.model, conn, conn.ports[0])
        if srcs and srcs[0].type == "net":
            size = len(srcs) * len(dsts) * len(conn.ports)
            return _Plan(
                conn,
                [],
                net_sources=srcs,
                dst_members=dsts,
                service=service,
                route_ids=np.full(size, -1, np.int64),
            )
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

    def route(self, plan: _Plan, src: Member, dst: Member, port: int) -> int:
        """The id of a flow's route (a row of the route table): its verdicts and, per reporter,
        the record group and the bits of its two endpoints in that group (for the label
        intersection)."""
        rkey = (id(plan), src.full_id, dst.full_id, port)
        rid = self._route_ids.get(rkey)
        if rid is not None:
            return rid
        conn = plan.conn
        allowed = True
        row = [0, -1, 0, 0, -1, 0, 0, conn.bytes_out, 0, 0, 0]
        if src.reports:
            v = self.verdict(conn, "src", src, dst, port)
            allowed = v.action == "allow"
            gid = self._group(plan, "src", v, src, dst, port)
            g = self.group_list[gid]
            row[R_SRC_GROUP : R_SRC_DBITS + 1] = [gid, g.bit(src, "src"), g.bit(dst, "dst")]
            row[R_SRC_HOST] = self._host(src.node)
        if dst.reports and allowed:
            v = self.verdict(conn, "dst", src, dst, port)
            allowed = v.action == "allow"
            gid = self._group(plan, "dst", v, src, dst, port)
            g = self.group_list[gid]
            row[R_DST_GROUP : R_DST_DBITS + 1] = [gid, g.bit(src, "src"), g.bit(dst, "dst")]
            row[R_DST_HOST] = self._host(dst.node)
        for gid in (row[R_SRC_GROUP], row[R_DST_GROUP]):
            if gid >= 0:
                g = self.group_list[gid]
                self._widths = (
                    max(self._widths[0], len(g.src_members)),
                    max(self._widths[1], len(g.dst_members)),
                )
        row[R_ALLOWED] = int(allowed)
        row[R_BYTES_IN] = conn.bytes_in if allowed else 0
        rid = self._route_ids[rkey] = self._n_routes
        if rid == len(self._routes):
            self._routes = np.concatenate([self._routes, np.zeros_like(self._routes)])
        self._routes[rid] = row
        self._n_routes += 1
        return rid

    def _host(self, node: str | None) -> int:
        i = self._hosts.get(node or "-")
        if i is None:
            if len(self._hosts) >= 4096:
                raise UsageError("the sample generator handles at most 4096 nodes")
            i = self._hosts[node or "-"] = len(self._hosts)
        return i

    def _sampled_routes(
        self, plan: _Plan, u_src: np.ndarray, u_dst: np.ndarray, u_port: np.ndarray
    ) -> np.ndarray:
        """Route ids of connections from random outside addresses to random destinations and
        ports (three uniform draws per connection)."""
        srcs, dsts, ports = plan.net_sources, plan.dst_members, plan.conn.ports
        ns, nd, np_ = len(srcs), len(dsts), len(ports)
        k = ((u_src * ns).astype(np.int64) * nd + (u_dst * nd).astype(np.int64)) * np_ + (
            u_port * np_
        ).astype(np.int64)
        ids = plan.route_ids[k]
        missing = k[ids < 0]
        if len(missing):
            for j in np.unique(missing).tolist():
                si, rest = divmod(j, nd * np_)
                di, pi = divmod(rest, np_)
                plan.route_ids[j] = self.route(plan, srcs[si], dsts[di], ports[pi])
            ids = plan.route_ids[k]
        return ids

    # -- simulation ------------------------------------------------------------------------------

    def simulate(
        self,
        start: int,
        seed: int,
        count: int | None = None,
        fill_to: Callable[[int], int | None] | None = None,
    ) -> Iterator[Interval]:
        """Yield ``count`` intervals (without end when None) of records from ``start`` (epoch
        seconds, aligned). ``fill_to(i)``: add internet scans to interval ``i`` until it holds
        that many records (None: leave it as it is).

        Intervals are simulated :data:`CHUNK` at a time from one seeded generator, and a chunk is
        always simulated whole: a shorter run gives the first intervals of a longer one.
        """
        rng = np.random.Generator(np.random.PCG64(_seed_sequence(seed)))
        carry = np.zeros(len(self._pair_lam), np.int64)
        first = 0
        while count is None or first < count:
            n = CHUNK if count is None else min(CHUNK, count - first)
            wants = [fill_to(first + k) for k in range(n)] if fill_to is not None else []
            records, carry = self._chunk(start + first * INTERVAL, rng, carry, wants)
            for k in range(n):
                yield Interval(first + k, start + (first + k) * INTERVAL, records[k])
            first += CHUNK

    def _chunk(
        self, t0: int, rng: np.random.Generator, carry: np.ndarray, wants: Sequence[int | None]
    ) -> tuple[list[list[tuple[RecordKey, tuple[int, ...]]]], np.ndarray]:
        """Simulate CHUNK intervals from ``t0``: the records of each interval, and the pairs'
        short connections still open at the end."""
        K = CHUNK
        slots = (t0 // INTERVAL + np.arange(K)) % SLOTS_PER_DAY
        f = self._tables[:, slots].T  # (K, rate plans): each schedule's factor per interval
        if len(self._rare):
            f[:, self._rare] = rng.random((K, len(self._rare))) < RARE_SHARE
        conns = _Connections()

        # Connections between fixed pairs: new ones (rounded at random to whole connections),
        # pooled connections re-opened, short ones still open at the end of the interval (they
        # complete in the next one).
        u = rng.random((4, K, len(self._pair_lam)))
        pf = f[:, self._pair_plan]  # (K, pairs)
        persistent = self._pair_persistent
        started = (self._pair_lam * pf + u[0]).astype(np.int64)
        started += (persistent > 0) & (u[1] < 0.02)
        carry_out = (self._pair_allowed & (started > 0) & (u[2] < 0.08)).astype(np.int64)
        carry_in = np.concatenate([carry[None, :], carry_out[:-1]])
        kk, pp = np.nonzero((started > 0) | (persistent > 0) | (carry_in > 0))
        s, pers = started[kk, pp], persistent[pp]
        volume = (s + pers * pf[kk, pp]) * (0.6 + 0.8 * u[3, kk, pp])
        conns.add(kk, self._pair_route[pp], s, pers, volume, carry_in[kk, pp], carry_out[kk, pp])

        # Connections from outside the cluster: how many per interval, then a random source
        # address, destination and port for each.
        if self._sampled:
            expected = np.empty((K, len(self._sampled)))
            for j, (plan, r) in enumerate(self._sampled):
                expected[:, j] = (
                    plan.conn.rate * len(plan.net_sources) * f[:, r] if r >= 0 else plan.conn.scan
                )
            counts = (expected + rng.random(expected.shape)).astype(np.int64).ravel()
            cells = np.repeat(np.arange(counts.size), counts)
            sk, splan = np.divmod(cells, len(self._sampled))
            us = rng.random((4, len(cells)))
            routes = np.empty(len(cells), np.int64)
            for j, (plan, _) in enumerate(self._sampled):
                sel = np.flatnonzero(splan == j)
                if len(sel):
                    routes[sel] = self._sampled_routes(plan, us[0, sel], us[1, sel], us[2, sel])
            conns.add_new(sk, routes, 0.6 + 0.8 * us[3])

        if any(w is not None for w in wants):
            self._fill(rng, wants, conns)
        return self._records(conns), carry_out[-1]

    def _fill(self, rng: np.random.Generator, wants: Sequence[int | None], conns: _Connections) -> None:
        """Add internet scans to the intervals with fewer records than wanted (a record per
        group: a scan adds one when it lands in a group the interval does not have yet)."""
        k, route = conns.interval_routes()
        rows = self._routes[route]
        have: list[set[int]] = [set() for _ in range(CHUNK)]
        for side in (R_SRC_GROUP, R_DST_GROUP):
            m = rows[:, side] >= 0
            for i, g in zip(k[m].tolist(), rows[m, side].tolist(), strict=True):
                have[i].add(g)
        for i, want in enumerate(wants):
            if want is None or len(have[i]) >= want:
                continue
            if not self.scan_plans:
                raise UsageError(
                    "the model has no 'scan' connection to fill up --records over --days: "
                    "drop --days (the span then follows from --records) or add a scan connection"
                )
            plan = self.scan_plans[0]
            groups = have[i]
            limit = 20 * (want - len(groups)) + 1000
            drawn = 0
            while len(groups) < want:
                batch = min(max(2 * (want - len(groups)), 64), limit - drawn)
                if batch <= 0:
                    raise UsageError(
                        f"{want} records per 5 minutes is more than this model can make: use more --days"
                    )
                us = rng.random((4, batch))
                ids = self._sampled_routes(plan, us[0], us[1], us[2])
                lands = self._routes[ids][:, [R_SRC_GROUP, R_DST_GROUP]].tolist()
                take = batch
                for j, (gs, gd) in enumerate(lands):
                    if gs >= 0:
                        groups.add(gs)
                    if gd >= 0:
                        groups.add(gd)
                    if len(groups) >= want:
                        take = j + 1
                        break
                conns.add_new(np.full(take, i, np.int64), ids[:take], 0.6 + 0.8 * us[3, :take])
                drawn += batch

    def _records(self, conns: _Connections) -> list[list[tuple[RecordKey, tuple[int, ...]]]]:
        """The chunk's connections summed into records: one per interval and group (counters
        summed, the bits of the endpoints or-ed), by reporting node and group within each
        interval."""
        k, started, pers, volume, carry_in, carry_out, route = conns.columns()
        rows = self._routes[route]
        num_flows = pers + started + carry_in
        completed = started + carry_in - carry_out
        open_ = (pers > 0).astype(np.int64)
        b_out = (volume * rows[:, R_BYTES_OUT]).astype(np.int64) + 60 * started
        p_out = b_out // 900 + 2 * started + open_
        has_in = rows[:, R_BYTES_IN] > 0
        b_in = np.where(has_in, (volume * rows[:, R_BYTES_IN]).astype(np.int64) + 60 * started, 0)
        p_in = np.where(has_in, b_in // 1200 + 2 * started + open_, 0)
        # Each side counts bytes and packets as (in, out) of its own endpoint: the destination
        # receives what the source sends.
        at_src = np.stack([b_in, b_out, num_flows, started, completed, p_in, p_out], axis=1)
        at_dst = np.stack([b_out, b_in, num_flows, started, completed, p_out, p_in], axis=1)
        src = rows[:, R_SRC_GROUP] >= 0
        dst = rows[:, R_DST_GROUP] >= 0
        # sorted by interval, reporting node and group: the records of a node come together
        key = np.concatenate(
            [
                (k[src] << 44) | (rows[src, R_SRC_HOST] << 32) | rows[src, R_SRC_GROUP],
                (k[dst] << 44) | (rows[dst, R_DST_HOST] << 32) | rows[dst, R_DST_GROUP],
            ]
        )
        sbits = np.concatenate([rows[src, R_SRC_SBITS], rows[dst, R_DST_SBITS]])
        dbits = np.concatenate([rows[src, R_SRC_DBITS], rows[dst, R_DST_DBITS]])
        counters = np.concatenate([at_src[src], at_dst[dst]])
        if not len(key):
            return [[] for _ in range(CHUNK)]
        order = np.argsort(key, kind="stable")
        key = key[order]
        firsts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        sums = list(zip(*np.add.reduceat(counters[order], firsts, axis=0).T.tolist(), strict=True))
        gid = key[firsts] & 0xFFFFFFFF
        sb = np.bitwise_or.reduceat(sbits[order], firsts)
        db = np.bitwise_or.reduceat(dbits[order], firsts)
        bounds = np.searchsorted(key[firsts] >> 44, np.arange(CHUNK + 1)).tolist()
        # a chunk repeats the same records interval after interval: look each up once
        src_width, dst_width = self._widths
        if src_width + dst_width + len(self.group_list).bit_length() <= 63:
            distinct, inverse = np.unique(
                (gid << (src_width + dst_width)) | (sb << dst_width) | db, return_inverse=True
            )
            idents = np.stack(
                [
                    distinct >> (src_width + dst_width),
                    distinct >> dst_width & ((1 << src_width) - 1),
                    distinct & ((1 << dst_width) - 1),
                ],
                axis=1,
            )
        else:
            idents, inverse = np.unique(np.stack([gid, sb, db], axis=1), axis=0, return_inverse=True)
        rks = self._record_keys(idents.tolist())
        if len(rks) == 1:
            rks = rks * len(inverse)
        else:
            rks = list(operator.itemgetter(*inverse.ravel().tolist())(rks))
        return [list(zip(rks[a:b], sums[a:b], strict=True)) for a, b in itertools.pairwise(bounds)]

    def _record_keys(self, idents: list[list[int]]) -> list[RecordKey]:
        """The record of each (group, source bits, destination bits)."""
        keys = self._keys
        if len(keys) > self._key_cache:
            keys.clear()
        out = []
        for gid, sb, db in idents:
            key = (gid, sb, db)
            rk = keys.get(key)
            if rk is None:
                g = self.group_list[gid]
                srcs = tuple(m for i, m in enumerate(g.src_members) if sb >> i & 1)
                dsts = tuple(m for i, m in enumerate(g.dst_members) if db >> i & 1)
                index = self._key_index.setdefault(key, len(self._key_index))
                rk = keys[key] = self._record_key(g, srcs, dsts, index)
            out.append(rk)
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
            src=masked(src0) if allowed else src0,
            dst=masked(dst0) if allowed else dst0,
            src_labels=common_labels(src_members),
            dst_labels=common_labels(dst_members),
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


class _Connections:
    """The connections of one chunk, as columns: interval, route, connections started, open
    persistent connections, volume (a multiple of the route's bytes per connection), short
    connections carried in from the last interval and carried out to the next."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(
        self,
        k: np.ndarray,
        route: np.ndarray,
        started: np.ndarray,
        persistent: np.ndarray,
        volume: np.ndarray,
        carry_in: np.ndarray,
        carry_out: np.ndarray,
    ) -> None:
        self.parts.append((k, started, persistent, volume, carry_in, carry_out, route))

    def add_new(self, k: np.ndarray, route: np.ndarray, jitter: np.ndarray) -> None:
        """One new connection each, opened and closed within the interval."""
        one, zero = np.ones(len(k), np.int64), np.zeros(len(k), np.int64)
        self.add(k, route, one, zero, jitter, zero, zero)

    def interval_routes(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([p[0] for p in self.parts]), np.concatenate([p[6] for p in self.parts])

    def columns(self) -> list[np.ndarray]:
        return [np.concatenate([p[i] for p in self.parts]) for i in range(7)]
