"""CLI side of ``flowlens suggest --cluster``: reading the window, writing the guardrails, the
summary on stderr and the exit code.

The work is in :mod:`flowlens.suggest.cluster`. stdout carries only YAML (when no ``--out`` is
given); everything for people goes to stderr. Exit 10 when the proof finds recorded allowed
traffic the guardrails would deny, or when ``--validate`` finds an object its schema refuses.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flowlens.cli.common import calico_version
from flowlens.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flowlens.suggest.cluster import ClusterSuggestion


@dataclass(frozen=True)
class ClusterArgs:
    """The options of ``suggest`` that ``--cluster`` reads."""

    root: Path  # an existing store (flowlens.cli.common.existing_store)
    since: dt.datetime | None
    until: dt.datetime | None
    flavor: str
    label_keys: tuple[str, ...]
    admin_tier: str | None
    baseline_tier: str | None
    include_system: bool
    calico_version: str | None
    policies: tuple[Path, ...]
    inventory: tuple[Path, ...]
    out: Path | None
    summary_json: Path | None
    validate: bool


def run(args: ClusterArgs) -> None:
    """Run ``flowlens suggest --cluster``."""
    from flowlens.engine import connect
    from flowlens.policy import load_inventory, load_policies
    from flowlens.policy.model import PolicySet
    from flowlens.suggest import write_files
    from flowlens.suggest.cluster import ClusterOptions, load_window, suggest_cluster

    in_force = load_policies(list(args.policies)) if args.policies else PolicySet()
    inventory = load_inventory(list(args.inventory)) if args.inventory else None
    with connect(args.root, since=args.since, until=args.until) as engine:
        version = calico_version(args.calico_version, in_force, engine)
        reports, key_rows = load_window(engine)
    options = ClusterOptions(
        flavor=args.flavor,
        label_keys=args.label_keys,
        admin_tier=args.admin_tier,
        baseline_tier=args.baseline_tier,
        include_system=args.include_system,
        calico_version=version,
    )
    suggestion = suggest_cluster(reports, key_rows, options, in_force, inventory)
    files = suggestion.files()
    if args.out is not None:
        for path in write_files(files, args.out):
            typer.echo(f"wrote {path}", err=True)
    else:
        typer.echo(suggestion.stream(), nl=False)
    lines, summary = _summary(suggestion)
    typer.echo("\n".join(lines), err=True)
    problems: list[str] = []
    if args.validate:
        from flowlens.suggest.validate import available, validate_objects

        if not available():
            raise UsageError("--validate needs the kubernetes-validate and jsonschema packages; install them")
        problems = validate_objects(suggestion.objects())
        for problem in problems:
            typer.echo(f"schema: {problem}", err=True)
        if not problems:
            typer.echo("schema: every emitted object is valid", err=True)
    if args.summary_json is not None:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if problems:
        raise CheckFailed(
            f"{len(problems)} emitted object(s) fail their schema (listed above); please report it"
        )
    if not suggestion.proof.ok:
        raise CheckFailed(
            f"{len(suggestion.proof.broken)} recorded allowed connection(s) would be denied by the guardrails "
            "(listed above); nothing was proven safe: do not apply them"
        )


def _summary(suggestion: ClusterSuggestion) -> tuple[list[str], dict[str, object]]:
    """The summary for people (stderr lines) and as JSON (``--summary-json``)."""
    plan, proof = suggestion.plan, suggestion.proof
    layers = {layer: [g for g in plan.guardrails if g.tier == layer] for layer in ("Admin", "Baseline")}
    lines = ["", "flowlens suggest --cluster:"]
    for layer, items in layers.items():
        rules = sum(len(g.ingress) + len(g.egress) for g in items)
        lines.append(f"  {layer} layer: {len(items)} policies, {rules} rules")
    lines.append(
        f"  proof: {proof.keys:,} flow keys, {proof.records:,} records replayed with the policies in force; "
        f"{proof.decided:,} keys decided by a guardrail"
    )
    lines.append(f"  recorded allowed and now denied: {len(proof.broken)}")
    lines += [f"    BROKEN {b.text}" for b in proof.broken]
    if proof.held:
        lines.append(f"  held back as scans or probes, denied on purpose: {len(proof.held)} flow keys")
        lines += [f"    {h}" for h in plan.held_back]
    if plan.left_out:
        lines.append(f"  left to the namespaces ({suggestion.repairs} by the proof):")
        lines += [f"    {x}" for x in plan.left_out]
    lines.append("  PROVEN: no recorded allowed connection is denied" if proof.ok else "  NOT PROVEN")
    doc = {
        "layers": {layer: [g.name for g in items] for layer, items in layers.items()},
        "keys": proof.keys,
        "records": proof.records,
        "decided_by_guardrails": proof.decided,
        "broken": [b.text for b in proof.broken],
        "held_back": list(plan.held_back),
        "held_back_keys": len(proof.held),
        "left_out": list(plan.left_out),
        "proven": proof.ok,
    }
    return lines, doc
