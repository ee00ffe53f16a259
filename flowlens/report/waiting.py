"""Suggestions waiting: which namespaces a least-privilege suggestion from this window would
tighten, and by how much.

One suggestion (``flowlens suggest --all-namespaces``, Kubernetes flavor, default screening) is
made from the window's traffic and proven by replay against the policies in force (when the
report has them); per namespace the report shows its workload policies and rules, the rules
resting on thin evidence, what was held back as suspicious, and what enforcing it would close:
the workload pairs with a side in the namespace and the external paths of its workloads that are
reachable today and would not be. A namespace with nothing to close has no suggestion waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flowlens.engine import Engine
from flowlens.pause import collector_paused
from flowlens.policy.inventory import Inventory
from flowlens.suggest import SuggestOptions, load_activity, load_reports, namespaces_in_window, suggest
from flowlens.suggest.model import THIN_INTERVALS
from flowlens.suggest.proof import prove


@dataclass(frozen=True)
class Waiting:
    """What a suggestion for one namespace holds and would close."""

    namespace: str
    policies: int  # workload policies (besides allow-dns and default-deny)
    rules: int
    thin_rules: int  # resting on evidence seen in fewer than THIN_INTERVALS intervals
    held_back: int  # suspicious edge groups left out
    held_back_edges: int
    pairs_closed: int  # workload pairs with a side here, reachable now and not after
    external_closed: int  # external paths of its workloads closed
    broken: int  # observed allowed connections the suggestion would deny (0: proven)

    @property
    def waiting(self) -> bool:
        return self.pairs_closed + self.external_closed > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "waiting": self.waiting}


@collector_paused()
def suggestions_waiting(
    engine: Engine, *, policies: Sequence[Path] = (), inventory: Inventory | None = None
) -> tuple[Waiting, ...]:
    """Per namespace with pods in the engine's window (system namespaces left out), sorted by
    what it would close (most first), then name."""
    namespaces = namespaces_in_window(engine)
    if not namespaces:
        return ()
    reports = load_reports(engine, namespaces)
    options = SuggestOptions(tuple(namespaces))
    activity = load_activity(engine, reports, namespaces, options.label_keys)
    suggestion = suggest(reports, options, inventory, activity=activity)
    result = prove(reports, options, suggestion=suggestion, policies=policies, inventory=inventory)
    rules = suggestion.rendered.rules
    out = []
    for plan in suggestion.plan.namespaces:
        ns = plan.namespace
        mine = [r for r in rules if r.namespace == ns]
        held = [g for g in plan.held_back if not g.admitted]
        out.append(
            Waiting(
                namespace=ns,
                policies=len(plan.policies),
                rules=len(mine),
                thin_rules=sum(1 for r in mine if r.thin),
                held_back=len(held),
                held_back_edges=sum(len(g.edges) for g in held),
                pairs_closed=sum(1 for c in result.closed_pairs if ns in c.namespaces),
                external_closed=sum(1 for c in result.closed_external if ns in c.namespaces),
                broken=sum(
                    1 for b in result.broken if b.source.startswith(f"{ns}/") or b.dest.startswith(f"{ns}/")
                ),
            )
        )
    return tuple(sorted(out, key=lambda w: (-(w.pairs_closed + w.external_closed), w.namespace)))


DEFINITION = (
    "What a least-privilege suggestion made from this window (flowlens suggest --all-namespaces) would "
    "close if enforced, per namespace: workload pairs with a side in the namespace and external paths of "
    "its workloads reachable now (per the policies in force, when given) and not after; rules seen in "
    f"fewer than {THIN_INTERVALS} intervals are thin; held-back groups are suspicious traffic left out."
)
