"""Replay of flow keys: one row of ``policy-flow-keys`` per key and recorded verdict in, one
:class:`SimulationRow` per key out, the same on the driver and on Spark's executors.

Owns :class:`SimulationRow`, :func:`group_rows` (a key's rows together), :func:`replay_key` (one
key evaluated and compared with its recorded verdict: the one definition of recorded, simulated,
undecided and change), :func:`replay_rows` (every key, in a stable order) and the order
``simulate`` sorts its rows in. :mod:`flowlens.policy.simulate` runs the queries and assembles
the results; :mod:`flowlens.policy.spark_replay` runs :func:`replay_key` in Spark's tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowlens.policy.evaluate import Decision, Evaluator
from flowlens.policy.model import Endpoint, FlowKey

CHANGES = ("newly-denied", "newly-allowed", "unchanged")
_CHANGE_RANK = {c: i for i, c in enumerate(CHANGES)}


@dataclass(frozen=True)
class SimulationRow:
    """One distinct flow key and reporter, replayed."""

    reporter: str
    source_type: str | None
    source_namespace: str | None
    source_name: str | None
    source_name_aggr: str | None
    source_ip: str | None
    dest_type: str | None
    dest_namespace: str | None
    dest_name: str | None
    dest_name_aggr: str | None
    dest_ip: str | None
    proto: str | None
    dest_port: int | None
    recorded_action: str  # allow | deny | mixed
    simulated_action: str
    change: str  # unchanged | newly-denied | newly-allowed
    simulated_trace: tuple[str, ...]
    pending_action: str
    pending_trace: tuple[str, ...]
    records: int
    records_allowed: int
    records_denied: int
    num_flows: int
    bytes: int
    notes: tuple[str, ...] = ()
    undecided: bool = False  # missing facts allowed both verdicts; the recorded one was kept

    @property
    def source(self) -> str:
        return _endpoint_text(self.source_type, self.source_namespace, self.source_name_aggr)

    @property
    def dest(self) -> str:
        return _endpoint_text(self.dest_type, self.dest_namespace, self.dest_name_aggr)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reporter": self.reporter,
            "source_type": self.source_type,
            "source_namespace": self.source_namespace,
            "source_name": self.source_name,
            "source_name_aggr": self.source_name_aggr,
            "source_ip": self.source_ip,
            "dest_type": self.dest_type,
            "dest_namespace": self.dest_namespace,
            "dest_name": self.dest_name,
            "dest_name_aggr": self.dest_name_aggr,
            "dest_ip": self.dest_ip,
            "proto": self.proto,
            "dest_port": self.dest_port,
            "recorded_action": self.recorded_action,
            "simulated_action": self.simulated_action,
            "change": self.change,
            "simulated_trace": list(self.simulated_trace),
            "pending_action": self.pending_action,
            "pending_trace": list(self.pending_trace),
            "records": self.records,
            "records_allowed": self.records_allowed,
            "records_denied": self.records_denied,
            "num_flows": self.num_flows,
            "bytes": self.bytes,
            "undecided": self.undecided,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------


def _dash(value: Any) -> Any:
    return None if value in (None, "-", "") else value


def _endpoint_text(kind: str | None, namespace: str | None, name: str | None) -> str:
    ns = _dash(namespace)
    name = name or "-"
    if kind in ("wep", "ns") and ns:
        return f"{ns}/{name}"
    return name


def _labels(value: Any) -> tuple[dict[str, str], bool]:
    if value is None:
        return {}, False
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}, True
    return {str(k): "" if v is None else str(v) for k, v in value}, True


def endpoint_from_record(
    kind: str | None,
    namespace: str | None,
    name: str | None,
    name_aggr: str | None,
    ip: str | None,
    labels: Any,
) -> Endpoint:
    """The endpoint a flow record describes (Calico's ``*_type``, ``*_namespace``, names, IP, labels)."""
    label_map, known = _labels(labels)
    kind = kind or "net"
    ns = _dash(namespace)
    plain = _dash(name)
    if kind == "net":
        return Endpoint("net", None, name_aggr, {}, _dash(ip))
    return Endpoint(kind, ns, plain or name_aggr, label_map, _dash(ip), labels_known=known)


def _group_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        row["reporter"],
        row["source_type"],
        row["source_namespace"],
        row["source_name"],
        row["source_name_aggr"],
        row["source_ip"],
        _freeze(row["source_labels"]),
        row["dest_type"],
        row["dest_namespace"],
        row["dest_name"],
        row["dest_name_aggr"],
        row["dest_ip"],
        _freeze(row["dest_labels"]),
        row["proto"],
        row["dest_port"],
    )


def _freeze(labels: Any) -> Any:
    if labels is None:
        return None
    items = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in items))


def _orderable(key: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    """A group key that sorts: None first, then the values (of one type per position)."""
    return tuple((value is not None, "" if value is None else value) for value in key)


def _flow_key(row: Mapping[str, Any]) -> FlowKey:
    src = endpoint_from_record(
        row["source_type"],
        row["source_namespace"],
        row["source_name"],
        row["source_name_aggr"],
        row["source_ip"],
        row["source_labels"],
    )
    dst = endpoint_from_record(
        row["dest_type"],
        row["dest_namespace"],
        row["dest_name"],
        row["dest_name_aggr"],
        row["dest_ip"],
        row["dest_labels"],
    )
    return FlowKey(row["reporter"], src, dst, row["proto"], row["dest_port"])


def _change(simulated: str, allowed: int, denied: int) -> str:
    if simulated == "deny" and allowed:
        return "newly-denied"
    if simulated == "allow" and denied:
        return "newly-allowed"
    return "unchanged"


def _sort_key(row: SimulationRow) -> tuple[Any, ...]:
    return (
        _CHANGE_RANK[row.change],
        row.source_namespace or "",
        row.source_name_aggr or "",
        row.dest_namespace or "",
        row.dest_name_aggr or "",
        row.proto or "",
        -1 if row.dest_port is None else row.dest_port,
        row.reporter,
        row.source_type or "",
        row.dest_type or "",
        row.source_name or "",
        row.dest_name or "",
        row.source_ip or "",
        row.dest_ip or "",
    )


#: A recorded variant of one key: (enforced trace or None, action, records).
Recorded = tuple[tuple[str, ...] | None, str, int]


def group_rows(key_rows: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], list[Mapping[str, Any]]]:
    """Rows of ``policy-flow-keys`` grouped by flow key (labels included): a key's rows differ in
    their recorded action (and, for ``policy-flow-traces``, their trace)."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in key_rows:
        groups.setdefault(_group_key(row), []).append(row)
    return groups


def replay_key(
    members: Sequence[Mapping[str, Any]], evaluator: Evaluator
) -> tuple[SimulationRow, Decision, tuple[Recorded, ...]]:
    """One flow key replayed: its rows (one per recorded action, see :func:`group_rows`)
    evaluated once, with the recorded (trace, action, records) variants for the consistency
    check. The one definition of a replayed key, on the driver and on Spark's executors."""
    first = members[0]
    decision = evaluator.evaluate(_flow_key(first))
    allowed = sum(int(m["records"]) for m in members if m["action"] == "allow")
    denied = sum(int(m["records"]) for m in members if m["action"] == "deny")
    recorded = "mixed" if allowed and denied else ("deny" if denied else "allow")
    action, trace, pending = decision.action, decision.enforced_hits, decision.pending_hits
    pending_action = decision.pending_action or decision.action
    notes = decision.notes
    if decision.undecided and recorded == decision.alternative_action != decision.action:
        # Missing facts allow both verdicts and the recorded one is among them: keep it
        # rather than report a change the facts do not support.
        action = decision.alternative_action
        trace = tuple(h.hit for h in decision.alternative_enforced)
        pending = tuple(h.hit for h in decision.alternative_pending)
        pending_action = action
        notes = (
            *notes,
            f"undecided for lack of facts: the policies give {decision.action} or {action}; "
            f"the recorded verdict {recorded} is kept",
        )
    sim = SimulationRow(
        reporter=first["reporter"],
        source_type=first["source_type"],
        source_namespace=first["source_namespace"],
        source_name=first["source_name"],
        source_name_aggr=first["source_name_aggr"],
        source_ip=first["source_ip"],
        dest_type=first["dest_type"],
        dest_namespace=first["dest_namespace"],
        dest_name=first["dest_name"],
        dest_name_aggr=first["dest_name_aggr"],
        dest_ip=first["dest_ip"],
        proto=first["proto"],
        dest_port=first["dest_port"],
        recorded_action=recorded,
        simulated_action=action,
        change=_change(action, allowed, denied),
        simulated_trace=trace,
        pending_action=pending_action,
        pending_trace=pending,
        records=sum(int(m["records"]) for m in members),
        records_allowed=allowed,
        records_denied=denied,
        num_flows=sum(int(m["num_flows"] or 0) for m in members),
        bytes=sum(int(m["bytes"] or 0) for m in members),
        notes=notes,
        undecided=decision.undecided,
    )
    recorded_variants: tuple[Recorded, ...] = tuple(
        (
            None if m.get("enforced_hits") is None else tuple(m["enforced_hits"]),
            str(m["action"]),
            int(m["records"]),
        )
        for m in members
    )
    return sim, decision, recorded_variants


def replay_rows(
    key_rows: Sequence[Mapping[str, Any]], evaluator: Evaluator
) -> tuple[list[SimulationRow], list[tuple[SimulationRow, Decision, tuple[Recorded, ...]]]]:
    """Evaluate grouped rows of ``policy-flow-keys``; also return, per key, the recorded
    (trace, action, records) variants for the consistency check."""
    rows: list[SimulationRow] = []
    variants: list[tuple[SimulationRow, Decision, tuple[Recorded, ...]]] = []
    # Keys in the order of their full key (labels included), not in the order the query returned
    # them: keys that print alike would otherwise come out in a different order from run to run.
    for _, members in sorted(group_rows(key_rows).items(), key=lambda item: _orderable(item[0])):
        replayed = replay_key(members, evaluator)
        rows.append(replayed[0])
        variants.append(replayed)
    return rows, variants
