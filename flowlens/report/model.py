"""One report: a window's coverage, the change since the previous run and the trend, as one object.

:func:`build_report` assembles it; :func:`report_to_dict` gives the JSON document that every
format renders (HTML and Markdown use the same dict, so they carry the same numbers). The JSON
layout is versioned (:data:`SCHEMA_VERSION`) and described by ``flowlens/report/schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from flowlens.report.metrics import (
    DEFINITIONS,
    EXPOSED,
    PROTECTED,
    Coverage,
    NamespaceCoverage,
    State,
    Traffic,
    WorkloadCoverage,
)
from flowlens.report.waiting import DEFINITION as WAITING_DEFINITION
from flowlens.report.waiting import Waiting
from flowlens.report.window import Window

SCHEMA_ID = "flowlens.report"
SCHEMA_VERSION = 1
#: Lists of new talkers, destinations and denied flows keep at most this many items (the count is exact).
CHANGE_ITEMS = 50
DEFAULT_DENY_YES = ("enforced", "implied")


@dataclass(frozen=True)
class HistoryEntry:
    """The headline numbers of one run, as kept in ``history.jsonl``."""

    label: str
    kind: str
    start: str
    end: str
    score: float | None
    score_ingress: float | None
    score_egress: float | None
    ingress_coverage: float | None
    egress_coverage: float | None
    ingress_byte_coverage: float | None
    egress_byte_coverage: float | None
    workloads: int
    ingress_exposed: int
    egress_exposed: int
    allowed_connections: int
    denied_connections: int
    records: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**values)


@dataclass(frozen=True)
class Change:
    """What changed since the previous run (the latest earlier window in the history)."""

    previous: str | None
    score_delta: float | None
    ingress_coverage_delta: float | None
    egress_coverage_delta: float | None
    # None when there is no previous run, or its state file is gone.
    new_talkers: tuple[str, ...] | None
    new_external: tuple[str, ...] | None
    newly_denied: tuple[str, ...] | None


@dataclass(frozen=True)
class Report:
    window: Window
    coverage: Coverage
    trend: tuple[HistoryEntry, ...]
    change: Change
    notes: tuple[str, ...] = ()
    suggestions: tuple[Waiting, ...] | None = None  # None: not computed (--no-suggestions)


def _pct_delta(now: float | None, before: float | None, digits: int = 4) -> float | None:
    return None if now is None or before is None else round(now - before, digits)


def headline(window: Window, coverage: Coverage) -> HistoryEntry:
    """This window's entry for the history."""
    ing, egr = coverage.cluster_ingress, coverage.cluster_egress
    return HistoryEntry(
        label=window.label,
        kind=window.kind,
        start=window.as_dict()["start"],
        end=window.as_dict()["end"],
        score=coverage.score.value,
        score_ingress=coverage.score.ingress,
        score_egress=coverage.score.egress,
        ingress_coverage=_r(ing.connection_coverage),
        egress_coverage=_r(egr.connection_coverage),
        ingress_byte_coverage=_r(ing.byte_coverage),
        egress_byte_coverage=_r(egr.byte_coverage),
        workloads=len(coverage.workloads),
        ingress_exposed=sum(w.ingress.status == EXPOSED for w in coverage.workloads),
        egress_exposed=sum(w.egress.status == EXPOSED for w in coverage.workloads),
        allowed_connections=ing.allowed_connections + egr.allowed_connections,
        denied_connections=ing.denied_connections + egr.denied_connections,
        records=coverage.records,
    )


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def build_report(
    window: Window,
    coverage: Coverage,
    history: Sequence[HistoryEntry] = (),
    previous_state: State | None = None,
    notes: Sequence[str] = (),
    suggestions: Sequence[Waiting] | None = None,
) -> Report:
    """Assemble the report of ``window``.

    ``history`` is every earlier run (any order; an entry with this window's label is replaced);
    the trend keeps the runs whose window ends no later than this one, sorted by end, so
    re-running an old window reproduces its report. ``previous_state`` is the state of the run
    just before this one (see :func:`previous_entry`).
    """
    me = headline(window, coverage)
    trend = sorted(
        [h for h in history if h.label != me.label and h.end <= me.end] + [me],
        key=lambda h: (h.end, h.start, h.label),
    )
    prev = previous_entry(history, window)
    state = coverage.state
    change = Change(
        previous=None if prev is None else prev.label,
        score_delta=None if prev is None else _pct_delta(me.score, prev.score, 1),
        ingress_coverage_delta=None
        if prev is None
        else _pct_delta(me.ingress_coverage, prev.ingress_coverage),
        egress_coverage_delta=None if prev is None else _pct_delta(me.egress_coverage, prev.egress_coverage),
        new_talkers=None if previous_state is None else _new(state.talkers, previous_state.talkers),
        new_external=None if previous_state is None else _new(state.external, previous_state.external),
        newly_denied=None if previous_state is None else _new(state.denied, previous_state.denied),
    )
    return Report(
        window,
        coverage,
        tuple(trend),
        change,
        tuple(notes) + coverage.policy_notes,
        None if suggestions is None else tuple(suggestions),
    )


def previous_entry(history: Sequence[HistoryEntry], window: Window) -> HistoryEntry | None:
    """The latest run whose window ended before this window's end (never this window itself)."""
    end = window.as_dict()["end"]
    earlier = [h for h in history if h.label != window.label and h.end < end]
    return max(earlier, key=lambda h: (h.end, h.start, h.label), default=None)


def _new(now: Sequence[str], before: Sequence[str]) -> tuple[str, ...]:
    seen = set(before)
    return tuple(sorted(x for x in now if x not in seen))


# ---------------------------------------------------------------------------------------- to dict


def _traffic(t: Traffic, *, protected: int | None = None, exposed: int | None = None) -> dict[str, Any]:
    out = t.as_dict()
    if protected is not None:
        out["workloads_protected"] = protected
        out["workloads_exposed"] = exposed
    return out


def _namespace(ns: NamespaceCoverage) -> dict[str, Any]:
    sel = ns.policy_selection
    ingress = _traffic(ns.ingress, protected=ns.ingress_protected, exposed=ns.ingress_exposed)
    egress = _traffic(ns.egress, protected=ns.egress_protected, exposed=ns.egress_exposed)
    ingress["default_deny"] = ns.default_deny_ingress
    egress["default_deny"] = ns.default_deny_egress
    ingress["policy_selected_share"] = None if sel is None else _r(sel.ingress_share)
    egress["policy_selected_share"] = None if sel is None else _r(sel.egress_share)
    ingress["policy_default_deny_share"] = None if sel is None else _r(sel.ingress_default_deny_share)
    egress["policy_default_deny_share"] = None if sel is None else _r(sel.egress_default_deny_share)
    return {
        "namespace": ns.namespace,
        "workloads": ns.workloads,
        "inventory_workloads": None if sel is None else sel.workloads,
        "ingress": ingress,
        "egress": egress,
    }


def _workload(w: WorkloadCoverage) -> dict[str, Any]:
    return {
        "namespace": w.namespace,
        "name": w.name,
        "endpoint_type": w.endpoint_type,
        "ingress": _traffic(w.ingress),
        "egress": _traffic(w.egress),
    }


def _items(items: tuple[str, ...] | None) -> dict[str, Any]:
    if items is None:
        return {"count": None, "items": []}
    return {"count": len(items), "items": list(items[:CHANGE_ITEMS])}


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as the versioned JSON document (see ``flowlens/report/schema.json``)."""
    cov = report.coverage
    score = cov.score
    wl = cov.workloads
    cross = [e for e in cov.edges if e.cross_namespace]
    internet_in = [asdict(x) for x in cov.internet if x.direction == "ingress"]
    internet_out = [asdict(x) for x in cov.internet if x.direction == "egress"]
    for row in internet_in + internet_out:
        row["ports"] = list(row["ports"])
    summary = {
        "score": score.value,
        "score_ingress": score.ingress,
        "score_egress": score.egress,
        "score_weight_cap": score.weight_cap,
        "score_definition": DEFINITIONS["score"],
        "records": cov.records,
        "namespaces": len(cov.namespaces),
        "workloads": len(wl),
        "host_endpoints": len(cov.hosts),
        "ingress": _traffic(
            cov.cluster_ingress,
            protected=sum(w.ingress.status == PROTECTED for w in wl),
            exposed=sum(w.ingress.status == EXPOSED for w in wl),
        ),
        "egress": _traffic(
            cov.cluster_egress,
            protected=sum(w.egress.status == PROTECTED for w in wl),
            exposed=sum(w.egress.status == EXPOSED for w in wl),
        ),
        "namespaces_default_deny_ingress": sum(
            n.default_deny_ingress in DEFAULT_DENY_YES for n in cov.namespaces
        ),
        "namespaces_default_deny_egress": sum(
            n.default_deny_egress in DEFAULT_DENY_YES for n in cov.namespaces
        ),
        "denied_connections": cov.cluster_ingress.denied_connections + cov.cluster_egress.denied_connections,
        "cross_namespace_edges": len(cross),
        "internet_ingress_workloads": sum(x["allowed_connections"] > 0 for x in internet_in),
        "internet_egress_workloads": sum(x["allowed_connections"] > 0 for x in internet_out),
    }
    ch = report.change
    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "window": report.window.as_dict(),
        "summary": summary,
        "changes": {
            "previous": ch.previous,
            "score_delta": ch.score_delta,
            "ingress_coverage_delta": ch.ingress_coverage_delta,
            "egress_coverage_delta": ch.egress_coverage_delta,
            "new_talkers": _items(ch.new_talkers),
            "new_external_destinations": _items(ch.new_external),
            "newly_denied_flows": _items(ch.newly_denied),
        },
        "namespaces": [_namespace(n) for n in cov.namespaces],
        "workloads": [_workload(w) for w in wl],
        "host_endpoints": [_workload(w) for w in cov.hosts],
        "denied": {
            "top_flows": [asdict(d) for d in cov.denied_flows],
            "top_policies": [asdict(d) for d in cov.denying_policies],
        },
        "unexpected_allowed": [asdict(u) for u in cov.unexpected],
        "edges": [asdict(e) for e in cov.edges],
        "internet": {"ingress": internet_in, "egress": internet_out},
        "trend": [h.as_dict() for h in report.trend],
        "definitions": dict(sorted(DEFINITIONS.items())),
        "notes": list(report.notes),
        **(
            {}
            if report.suggestions is None
            else {
                "suggestions": {
                    "definition": WAITING_DEFINITION,
                    "namespaces_waiting": sum(w.waiting for w in report.suggestions),
                    "namespaces": [w.as_dict() for w in report.suggestions],
                }
            }
        ),
    }
