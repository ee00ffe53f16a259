"""The rollout plan: the path from the policies in force today to the suggestion, step by step.

Step 0 is today (the policies in force). Step 1 applies the suggestion as staged kinds
(``StagedKubernetesNetworkPolicy``, ``StagedNetworkPolicy``, ``StagedGlobalNetworkPolicy``):
Calico evaluates them without enforcing, so nothing changes, and every flow log then carries the
*pending* verdict; the plan says which flows those verdicts will show denied (the edges held back
or left out on purpose) and that any other pending deny is traffic the window did not see. Then
one step per namespace enforces its policies, the namespace whose enforcement newly denies the
fewest recorded connections first. Every step carries its replayed effect: the recorded allowed
flows it newly denies (and why) and the workload pairs it closes, from the same proof
(:func:`~.proof.prove`) run on the suggestion of the namespaces enforced so far.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.policy.inventory import Inventory
from flowlens.suggest import Suggestion
from flowlens.suggest.model import SuggestOptions
from flowlens.suggest.observed import Report
from flowlens.suggest.proof import Expected, ProofResult, group_expected, prove

#: How many denied flows and closed pairs each step lists (the counts are exact).
LIST_LIMIT = 20


@dataclass(frozen=True)
class Effect:
    """What one step changes, replayed against the window's recorded flows."""

    denied_keys: int  # recorded allowed flow keys newly denied by this step
    denied_connections: int
    denied: tuple[str, ...]  # "source -> dest ports (sides): N connections (why)", at most LIST_LIMIT
    denied_lines: int  # how many such lines there are
    pairs_closed: int  # workload pairs reachable before this step and not after it
    closed: tuple[str, ...]  # at most LIST_LIMIT
    external_closed: int
    pairs_open_after: int
    pairs_checked: int


@dataclass(frozen=True)
class Step:
    """One step of the rollout: what to do, and its replayed effect on enforcement."""

    number: int
    title: str
    actions: tuple[str, ...]
    enforced: tuple[str, ...]  # namespaces whose suggested policies are enforced after this step
    effect: Effect
    pending: Effect | None = None  # step 1: what the pending verdicts will show
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rollout:
    """Today, then the steps to the suggestion."""

    namespaces: tuple[str, ...]
    flavor: str
    today: str
    steps: tuple[Step, ...]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _denied(result: ProofResult) -> set[Expected]:
    """The recorded allowed flow keys the candidate denies: on purpose, and broken ones."""
    broken = {
        Expected(b.reporter, b.source, b.dest, b.proto, b.port, b.connections, "BROKEN: not on purpose")
        for b in result.broken
    }
    return set(result.expected) | broken


def _port(proto: str, port: int | None) -> str:
    return proto if port is None else f"{proto}/{port}"


def _side(reporter: str) -> str:
    return "egress" if reporter == "src" else "ingress"


def _closed_lines(result: ProofResult) -> set[str]:
    return {f"{c.source} -> {c.dest} ({c.ports})" for c in result.closed_pairs}


def _effect(result: ProofResult, previous: ProofResult | None) -> Effect:
    """The effect of going from ``previous`` (None: today) to ``result``."""
    denied = _denied(result) - (_denied(previous) if previous is not None else set())
    lines = group_expected(sorted(denied, key=lambda e: (e.source, e.dest, e.proto, e.port or 0, e.reporter)))
    closed = sorted(_closed_lines(result) - (_closed_lines(previous) if previous is not None else set()))
    before_external = len(previous.closed_external) if previous is not None else 0
    return Effect(
        denied_keys=len(denied),
        denied_connections=sum(conns for _, conns in lines),
        denied=tuple(line for line, _ in lines[:LIST_LIMIT]),
        denied_lines=len(lines),
        pairs_closed=len(closed),
        closed=tuple(closed[:LIST_LIMIT]),
        external_closed=max(0, len(result.closed_external) - before_external),
        pairs_open_after=result.pairs_open_after,
        pairs_checked=result.pairs_checked,
    )


def _nothing(result: ProofResult) -> Effect:
    return Effect(0, 0, (), 0, 0, (), 0, result.pairs_open_before, result.pairs_checked)


def _subset(suggestion: Suggestion, namespaces: Sequence[str]) -> Suggestion:
    keep = set(namespaces)
    rendered = dataclasses.replace(
        suggestion.rendered,
        namespaces=tuple((ns, docs) for ns, docs in suggestion.rendered.namespaces if ns in keep),
    )
    return dataclasses.replace(suggestion, rendered=rendered)


def _order(result: ProofResult, namespaces: Sequence[str]) -> list[str]:
    """Namespaces by the connections their enforcement would newly deny (fewest first), then name."""
    weight: Counter[str] = Counter()
    for e in result.expected:
        for ns in namespaces:
            if e.source.startswith(f"{ns}/") or e.dest.startswith(f"{ns}/"):
                weight[ns] += e.connections
    return sorted(namespaces, key=lambda ns: (weight[ns], ns))


def plan_rollout(
    reports: Sequence[Report],
    options: SuggestOptions,
    suggestion: Suggestion,
    full: ProofResult,
    *,
    policies: Sequence[Path] = (),
    inventory: Inventory | None = None,
    replace: bool = False,
    staged_dir: str = "staged/",
    enforce_dir: str = "./",
    since_hint: str = "<when you applied them, e.g. 7d>",
    progress: Callable[[str], None] | None = None,
) -> Rollout:
    """The rollout from the policies in force to ``suggestion`` (whose proof is ``full``).

    ``staged_dir``/``enforce_dir``: where the staged and the enforced manifests are, as the
    commands in the steps should name them.
    """
    namespaces = list(options.namespaces)
    in_force = ", ".join(str(p) for p in policies) if policies else "none given (--policies)"
    today = (
        f"policies in force: {in_force}; replayed {full.replayed} recorded flow keys "
        f"({full.connections} connections); {full.pairs_open_before} of {full.pairs_checked} workload pairs "
        "are reachable"
    )
    pending = _effect(full, None)
    held = sum(1 for e in full.expected if e.reason.startswith("held back"))
    stage = Step(
        number=1,
        title="apply the suggestion as staged policies (evaluated, not enforced)",
        actions=(
            f"kubectl apply -f {staged_dir}   (Staged* kinds need the Calico API server; else calicoctl apply -f)",
            "wait, then ingest the new flow logs and read the pending verdicts: flowlens query "
            f"unexpected-allowed -p category=staged-deny --since {since_hint}",
        ),
        enforced=(),
        effect=_nothing(full),
        pending=pending,
        notes=(
            f"the pending verdicts should show exactly the {pending.denied_keys} flow keys listed here as denied "
            f"({held} held back, {pending.denied_keys - held} left out on purpose); any other pending deny is "
            "traffic the observation window did not see: look at it before enforcing",
            "keep the staged policies at least as long as the window the suggestion rests on, and over a "
            "whole week so that weekly jobs show up",
        ),
    )
    steps = [stage]
    enforced: list[str] = []
    previous: ProofResult | None = None
    ordered = _order(full, namespaces)
    full_screening = suggestion.plan.screening
    for index, ns in enumerate(ordered):
        enforced.append(ns)
        if progress is not None:
            progress(f"rollout: replaying step {index + 2} of {len(ordered) + 1} (enforce {ns})")
        if len(enforced) == len(namespaces):
            result = full
        else:
            partial = dataclasses.replace(options, namespaces=tuple(enforced))
            result = prove(
                reports,
                partial,
                suggestion=_subset(suggestion, enforced),
                policies=policies,
                inventory=inventory,
                replace=replace,
                screening=full_screening,
                closure_namespaces=namespaces,
            )
        files = [f"{enforce_dir}{ns}.yaml"]
        if index == 0 and any(name == "_cluster.yaml" for name in suggestion.files()):
            files.insert(0, f"{enforce_dir}_cluster.yaml")
        steps.append(
            Step(
                number=index + 2,
                title=f"enforce {ns}",
                actions=(
                    f"kubectl apply -f {' -f '.join(files)}",
                    f"kubectl delete -f {staged_dir}{ns}.yaml   (the staged copy)",
                ),
                enforced=tuple(enforced),
                effect=_effect(result, previous),
            )
        )
        previous = result
    return Rollout(tuple(namespaces), options.flavor, today, tuple(steps))


def _effect_lines(effect: Effect, what: str) -> list[str]:
    lines = [
        f"- {what}: {effect.denied_keys} recorded flow keys newly denied ({effect.denied_connections} connections), "
        f"{effect.pairs_closed} workload pairs and {effect.external_closed} external paths closed; "
        f"{effect.pairs_open_after} of {effect.pairs_checked} pairs reachable after"
    ]
    lines.extend(f"  - denied: {d}" for d in effect.denied)
    if effect.denied_lines > len(effect.denied):
        lines.append(f"  - ... and {effect.denied_lines - len(effect.denied)} more (see --summary-json)")
    lines.extend(f"  - closed: {c}" for c in effect.closed)
    if effect.pairs_closed > len(effect.closed):
        lines.append(f"  - ... and {effect.pairs_closed - len(effect.closed)} more pairs")
    return lines


def format_rollout(rollout: Rollout) -> str:
    """The plan as Markdown (``rollout.md``, or stderr)."""
    lines = [
        f"# Rollout plan: {', '.join(rollout.namespaces)} ({rollout.flavor})",
        "",
        f"Today: {rollout.today}.",
        "",
    ]
    for step in rollout.steps:
        lines.append(f"## Step {step.number}: {step.title}")
        lines.append("")
        lines.extend(f"    {a}" for a in step.actions)
        lines.append("")
        lines.extend(_effect_lines(step.effect, "enforced effect"))
        if step.pending is not None:
            lines.extend(_effect_lines(step.pending, "the pending verdicts will show"))
        lines.extend(f"- {n}" for n in step.notes)
        lines.append("")
    return "\n".join(lines)
