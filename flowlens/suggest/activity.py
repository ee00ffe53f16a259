"""Stability evidence: on how many distinct export intervals and days each edge was seen.

An interval is one export interval of the flow logs (Calico Enterprise's files and Goldmane's
emitter: 5 minutes), taken as the most common record length of the window; a record belongs to
the interval its start falls in, so the records of several nodes for the same interval count
once. Days are UTC dates.

:func:`load_activity` counts them exactly in the store (``queries/suggest-activity.sql``, with a
``suggest_sides`` table that maps every logged side to its workload or external side, because
the edges are only known once the workloads are). :func:`activity_from_reports` estimates them
from report groups alone, for library callers without an engine: exact when every report is one
record, a lower bound otherwise (it never sums the intervals of two groups).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from flowlens.suggest.edges import Edge, External, Port, Side, edge_of, side_of
from flowlens.suggest.observed import LoggedEndpoint, Report, build_workloads

if TYPE_CHECKING:
    from flowlens.engine import Engine

#: The interval length assumed when no record says otherwise (Calico's default flush interval).
DEFAULT_INTERVAL_SECONDS = 300


@dataclass(frozen=True)
class Seen:
    """How often one edge was seen: distinct intervals and distinct UTC days."""

    intervals: int
    days: int


_SEEN_ONCE = Seen(1, 1)


@dataclass(frozen=True)
class Activity:
    """Intervals and days per edge, and of the whole window (intervals and days with any traffic)."""

    interval_seconds: int
    window_intervals: int
    window_days: int
    edges: Mapping[Edge, Seen] = field(default_factory=dict)
    exact: bool = True  # counted in the store, not estimated from report groups

    def seen(self, edge: Edge) -> Seen:
        """The edge's counts (at least one interval on one day: it was seen)."""
        return self.edges.get(edge, _SEEN_ONCE)


def _bucket(at: dt.datetime, seconds: int) -> int:
    return int(at.timestamp()) // seconds


def activity_from_reports(reports: Sequence[Report], label_keys: Sequence[str]) -> Activity:
    """Estimate the activity from report groups, for callers without an engine.

    A report of one record (hand-made reports, one interval per group) counts exactly: its
    interval and its day. A report aggregating several records covers at most ``records``
    intervals between its first and last time; the edge counts the largest of its reports (the
    groups of one edge may overlap, so they are never summed). The interval length is the most
    common length of the one-record reports, else :data:`DEFAULT_INTERVAL_SECONDS`.
    """
    if not reports:
        return Activity(DEFAULT_INTERVAL_SECONDS, 0, 0, {}, exact=False)
    lengths: dict[int, int] = defaultdict(int)
    for rep in reports:
        if rep.records == 1:
            lengths[max(1, round((rep.last_seen - rep.first_seen).total_seconds()))] += 1
    seconds = max(lengths.items(), key=lambda kv: (kv[1], kv[0]))[0] if lengths else DEFAULT_INTERVAL_SECONDS
    workloads = build_workloads(reports, label_keys)
    buckets: dict[Edge, set[int]] = defaultdict(set)
    spread: dict[Edge, int] = defaultdict(int)
    days: dict[Edge, set[dt.date]] = defaultdict(set)
    # The intervals of the window, as runs of buckets: a report of a year holds 100,000 of them,
    # too many to put in a set one by one.
    runs: list[tuple[int, int]] = []
    all_days: set[dt.date] = set()
    for rep in reports:
        edge = edge_of(rep, workloads)
        first, last = (
            _bucket(rep.first_seen, seconds),
            _bucket(rep.last_seen - dt.timedelta(seconds=1), seconds),
        )
        covered = range(first, max(first, last) + 1)
        buckets[edge].add(first)
        spread[edge] = max(spread[edge], min(rep.records, len(covered)))
        runs.append((first, covered[-1] if rep.records > 1 else first))
        span_days = (
            {rep.first_seen.date(), rep.last_seen.date()} if rep.records > 1 else {rep.first_seen.date()}
        )
        days[edge] |= span_days
        all_days |= span_days
    edges = {edge: Seen(max(len(buckets[edge]), spread[edge]), len(days[edge])) for edge in buckets}
    return Activity(seconds, _covered(runs), len(all_days), edges, exact=False)


def _covered(runs: list[tuple[int, int]]) -> int:
    """How many buckets the runs ``(first, last)`` (both included) cover together."""
    total, end = 0, None
    for first, last in sorted(runs):
        if end is not None and first <= end:
            if last > end:
                total += last - end
                end = last
            continue
        total += last - first + 1
        end = last
    return total


def _side_rows(reports: Sequence[Report], label_keys: Sequence[str]) -> tuple[pa.Table, list[Side]]:
    """The ``suggest_sides`` table and the side each ``side_id`` stands for."""
    workloads = build_workloads(reports, label_keys)
    logged: set[LoggedEndpoint] = set()
    for rep in reports:
        logged.add(rep.source)
        logged.add(rep.dest)
    ids: dict[Side, int] = {}
    sides: list[Side] = []
    rows: dict[tuple[str, str, str, str | None, bool], int] = {}
    for ep in sorted(logged, key=lambda e: (e.type, e.namespace or "", e.name_aggr, e.ip or "")):
        side = side_of(ep, workloads)
        if side not in ids:
            ids[side] = len(sides)
            sides.append(side)
        any_ip = not isinstance(side, External)
        key = (ep.type, ep.namespace or "-", ep.name_aggr, None if any_ip else ep.ip, any_ip)
        rows[key] = ids[side]
    table = pa.table(
        {
            "side_id": pa.array(list(rows.values()), pa.int32()),
            "type": pa.array([k[0] for k in rows], pa.string()),
            "namespace": pa.array([k[1] for k in rows], pa.string()),
            "name_aggr": pa.array([k[2] for k in rows], pa.string()),
            "ip": pa.array([k[3] for k in rows], pa.string()),
            "any_ip": pa.array([k[4] for k in rows], pa.bool_()),
        }
    )
    return table, sides


def load_activity(
    engine: Engine, reports: Sequence[Report], namespaces: Sequence[str], label_keys: Sequence[str]
) -> Activity:
    """Count, in the store, the intervals and days of every edge of ``reports`` (which
    :func:`flowlens.suggest.load_reports` read for ``namespaces`` from the same engine)."""
    if not reports:
        return Activity(DEFAULT_INTERVAL_SECONDS, 0, 0, {})
    table, sides = _side_rows(reports, label_keys)
    with engine.temporary_table("suggest_sides", table):
        rows = engine.run("suggest-activity", {"namespaces": list(namespaces)}).to_pylist()
    edges: dict[Edge, Seen] = {}
    seconds, window_intervals, window_days = DEFAULT_INTERVAL_SECONDS, 0, 0
    for row in rows:
        seen = Seen(int(row["intervals"]), int(row["days"]))
        if row["source_id"] is None:
            window_intervals, window_days = seen.intervals, seen.days
            seconds = int(row["interval_seconds"] or DEFAULT_INTERVAL_SECONDS)
            continue
        port = row["dest_port"]
        edge = Edge(
            sides[row["source_id"]],
            sides[row["dest_id"]],
            Port(str(row["proto"]), None if port is None else int(port)),
        )
        old = edges.get(edge)
        # One edge may come from several rows only if the store spells a protocol two ways.
        edges[edge] = (
            seen if old is None else Seen(max(old.intervals, seen.intervals), max(old.days, seen.days))
        )
    return Activity(seconds, window_intervals, window_days, edges)
