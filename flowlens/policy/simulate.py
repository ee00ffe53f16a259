"""What-if replay: recorded flows against a candidate policy set, and the consistency check.

Owns :func:`simulate` (one :class:`SimulationRow` per distinct flow key and reporter: recorded
and simulated verdicts, the change, the simulated trace and the counts) and
:func:`check_consistency` (records whose recorded action or enforced trace the policies in force
do not reproduce). Distinct keys come from the named queries ``policy-flow-keys`` (simulate) and
``policy-flow-traces`` (with the recorded traces, for the check), so the store is scanned once
and each key is evaluated once in Python (:mod:`flowlens.policy.replay`): on the driver, or, on
the Spark engine with many keys, in Spark's tasks (:mod:`flowlens.policy.spark_replay`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flowlens.policy.evaluate import Evaluator
from flowlens.policy.inventory import Inventory
from flowlens.policy.model import PolicySet
from flowlens.policy.replay import (
    CHANGES,
    Recorded,
    SimulationRow,
    _flow_key,
    _sort_key,
    endpoint_from_record,
    group_rows,
    replay_key,
    replay_rows,
)
from flowlens.policy.versions import CalicoVersion

__all__ = [
    "CHANGES",
    "ConsistencyReport",
    "Inconsistency",
    "Recorded",
    "SimulationResult",
    "SimulationRow",
    "_flow_key",
    "_sort_key",
    "check_consistency",
    "endpoint_from_record",
    "group_rows",
    "replay_key",
    "replay_rows",
    "simulate",
]


@dataclass(frozen=True)
class SimulationResult:
    """Every replayed key, sorted (changes first), with totals and the notes of the run."""

    rows: tuple[SimulationRow, ...]
    notes: tuple[str, ...]
    executor_keys: int = 0  # keys Spark's executors evaluated (0: all on the driver)

    def count(self, change: str) -> int:
        return sum(1 for r in self.rows if r.change == change)

    def records(self, change: str | None = None) -> int:
        return sum(r.records for r in self.rows if change is None or r.change == change)

    @property
    def totals(self) -> dict[str, dict[str, int]]:
        """Per change: keys, records, num_flows and bytes."""
        out: dict[str, dict[str, int]] = {}
        for change in CHANGES:
            rows = [r for r in self.rows if r.change == change]
            out[change] = {
                "keys": len(rows),
                "records": sum(r.records for r in rows),
                "num_flows": sum(r.num_flows for r in rows),
                "bytes": sum(r.bytes for r in rows),
            }
        return out


@dataclass(frozen=True)
class Inconsistency:
    """A recorded key whose action or enforced trace the policies do not reproduce."""

    row: SimulationRow
    recorded_trace: tuple[str, ...]
    problem: str


@dataclass(frozen=True)
class ConsistencyReport:
    keys_checked: int
    records_checked: int
    mismatches: tuple[Inconsistency, ...]
    notes: tuple[str, ...]
    undecided_keys: int = 0  # keys the facts could not decide, whose recorded outcome is possible

    @property
    def ok(self) -> bool:
        return not self.mismatches


# --------------------------------------------------------------------------------------------


def _key_rows(
    engine: Any,
    namespace: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    *,
    traces: bool = False,
) -> list[dict[str, Any]]:
    query = "policy-flow-traces" if traces else "policy-flow-keys"
    table = engine.run(query, {"namespace": namespace, "since": since, "until": until})
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def simulate(
    engine: Any,
    policy_set: PolicySet,
    inventory: Inventory | None = None,
    *,
    namespace: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    calico_version: CalicoVersion | None = None,
    driver_keys: int | None = None,
) -> SimulationResult:
    """Replay the flows of ``engine`` (a :class:`flowlens.engine.Engine`) against ``policy_set``.

    One row per distinct flow key and reporter; ``change`` compares the simulated verdict with
    the recorded one (``mixed`` recorded keys count as changed in the direction of the simulated
    verdict). Rows are sorted: newly-denied, newly-allowed, unchanged, then by workload pair.
    ``calico_version`` picks the Calico behaviour where versions differ (detected from the
    manifests when None).

    On the Spark engine the keys are evaluated on the executors when there are more than
    ``driver_keys`` of them (None: the session's ``spark.flowlens.simulate.driverKeys``, see
    :mod:`flowlens.policy.spark_replay`); the result is the same either way.
    """
    from flowlens.engine.spark import SparkEngine

    evaluator = Evaluator(policy_set, inventory, calico_version=calico_version)
    executor_keys = 0
    if isinstance(engine, SparkEngine):
        from flowlens.policy.spark_replay import replay_on_spark

        params = {"namespace": namespace, "since": since, "until": until}
        replay = replay_on_spark(engine, evaluator, params, driver_keys=driver_keys)
        rows, executor_keys = replay.rows, replay.executor_keys
    else:
        rows, _ = replay_rows(_key_rows(engine, namespace, since, until), evaluator)
        rows.sort(key=_sort_key)
    notes = list(evaluator.policy_set.notes) + list(inventory.notes if inventory else ())
    return SimulationResult(tuple(rows), tuple(notes), executor_keys)


def check_consistency(
    engine: Any,
    policy_set: PolicySet,
    inventory: Inventory | None = None,
    *,
    namespace: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    calico_version: CalicoVersion | None = None,
) -> ConsistencyReport:
    """Replay recorded flows against the policies that were in force and list every key whose
    recorded action or recorded enforced trace differs from the evaluation.

    Records without a recorded trace (policies not logged) are checked on their action only.
    """
    evaluator = Evaluator(policy_set, inventory, calico_version=calico_version)
    key_rows = _key_rows(engine, namespace, since, until, traces=True)
    _, variants = replay_rows(key_rows, evaluator)
    mismatches: list[Inconsistency] = []
    undecided = 0
    for sim, decision, recorded in variants:
        outcomes = [(decision.action, decision.enforced_hits)]
        if decision.undecided:
            undecided += 1
            outcomes.append(
                (str(decision.alternative_action), tuple(h.hit for h in decision.alternative_enforced))
            )
        for trace, action, _records in recorded:
            if any(action == a and (trace is None or trace == t) for a, t in outcomes):
                continue
            problems = []
            if all(action != a for a, _ in outcomes):
                problems.append(f"recorded {action}, evaluated {' or '.join(a for a, _ in outcomes)}")
            if trace is not None and all(trace != t for _, t in outcomes):
                evaluated = " or ".join(str(list(t)) for _, t in outcomes)
                problems.append(f"recorded trace {list(trace)} differs from evaluated {evaluated}")
            mismatches.append(Inconsistency(sim, trace or (), "; ".join(problems)))
    mismatches.sort(key=lambda m: (_sort_key(m.row), m.recorded_trace))
    notes = list(evaluator.policy_set.notes) + list(inventory.notes if inventory else ())
    return ConsistencyReport(
        keys_checked=len(variants),
        records_checked=sum(int(r["records"]) for r in key_rows),
        mismatches=tuple(mismatches),
        notes=tuple(notes),
        undecided_keys=undecided,
    )
