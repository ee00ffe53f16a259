"""Stability evidence: intervals and days per edge counted in the store, --min-days, THIN marks and
the summary's weakest-first ranking."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.activity import activity_from_reports
from flowlens.suggest.edges import edge_map
from flowlens.suggest.observed import DEFAULT_LABEL_KEYS, build_workloads
from flowlens.suggest.proof import prove
from flowlens.suggest.summary import build_summary
from tests.factories import T0, flow_row, write_store
from tests.suggest.helpers import observed_of, pod_side, report_rows
from tests.suggest.helpers.probes import steady_rows

A = pod_side("source", "a", "shop")
B = pod_side("dest", "b", "shop")
C = pod_side("dest", "c", "shop")


def _row(source, dest, start: dt.datetime, *, host: str = "node-1", labels: dict | None = None, **kw):
    side = dict(source)
    if labels is not None:
        side["source_labels"] = labels
    return flow_row(
        **side, **dest, start_time=start, end_time=start + dt.timedelta(minutes=5), host=host, **kw
    )


def test_intervals_and_days_are_counted_once_across_nodes_reporters_and_label_variants(
    tmp_path: Path,
) -> None:
    rows = []
    for day in range(3):
        for slot in range(4):
            start = T0 + dt.timedelta(days=day, minutes=5 * slot)
            for node, offset in (("node-1", 0), ("node-2", 7)):  # two nodes flush a few seconds apart
                for reporter in ("src", "dst"):
                    rows.append(
                        _row(A, B, start + dt.timedelta(seconds=offset), host=node, reporter=reporter)
                    )
    # one record whose labels were intersected differently lands in a report group of its own
    rows.append(_row(A, B, T0, labels={"app": "a", "pod-template-hash": "5d8f7b9c6", "debug": "1"}))
    rows.append(_row(A, C, T0 + dt.timedelta(days=1)))
    store = write_store(tmp_path / "store", rows)
    reports, activity = observed_of(store)
    assert activity.exact and activity.interval_seconds == 300
    workloads = build_workloads(reports, DEFAULT_LABEL_KEYS)
    seen = {e.dest.display: activity.seen(e) for e in edge_map(reports, workloads)}
    assert (seen["app=b"].intervals, seen["app=b"].days) == (12, 3)
    assert (seen["app=c"].intervals, seen["app=c"].days) == (1, 1)
    assert (activity.window_intervals, activity.window_days) == (12, 3)
    assert len([r for r in reports if r.dest.name_aggr.startswith("b-")]) > 2  # several groups, counted once


def test_the_estimate_from_one_record_reports_is_exact() -> None:
    rows = [_row(A, B, T0 + dt.timedelta(days=d, minutes=5 * s)) for d in range(2) for s in range(3)]
    reports = report_rows(rows)
    activity = activity_from_reports(reports, DEFAULT_LABEL_KEYS)
    [edge] = edge_map(reports, build_workloads(reports, DEFAULT_LABEL_KEYS))
    assert (activity.seen(edge).intervals, activity.seen(edge).days) == (6, 2)
    assert not activity.exact and activity.interval_seconds == 300


def test_every_rule_says_how_steadily_it_was_seen_and_thin_rules_are_marked() -> None:
    rows = steady_rows(A, B, 80, intervals=24) + steady_rows(A, C, 443, intervals=2)
    text = suggest(report_rows(rows), SuggestOptions(("shop",))).stream()
    assert "to app=b (shop) tcp/80: 120 connections, 480000 bytes, seen on 1 day in 24 intervals" in text
    assert (
        "# THIN: to app=c (shop) tcp/443 was seen in only 2 intervals on 1 day (fewer than 6): check it before enforcing"
    ) in text
    assert text.count("THIN:") == 2  # c's ingress rule and a's egress rule to c
    relaxed = suggest(report_rows(rows), SuggestOptions(("shop",), thin_intervals=2)).stream()
    assert "THIN:" not in relaxed


def test_min_days_leaves_out_edges_seen_on_fewer_days() -> None:
    rows = steady_rows(A, B, 80, intervals=3, every=dt.timedelta(days=1)) + steady_rows(
        A, C, 443, intervals=12
    )
    options = SuggestOptions(("shop",), min_days=2)
    reports = report_rows(rows)
    s = suggest(reports, options)
    left = {(x.peer, x.reason) for x in s.plan.namespaces[0].left_out}
    assert ("to app=c (shop)", "seen on 1 day, fewer than --min-days 2") in left
    assert all("app=b" not in peer for peer, _ in left)
    result = prove(reports, options, suggestion=s)
    assert result.broken == ()
    assert {e.reason for e in result.expected} == {"left out: seen on 1 day, fewer than --min-days 2"}


def test_the_summary_ranks_the_weakest_rules_first() -> None:
    rows = (
        steady_rows(A, B, 80, intervals=24)
        + steady_rows(A, C, 443, intervals=3)
        + steady_rows(pod_side("source", "d", "shop"), B, 80, intervals=3, every=dt.timedelta(days=1))
    )
    reports = report_rows(rows)
    options = SuggestOptions(("shop",))
    s = suggest(reports, options)
    summary = build_summary(options, s, prove(reports, options, suggestion=s), "test")
    ranked = [(r["days"], r["intervals"]) for r in summary.weakest_rules]
    # a rule is as sure as its least steady evidence: fewest days first, then fewest intervals
    assert ranked == [(1, 3), (1, 3), (1, 24), (1, 24), (3, 3)]
    assert [bool(r["thin"]) for r in summary.weakest_rules] == [True, True, False, False, True]
