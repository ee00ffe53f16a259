"""The proof of the cluster guardrails: the window's recorded flows replayed with them.

Owns :func:`prove_cluster`. Every distinct flow key of the window (the ``policy-flow-keys``
query) is evaluated twice by the policy engine: with the policies in force alone, and with the
guardrails added (the namespaces' own policies stay: rulebook G5 says which layer decides). A
key the policies in force allow and the guardrails deny, although it was recorded allowed, is
*broken*, unless its source was held back as a scan or probe (then it is denied on purpose and
listed). :func:`repair` drops what a broken key blames (one direction of one namespace's
Baseline policy, or an Admin policy) until nothing breaks, and says so, so that what is written
is proven.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowlens.policy.evaluate import Evaluator
from flowlens.policy.inventory import Inventory
from flowlens.policy.model import GUARDRAIL_TIERS, PolicySet
from flowlens.policy.simulate import SimulationRow, replay_rows
from flowlens.policy.versions import CalicoVersion
from flowlens.suggest.cluster.observe import HeldKey, record_key
from flowlens.suggest.cluster.synth import ClusterPlan

#: How many times :func:`repair` drops a guardrail before it gives up.
MAX_REPAIRS = 50


@dataclass(frozen=True)
class Breakage:
    """A recorded allowed key the guardrails deny, and the guardrail hit that denies it."""

    row: SimulationRow
    blamed: str  # the policy name of the deciding hit (a guardrail's name, or '' if none)
    tier: str
    held: bool  # its source is held back: denied on purpose

    @property
    def text(self) -> str:
        side = "egress" if self.row.reporter == "src" else "ingress"
        port = "-" if self.row.dest_port is None else self.row.dest_port
        trace = self.row.simulated_trace[-1] if self.row.simulated_trace else "-"
        return f"{self.row.source} -> {self.row.dest} {self.row.proto}/{port} ({side}): {trace}"


@dataclass(frozen=True)
class ClusterProof:
    """What the replay found: keys and records replayed, and the keys the guardrails deny."""

    keys: int
    records: int
    broken: tuple[Breakage, ...]
    held: tuple[Breakage, ...]  # denied on purpose: scans and probes
    decided: int  # keys whose verdict a guardrail decides (allow or deny)
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.broken


def _layer_name(hit: str) -> tuple[str, str]:
    """(tier, policy name) of a hit string ``i|tier|kind:name|action|rule``."""
    parts = hit.split("|")
    if len(parts) < 3:
        return "", ""
    name = parts[2].partition(":")[2]
    return parts[1], name.rpartition(".")[2] if parts[1] not in GUARDRAIL_TIERS else name


def prove_cluster(
    key_rows: Sequence[dict[str, Any]],
    in_force: PolicySet,
    guardrails: PolicySet,
    inventory: Inventory | None,
    *,
    held_keys: frozenset[HeldKey] = frozenset(),
    calico_version: CalicoVersion | None = None,
) -> ClusterProof:
    """Replay ``key_rows`` (rows of ``policy-flow-keys``) with and without ``guardrails``.

    ``held_keys`` name the paths held back as scans or probes
    (:attr:`~flowlens.suggest.cluster.observe.Observed.held_keys`). An egress key the destination
    denied in the recording is not broken when the guardrails deny it at the source: the
    connection was denied either way."""
    before = Evaluator(in_force, inventory, calico_version=calico_version)
    after = Evaluator(in_force.merged(guardrails), inventory, calico_version=calico_version)
    rows_before, _ = replay_rows(key_rows, before)
    rows_after, _ = replay_rows(key_rows, after)
    broken: list[Breakage] = []
    held: list[Breakage] = []
    decided = 0
    denied_at_dest = {_key(r) for r in rows_before if r.reporter == "dst" and not r.records_allowed}
    for was, now in zip(rows_before, rows_after, strict=True):
        last = now.simulated_trace[-1] if now.simulated_trace else ""
        tier, name = _layer_name(last)
        if tier in GUARDRAIL_TIERS or name.startswith("flowlens-"):
            decided += 1
        if not now.records_allowed or was.simulated_action != "allow" or now.simulated_action != "deny":
            continue
        if now.reporter == "src" and _key(now) in denied_at_dest:
            continue
        item = Breakage(now, name, tier, _key(now) in held_keys)
        (held if item.held else broken).append(item)
    return ClusterProof(
        keys=len(rows_after),
        records=sum(r.records for r in rows_after),
        broken=tuple(broken),
        held=tuple(held),
        decided=decided,
        notes=tuple(sorted(set(after.policy_set.notes))),
    )


def _key(row: SimulationRow) -> HeldKey:
    return record_key(
        row.source_namespace,
        row.source_name_aggr,
        row.source_ip,
        row.dest_namespace,
        row.dest_name_aggr,
        row.dest_ip,
        row.proto,
        row.dest_port,
    )


def repair(plan: ClusterPlan, proof: ClusterProof) -> ClusterPlan | None:
    """``plan`` without what the first broken key blames, or None when it blames nothing of the
    plan (then repairing cannot help)."""
    for item in proof.broken:
        guardrail = next((g for g in plan.guardrails if g.name == item.blamed), None)
        if guardrail is None:
            continue
        direction = "egress" if item.row.reporter == "src" else "ingress"
        reason = f"it would deny {item.text}, which was recorded allowed"
        if guardrail.tier == "Baseline":
            return plan.without(guardrail.name, direction, reason)
        return plan.without(guardrail.name, None, reason)
    return None
