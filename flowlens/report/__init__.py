"""Segmentation coverage reports: one window's coverage, rendered and filed with its history.

:func:`generate` is the whole pipeline behind ``flowlens report``: open the store for the window,
compute :mod:`flowlens.report.coverage`, attach the change since the previous run and the trend from
``<reports>/history.jsonl``, render HTML / Markdown / JSON, write ``<reports>/<label>/``, update
the history, ``index.html`` and ``latest``. Re-running a window replaces its folder and its
history entry, so a scheduler can retry safely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.engine import EngineChoice, open_engine
from flowlens.errors import UsageError
from flowlens.pause import collector_paused
from flowlens.report import coverage as cov
from flowlens.report import runs
from flowlens.report.model import Report, build_report, headline, previous_entry, report_to_dict
from flowlens.report.render import FORMATS, render_format, render_index
from flowlens.report.waiting import suggestions_waiting
from flowlens.report.window import Window, resolve_window
from flowlens.store import Store

__all__ = ["FORMATS", "Generated", "Window", "generate", "parse_formats", "resolve_window"]


@dataclass(frozen=True)
class Generated:
    """What one run wrote."""

    folder: Path
    files: tuple[Path, ...]
    report: Report
    document: dict[str, Any]
    latest: str


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``html,md,json`` -> a sorted tuple of known formats; :class:`UsageError` for others."""
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    unknown = sorted(set(items) - set(FORMATS))
    if unknown or not items:
        raise UsageError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {text!r}")
    return tuple(f for f in FORMATS if f in items)


@collector_paused()
def generate(
    store: Store,
    window: Window,
    reports: Path,
    *,
    formats: Sequence[str] = FORMATS,
    policies: Sequence[Path] = (),
    inventory: Sequence[Path] = (),
    top: int = 20,
    suggestions: bool = True,
    engine: EngineChoice | None = None,
) -> Generated:
    """Compute, render and file the report of ``window``; ``suggestions``: add the namespaces
    with suggestions waiting (:mod:`flowlens.report.waiting`); ``engine``: the engine that reads
    the store (DuckDB unless it says Spark). The garbage collector is paused meanwhile
    (:mod:`flowlens.pause`)."""
    selection = None
    inv = None
    notes: list[str] = []
    if policies and not inventory:
        raise UsageError(
            "--policies needs --inventory (kubectl get namespaces,pods,serviceaccounts -A -o yaml)"
        )
    if inventory and not policies:
        raise UsageError("--inventory needs --policies (the policy manifests to check selection against)")
    if policies:
        from flowlens.policy.inventory import load_inventory
        from flowlens.policy.manifests import load_policies

        policy_set = load_policies(list(policies))
        inv = load_inventory(list(inventory))
        selection = cov.policy_selection(policy_set, inv)
        notes.append(
            f"Default deny (policies): {len(policy_set.enforced)} enforced policies checked against "
            f"{sum(s.workloads for s in selection.values())} inventory workloads."
        )
    with open_engine(store, engine, since=window.start, until=window.end) as opened:
        coverage = cov.compute(opened, top=top, selection=selection)
        waiting = suggestions_waiting(opened, policies=policies, inventory=inv) if suggestions else None
    if coverage.records == 0:
        notes.append("No flow records in this window: every figure is empty.")

    with runs.locked(reports):
        history = runs.read_history(reports)
        prev = previous_entry(history, window)
        prev_state = None if prev is None else runs.read_state(reports, prev.label)
        report = build_report(window, coverage, history, prev_state, notes, waiting)
        doc = report_to_dict(report)

        files = {f"report.{fmt}": render_format(doc, fmt) for fmt in formats}
        files[runs.STATE] = runs.state_json(coverage.state)
        folder = runs.write_run(reports, window.label, files)

        entries = runs.merge_history(history, headline(window, coverage))
        runs.write_history(reports, entries)
        latest = entries[-1].label
        index = render_index([h.as_dict() for h in entries], latest, runs.existing_files(reports, entries))
        runs.write_index(reports, index)
        runs.update_latest(reports, latest)
    return Generated(
        folder=folder,
        files=tuple(folder / name for name in sorted(files)),
        report=report,
        document=doc,
        latest=latest,
    )
