"""Calico open-source Goldmane flows: the emitter's NDJSON (Go ``encoding/json`` of ``proto.Flow``).

Keys are snake_case with a capitalised ``Key`` object, enums are integers, and zero or empty fields
are left out (``omitempty``), so an absent counter is 0 and an absent enum is "unspecified".
Goldmane has no IPs, no source port and no per-pod names: ``source_name`` in Goldmane is the
aggregated name, so it lands in ``source_name_aggr`` and ``source_name`` is ``-``. The
``flows`` debug stream's ``{"id": n, "flow": {...}}`` wrapper is accepted too.
"""

from __future__ import annotations

from typing import Any

from flowlens.formats.base import (
    INT,
    MAX_EPOCH_SECONDS,
    STR_LIST,
    TEXT,
    Format,
    check_fields,
    check_labels,
    check_range,
    sql_epoch_seconds,
    sql_not_plain_int,
    sql_shape_lost,
)
from flowlens.formats.hits import HitParseError, check_indexes, hit_from_object

ENDPOINT_TYPES = {1: "wep", 2: "hep", 3: "ns", 4: "net"}
REPORTERS = {1: "src", 2: "dst"}
ACTIONS = {1: "allow", 2: "deny", 3: "pass"}

_KEY_STRINGS = (
    "source_name",
    "source_namespace",
    "dest_name",
    "dest_namespace",
    "dest_service_name",
    "dest_service_namespace",
    "dest_service_port_name",
    "proto",
)
_KEY_INTS = ("source_type", "dest_type", "dest_port", "dest_service_port", "reporter", "action")
_COUNTERS = (
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "num_connections_started",
    "num_connections_completed",
    "num_connections_live",
)

_KEY_STRUCTURE: dict[str, Any] = {
    **{k: "VARCHAR" for k in _KEY_STRINGS},
    **{k: "JSON" for k in _KEY_INTS},
    "policies": {"enforced_policies": ["JSON"], "pending_policies": ["JSON"]},
}
_FLOW_STRUCTURE: dict[str, Any] = {
    "Key": _KEY_STRUCTURE,
    "start_time": "JSON",
    "end_time": "JSON",
    "source_labels": ["VARCHAR"],
    "dest_labels": ["VARCHAR"],
    **{k: "JSON" for k in _COUNTERS},
}
STRUCTURE: dict[str, Any] = {**_FLOW_STRUCTURE, "flow": _FLOW_STRUCTURE}


def _case(expr: str, table: dict[int, str]) -> str:
    whens = " ".join(f"WHEN {k} THEN '{v}'" for k, v in sorted(table.items()))
    return f"CASE TRY_CAST({expr} AS BIGINT) {whens} END"


def _int(expr: str) -> str:
    return f"COALESCE(TRY_CAST({expr} AS BIGINT), 0)"


def _columns() -> dict[str, str]:
    # The debug stream wraps each flow in {"id": n, "flow": {...}}: take whichever is present.
    f = "COALESCE(j.flow, j)"
    k = f"{f}.Key"
    dash = "COALESCE(NULLIF({}, ''), '-')"
    cols: dict[str, str] = {
        "cluster": "COALESCE($cluster_override, $cluster_default)",
        "start_time": sql_epoch_seconds(f"TRY_CAST({f}.start_time AS BIGINT)"),
        "end_time": sql_epoch_seconds(f"TRY_CAST({f}.end_time AS BIGINT)"),
        "source_name": "'-'",
        "source_name_aggr": f"{k}.source_name",
        "source_namespace": dash.format(f"{k}.source_namespace"),
        "source_type": _case(f"{k}.source_type", ENDPOINT_TYPES),
        "source_labels": f"COALESCE({f}.source_labels, [])",
        "dest_name": "'-'",
        "dest_name_aggr": f"{k}.dest_name",
        "dest_namespace": dash.format(f"{k}.dest_namespace"),
        "dest_type": _case(f"{k}.dest_type", ENDPOINT_TYPES),
        "dest_labels": f"COALESCE({f}.dest_labels, [])",
        "dest_port": f"NULLIF(TRY_CAST({k}.dest_port AS INTEGER), 0)",
        "dest_service_namespace": dash.format(f"{k}.dest_service_namespace"),
        "dest_service_name": dash.format(f"{k}.dest_service_name"),
        "dest_service_port": dash.format(f"{k}.dest_service_port_name"),
        "dest_service_port_num": f"NULLIF(TRY_CAST({k}.dest_service_port AS INTEGER), 0)",
        "proto": f"{k}.proto",
        "action": _case(f"{k}.action", ACTIONS),
        "reporter": _case(f"{k}.reporter", REPORTERS),
        "enforced_policies": f"list_transform(COALESCE({k}.policies.enforced_policies, []), lambda x: x::VARCHAR)",
        "pending_policies": f"list_transform(COALESCE({k}.policies.pending_policies, []), lambda x: x::VARCHAR)",
        "bytes_in": _int(f"{f}.bytes_in"),
        "bytes_out": _int(f"{f}.bytes_out"),
        "packets_in": _int(f"{f}.packets_in"),
        "packets_out": _int(f"{f}.packets_out"),
        "num_flows": _int(f"{f}.num_connections_live"),
        "num_flows_started": _int(f"{f}.num_connections_started"),
        "num_flows_completed": _int(f"{f}.num_connections_completed"),
    }
    return cols


def _suspect() -> str:
    f = "COALESCE(j.flow, j)"
    k = f"{f}.Key"
    ints = [f"{f}.{c}" for c in ("start_time", "end_time", *_COUNTERS)] + [f"{k}.{c}" for c in _KEY_INTS]
    bad_int = " OR ".join(sql_not_plain_int(e) for e in ints)
    shapes = " OR ".join(
        sql_shape_lost(expr, name)
        for expr, name in (
            (f"{f}.source_labels", "source_labels"),
            (f"{f}.dest_labels", "dest_labels"),
            # (a value that is no object reads as an object of nulls)
            (f"COALESCE({k}.policies.enforced_policies, {k}.policies.pending_policies)", "policies"),
            (f"{k}.policies.enforced_policies", "enforced_policies"),
            (f"{k}.policies.pending_policies", "pending_policies"),
        )
    )
    return (
        f"j IS NULL OR {k} IS NULL OR {f}.start_time IS NULL OR {f}.end_time IS NULL OR {bad_int}"
        f" OR {k}.reporter IS NULL OR {k}.action IS NULL OR {shapes}"
        # (0 is EndpointTypeUnspecified, which Goldmane leaves out as it leaves out any zero)
        f" OR TRY_CAST({k}.source_type AS BIGINT) NOT IN (0, 1, 2, 3, 4)"
        f" OR TRY_CAST({k}.dest_type AS BIGINT) NOT IN (0, 1, 2, 3, 4)"
        f" OR TRY_CAST({k}.reporter AS BIGINT) NOT IN (1, 2)"
        f" OR TRY_CAST({k}.action AS BIGINT) NOT IN (1, 2, 3)"
        f" OR TRY_CAST({k}.dest_port AS BIGINT) NOT BETWEEN 0 AND 65535"
        f" OR TRY_CAST({f}.start_time AS BIGINT) NOT BETWEEN 0 AND {MAX_EPOCH_SECONDS}"
        f" OR TRY_CAST({f}.end_time AS BIGINT) NOT BETWEEN 0 AND {MAX_EPOCH_SECONDS}"
    )


_TYPES = {"start_time": INT, "end_time": INT, "source_labels": STR_LIST, "dest_labels": STR_LIST}
_TYPES.update({c: INT for c in _COUNTERS})
_KEY_TYPES = {**{c: TEXT for c in _KEY_STRINGS}, **{c: INT for c in _KEY_INTS}}


def diagnose(doc: Any) -> str | None:
    """The first problem with an emitter line, or None."""
    if isinstance(doc, dict) and isinstance(doc.get("flow"), dict):
        doc = doc["flow"]
    if not isinstance(doc, dict):
        return "not a JSON object"
    reason = check_fields(doc, _TYPES, ("Key", "start_time", "end_time"))
    if reason:
        return reason
    key = doc["Key"]
    if not isinstance(key, dict):
        return "wrong type for field 'Key': expected an object"
    reason = check_fields(key, _KEY_TYPES, ("reporter", "action"))
    if reason:
        return "Key: " + reason
    for name in ("source_type", "dest_type"):
        # left out or 0: EndpointTypeUnspecified (a parser defaults an absent enum to 0)
        if key.get(name) not in (None, 0) and key[name] not in ENDPOINT_TYPES:
            return f"Key: unknown {name} {key[name]!r} (expected 0-4)"
    if key["reporter"] not in REPORTERS:
        return f"Key: unknown reporter {key['reporter']!r} (expected 1 or 2)"
    if key["action"] not in ACTIONS:
        return f"Key: unknown action {key['action']!r} (expected 1-3)"
    for name in ("start_time", "end_time"):
        reason = check_range(doc, name, 0, MAX_EPOCH_SECONDS)
        if reason:
            return reason
    reason = check_range(key, "dest_port", 0, 65535)
    if reason:
        return "Key: " + reason
    for name in ("source_labels", "dest_labels"):
        reason = check_labels(doc.get(name), name)
        if reason:
            return reason
    return diagnose_hits(key.get("policies"), ("enforced_policies", "pending_policies"), "Key.policies")


def diagnose_hits(policies: Any, keys: tuple[str, ...], where: str) -> str | None:
    if policies is None:
        return None
    if not isinstance(policies, dict):
        return f"wrong type for field '{where}': expected an object"
    for name in keys:
        hits = policies.get(name)
        if hits is None:
            continue
        if not isinstance(hits, list):
            return f"wrong type for field '{where}.{name}': expected a list"
        for h in hits:
            try:
                check_indexes(hit_from_object(h))
            except (HitParseError, TypeError, ValueError) as exc:
                return f"invalid policy hit in '{where}.{name}': {exc}"
    return None


GOLDMANE = Format(
    name="goldmane",
    description="Calico open-source Goldmane emitter NDJSON (enums as integers, zero fields omitted)",
    structure=STRUCTURE,
    columns=_columns(),
    suspect=_suspect(),
    diagnose=diagnose,
    # the result columns of _KEY_STRINGS, and the labels
    text_columns=(
        "source_name_aggr",
        "source_namespace",
        "dest_name_aggr",
        "dest_namespace",
        "dest_service_name",
        "dest_service_namespace",
        "dest_service_port",
        "proto",
        "source_labels",
        "dest_labels",
    ),
)


def looks_like(record: dict[str, Any]) -> bool:
    inner = record.get("flow") if isinstance(record.get("flow"), dict) else record
    return isinstance(inner, dict) and isinstance(inner.get("Key"), dict)
