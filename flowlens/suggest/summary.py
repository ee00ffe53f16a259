"""The summary of a suggestion and its proof: what it allows, how broad, what it closes.

:func:`build_summary` gathers it into a frozen :class:`Summary`; :meth:`Summary.as_dict` is the
``--summary-json`` form and :func:`format_summary` the text the CLI writes to stderr.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from flowlens.suggest.edges import logged_text
from flowlens.suggest.model import LeftOut, SuggestOptions, left_out_groups
from flowlens.suggest.proof import Expected, group_expected

if TYPE_CHECKING:
    from flowlens.suggest import Suggestion
    from flowlens.suggest.activity import Activity
    from flowlens.suggest.proof import ProofResult
    from flowlens.suggest.rollout import Rollout
    from flowlens.suggest.screen import HeldBack, Screening

#: How many items of each list the text summary shows (the JSON has them all).
TEXT_LIMIT = 20


@dataclass(frozen=True)
class Summary:
    """Everything the summary reports, as plain values."""

    namespaces: tuple[str, ...]
    window: str
    flavor: str
    policies: int
    rules: int
    rule_breadth: tuple[dict[str, Any], ...]
    broad_rules: tuple[dict[str, Any], ...]
    remediation_rules: int
    left_out: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    proof: dict[str, Any]
    held_back: tuple[dict[str, Any], ...] = ()  # groups held back (not admitted)
    admitted: tuple[dict[str, Any], ...] = ()  # held-back groups kept by --admit / --admit-held
    weakest_rules: tuple[dict[str, Any], ...] = ()  # every rule, the least steadily seen first
    rollout: dict[str, Any] | None = None  # --plan

    @property
    def ok(self) -> bool:
        return not self.proof["broken"]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def held_back_dict(group: HeldBack, activity: Activity | None) -> dict[str, Any]:
    """One held-back group as the summary JSON lists it."""
    edges = []
    for edge in group.edges:
        seen = activity.seen(edge) if activity is not None else None
        edges.append(
            {
                "source": logged_text(edge.source),
                "dest": logged_text(edge.dest),
                "port": edge.port.text,
                "intervals": seen.intervals if seen else None,
                "days": seen.days if seen else None,
            }
        )
    return {
        "class": group.kind,
        "source": logged_text(group.source),
        "dest": logged_text(group.dest) if group.dest is not None else None,
        "why": group.why,
        "text": group.text,
        "admit": group.token,
        "connections": group.connections,
        "bytes": group.bytes,
        "first_seen": group.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "last_seen": group.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "edges": edges,
    }


def build_summary(
    options: SuggestOptions,
    suggestion: Suggestion | None,
    result: ProofResult,
    window: str,
    *,
    screening: Screening | None = None,
    rollout: Rollout | None = None,
) -> Summary:
    """The summary of ``suggestion`` (None with ``--check``) and its proof ``result``; ``screening``
    lists what was held back when there is no suggestion; ``rollout``: the ``--plan``."""
    rules: list[dict[str, Any]] = []
    left_out: list[dict[str, Any]] = []
    notes: list[str] = []
    policies = 0
    if suggestion is not None:
        for r in suggestion.rendered.rules:
            rules.append(
                {
                    "namespace": r.namespace,
                    "policy": r.policy,
                    "direction": r.direction,
                    "peers": list(r.peers),
                    "ports": list(r.ports),
                    "workloads": r.breadth.workloads,
                    "addresses": r.breadth.addresses,
                    "port_count": r.breadth.ports,
                    "broad": list(r.breadth.broad),
                    "remediation": r.remediation,
                    "weakest_evidence": r.weakest,
                    "days": r.days,
                    "intervals": r.intervals,
                    "connections": r.connections,
                    "thin": r.thin,
                    "admitted": list(r.admitted),
                }
            )
        for ns in suggestion.plan.namespaces:
            policies += len(ns.policies)
            notes.extend(f"{ns.namespace}: {n}" for n in ns.notes)
            left_out.extend(
                {
                    "namespace": x.namespace,
                    "direction": x.direction,
                    "workload": x.workload,
                    "peer": x.peer,
                    "port": x.port,
                    "connections": x.connections,
                    "reason": x.reason,
                }
                for x in ns.left_out
            )
    if suggestion is not None:
        notes.extend(suggestion.plan.notes)
        screening = suggestion.plan.screening or screening
    notes.extend(result.notes)
    activity = screening.activity if screening is not None else None
    groups = screening.groups if screening is not None else ()
    proof = {
        "replayed_keys": result.replayed,
        "replayed_connections": result.connections,
        "broken": [
            {
                "reporter": b.reporter,
                "source": b.source,
                "dest": b.dest,
                "proto": b.proto,
                "port": b.port,
                "connections": b.connections,
                "trace": list(b.trace),
                "notes": list(b.notes),
                "inferred_side": b.inferred,
            }
            for b in result.broken
        ],
        "decided_with_representative_address": result.representative,
        "unreproducible": list(result.unreproducible),
        "pod_sides_with_labels_from_their_pod_group": result.labels_filled,
        "remediated_edges": result.remediated,
        "still_denied": list(result.still_denied),
        "left_out_reports": result.skipped,
        "workload_pairs": result.pairs_total,
        "workload_pairs_checked": result.pairs_checked,
        "workload_pairs_open_before": result.pairs_open_before,
        "workload_pairs_open_after": result.pairs_open_after,
        "closed_workload_pairs": [asdict(c) for c in result.closed_pairs],
        "closed_external": [asdict(c) for c in result.closed_external],
        "would_be_denied": [asdict(e) for e in result.expected],
    }
    return Summary(
        namespaces=tuple(options.namespaces),
        window=window,
        flavor=options.flavor,
        policies=policies,
        rules=len(rules),
        rule_breadth=tuple(rules),
        broad_rules=tuple(r for r in rules if r["broad"]),
        remediation_rules=sum(1 for r in rules if r["remediation"]),
        left_out=tuple(left_out),
        notes=tuple(notes),
        proof=proof,
        held_back=tuple(held_back_dict(g, activity) for g in groups if not g.admitted),
        admitted=tuple(held_back_dict(g, activity) for g in groups if g.admitted),
        weakest_rules=tuple(
            sorted(
                rules,
                key=lambda r: (r["days"], r["intervals"], r["connections"], r["namespace"], r["policy"]),
            )
        ),
        rollout=rollout.as_dict() if rollout is not None else None,
    )


def format_summary(s: Summary) -> str:
    """The human summary (for stderr)."""
    p = s.proof
    lines = [
        f"flowlens suggest: {', '.join(s.namespaces)} ({s.flavor}; window {s.window})",
        f"  {s.policies} workload policies, {s.rules} rules"
        + (f", {s.remediation_rules} remediation" if s.remediation_rules else "")
        + f", {len(s.broad_rules)} broad",
    ]
    for r in s.broad_rules[:TEXT_LIMIT]:
        lines.append(f"  BROAD {r['namespace']}/{r['policy']} {r['direction']}: {'; '.join(r['broad'])}")
    if len(s.broad_rules) > TEXT_LIMIT:
        lines.append(f"  ... and {len(s.broad_rules) - TEXT_LIMIT} more broad rules (see --summary-json)")
    if s.left_out:
        lines.append(f"  left out {len(s.left_out)} edges (they will be denied):")
        left = left_out_groups([LeftOut(**x) for x in s.left_out])
        lines.extend(
            f"    {x.namespace} {x.direction} {x.workload} {x.peer} {ports}: {x.reason}"
            for x, ports in left[:TEXT_LIMIT]
        )
        if len(left) > TEXT_LIMIT:
            lines.append(f"    ... and {len(left) - TEXT_LIMIT} more (see --summary-json)")
    if s.held_back:
        edges = sum(len(g["edges"]) for g in s.held_back)
        lines.append(
            f"  held back {len(s.held_back)} groups ({edges} edges; they will be denied; keep one with "
            "--admit EDGE, all with --admit-held):"
        )
        for g in s.held_back[:TEXT_LIMIT]:
            lines.append(f"    held back: {g['text']}")
            lines.append(f"      admit: {g['admit']}")
        if len(s.held_back) > TEXT_LIMIT:
            lines.append(f"    ... and {len(s.held_back) - TEXT_LIMIT} more (see --summary-json)")
    for g in s.admitted[:TEXT_LIMIT]:
        lines.append(f"  ADMITTED (held back, kept on purpose): {g['text']}")
    weak = [r for r in s.weakest_rules if r["thin"]]
    if weak:
        lines.append(
            f"  {len(weak)} rules rest on thin evidence (weakest first; review them before enforcing):"
        )
        lines.extend(
            f"    THIN {r['namespace']}/{r['policy']} {r['direction']}: {r['thin']}"
            for r in weak[:TEXT_LIMIT]
        )
        if len(weak) > TEXT_LIMIT:
            lines.append(f"    ... and {len(weak) - TEXT_LIMIT} more (see --summary-json)")
    for note in s.notes[:TEXT_LIMIT]:
        lines.append(f"  note: {note}")
    lines.append(
        f"proof: replayed {p['replayed_keys']} flow keys ({p['replayed_connections']} connections): "
        + (
            "no observed allowed connection becomes denied"
            if not p["broken"]
            else f"{len(p['broken'])} BROKEN"
        )
    )
    if p["decided_with_representative_address"]:
        lines.append(
            f"  {p['decided_with_representative_address']} keys had addresses that were not logged (pvt, pub, "
            "host or network set) and were checked with a representative address of that class"
        )
    if p["would_be_denied"]:
        held = sum(1 for e in p["would_be_denied"] if e["reason"].startswith("held back"))
        lines.append(
            f"  {len(p['would_be_denied'])} recorded allowed keys would be denied on purpose ({held} held back, "
            f"{len(p['would_be_denied']) - held} left out); not counted against the suggestion:"
        )
        grouped = [line for line, _ in group_expected(result_expected(p["would_be_denied"]))]
        lines.extend(f"    would be denied: {line}" for line in grouped[:TEXT_LIMIT])
        if len(grouped) > TEXT_LIMIT:
            lines.append(f"    ... and {len(grouped) - TEXT_LIMIT} more (see --summary-json)")
    if p["unreproducible"]:
        lines.append(
            f"  {len(p['unreproducible'])} recorded allowed keys are denied by the policies in force alone "
            "(the engine lacks a fact); not counted against the suggestion:"
        )
        lines.extend(f"    {x}" for x in p["unreproducible"][:TEXT_LIMIT])
    if p["remediated_edges"] or p["still_denied"]:
        lines.append(
            f"  remediation: {p['remediated_edges']} denied edges now allowed, {len(p['still_denied'])} still denied"
        )
        lines.extend(f"    still denied: {x}" for x in p["still_denied"][:TEXT_LIMIT])
    for b in p["broken"][:TEXT_LIMIT]:
        port = b["proto"] if b["port"] is None else f"{b['proto']}/{b['port']}"
        side = "egress" if b["reporter"] == "src" else "ingress"
        trace = " > ".join(b["trace"]) or "no policy hit"
        lines.append(f"  BROKEN {b['source']} -> {b['dest']} {port} ({side}): {trace}")
        lines.extend(f"    {n}" for n in b["notes"][:3])
    if p["workload_pairs_checked"] < p["workload_pairs"]:
        lines.append(
            f"  checked {p['workload_pairs_checked']} of {p['workload_pairs']} workload pairs: every observed pair, "
            "then a fixed sample of the others"
        )
    lines.append(
        f"closes: {p['workload_pairs_open_before']} of {p['workload_pairs_checked']} workload pairs were "
        f"reachable before, {p['workload_pairs_open_after']} are now; "
        f"{len(p['closed_workload_pairs'])} pairs and {len(p['closed_external'])} external paths closed"
    )
    for c in p["closed_workload_pairs"][:TEXT_LIMIT]:
        lines.append(f"  closed {c['source']} -> {c['dest']} ({c['ports']})")
    if len(p["closed_workload_pairs"]) > TEXT_LIMIT:
        lines.append(
            f"  ... and {len(p['closed_workload_pairs']) - TEXT_LIMIT} more pairs (see --summary-json)"
        )
    for c in p["closed_external"][:TEXT_LIMIT]:
        lines.append(f"  closed {c['source']} -> {c['dest']} ({c['ports']})")
    if len(p["closed_external"]) > TEXT_LIMIT:
        lines.append(
            f"  ... and {len(p['closed_external']) - TEXT_LIMIT} more external paths (see --summary-json)"
        )
    return "\n".join(lines)


def result_expected(items: list[dict[str, Any]]) -> list[Expected]:
    """The summary's ``would_be_denied`` entries back as :class:`Expected` values."""
    return [Expected(**item) for item in items]


def window_text(since: dt.datetime | None, until: dt.datetime | None) -> str:
    """The window as the summary names it: ``2026-11-24T00:00:00Z .. 2026-11-26T00:00:00Z``, an
    open side as ``open``, and ``whole store`` when both are."""
    if since is None and until is None:
        return "whole store"

    def fmt(value: dt.datetime | None) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "open"

    return f"{fmt(since)} .. {fmt(until)}"
