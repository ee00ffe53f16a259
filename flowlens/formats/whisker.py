"""Calico open-source Whisker backend flows: the ``/flows`` list response and its event stream.

A list response is one JSON document ``{"total": {...}, "items": [FlowResponse, ...]}``; the
watch stream is server-sent events, one ``data: <FlowResponse>`` line per flow. A file of bare
FlowResponse objects, one per line, is read too. Enums are names (``Allow``, ``Src``), times are
RFC 3339, labels are one string joined by `` | ``, and networks are named ``PUBLIC NETWORK`` /
``PRIVATE NETWORK``. Whisker does not say the endpoint type: flowlens infers ``net`` for the two
network names, ``wep`` for a namespaced endpoint and ``hep`` otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowlens.formats.base import (
    INT,
    STR,
    TEXT,
    Format,
    check_fields,
    check_labels,
    check_range,
    sql_not_plain_int,
    sql_shape_lost,
)
from flowlens.formats.goldmane import diagnose_hits

_STRINGS = (
    "start_time",
    "end_time",
    "action",
    "source_name",
    "source_namespace",
    "source_labels",
    "dest_name",
    "dest_namespace",
    "dest_labels",
    "protocol",
    "reporter",
)
_INTS = ("dest_port", "packets_in", "packets_out", "bytes_in", "bytes_out")
STRUCTURE: dict[str, Any] = {
    **{k: "VARCHAR" for k in _STRINGS},
    **{k: "JSON" for k in _INTS},
    "policies": {"enforced": ["JSON"], "pending": ["JSON"]},
}
NETWORK_NAMES = {"PUBLIC NETWORK": "pub", "PRIVATE NETWORK": "pvt"}


def _name(expr: str) -> str:
    return f"CASE {expr} WHEN 'PUBLIC NETWORK' THEN 'pub' WHEN 'PRIVATE NETWORK' THEN 'pvt' ELSE {expr} END"


def _type(name: str, ns: str) -> str:
    return (
        f"CASE WHEN {name} IN ('PUBLIC NETWORK', 'PRIVATE NETWORK') THEN 'net' "
        f"WHEN COALESCE({ns}, '-') NOT IN ('', '-') THEN 'wep' ELSE 'hep' END"
    )


def _labels(expr: str) -> str:
    return f"CASE WHEN COALESCE({expr}, '') = '' THEN [] ELSE string_split({expr}, ' | ') END"


def _int(expr: str) -> str:
    return f"COALESCE(TRY_CAST({expr} AS BIGINT), 0)"


COLUMNS: dict[str, str] = {
    "cluster": "COALESCE($cluster_override, $cluster_default)",
    "start_time": "TRY_CAST(j.start_time AS TIMESTAMPTZ)",
    "end_time": "TRY_CAST(j.end_time AS TIMESTAMPTZ)",
    "source_name": "'-'",
    "source_name_aggr": _name("j.source_name"),
    "source_namespace": "COALESCE(NULLIF(j.source_namespace, ''), '-')",
    "source_type": _type("j.source_name", "j.source_namespace"),
    "source_labels": _labels("j.source_labels"),
    "dest_name": "'-'",
    "dest_name_aggr": _name("j.dest_name"),
    "dest_namespace": "COALESCE(NULLIF(j.dest_namespace, ''), '-')",
    "dest_type": _type("j.dest_name", "j.dest_namespace"),
    "dest_labels": _labels("j.dest_labels"),
    "dest_port": "NULLIF(TRY_CAST(j.dest_port AS INTEGER), 0)",
    "proto": "lower(j.protocol)",
    "action": "lower(j.action)",
    "reporter": "lower(j.reporter)",
    "enforced_policies": "list_transform(COALESCE(j.policies.enforced, []), lambda x: x::VARCHAR)",
    "pending_policies": "list_transform(COALESCE(j.policies.pending, []), lambda x: x::VARCHAR)",
    "bytes_in": _int("j.bytes_in"),
    "bytes_out": _int("j.bytes_out"),
    "packets_in": _int("j.packets_in"),
    "packets_out": _int("j.packets_out"),
}

SUSPECT = (
    "j IS NULL OR TRY_CAST(j.start_time AS TIMESTAMPTZ) IS NULL OR TRY_CAST(j.end_time AS TIMESTAMPTZ) IS NULL"
    " OR lower(j.action) NOT IN ('allow', 'deny', 'pass') OR action IS NULL"
    " OR lower(j.reporter) NOT IN ('src', 'dst') OR j.reporter IS NULL"
    + "".join(f" OR {sql_not_plain_int(f'j.{k}')}" for k in _INTS)
    + " OR TRY_CAST(j.dest_port AS BIGINT) NOT BETWEEN 0 AND 65535"
    + "".join(
        f" OR {sql_shape_lost(expr, key)}"
        for expr, key in (
            # (a value that is no object reads as an object of nulls)
            ("COALESCE(j.policies.enforced, j.policies.pending)", "policies"),
            ("j.policies.enforced", "enforced"),
            ("j.policies.pending", "pending"),
        )
    )
).replace(" OR action IS NULL", " OR j.action IS NULL")

# Names may be numbers, kept as their text as the batch keeps them; times, labels, the action
# and the reporter are read as text, and must be strings.
_NAMES = ("source_name", "source_namespace", "dest_name", "dest_namespace", "protocol")
_TYPES = {**{k: TEXT if k in _NAMES else STR for k in _STRINGS}, **{k: INT for k in _INTS}}


def _time_ok(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def diagnose(doc: Any) -> str | None:
    """The first problem with a FlowResponse, or None."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    reason = check_fields(doc, _TYPES, ("start_time", "end_time", "action", "reporter"))
    if reason:
        return reason
    for name in ("start_time", "end_time"):
        if not _time_ok(doc[name]):
            return f"field '{name}' is not an RFC 3339 time: {doc[name]!r}"
    if doc["action"].lower() not in ("allow", "deny", "pass"):
        return f"unknown action {doc['action']!r}"
    if doc["reporter"].lower() not in ("src", "dst"):
        return f"unknown reporter {doc['reporter']!r}"
    reason = check_range(doc, "dest_port", 0, 65535)
    if reason:
        return reason
    for name in ("source_labels", "dest_labels"):
        text = doc.get(name) or ""
        reason = check_labels(text.split(" | ") if text else [], name)
        if reason:
            return reason
    return diagnose_hits(doc.get("policies"), ("enforced", "pending"), "policies")


WHISKER = Format(
    name="whisker",
    description="Calico open-source Whisker /flows response, its event stream (data: lines), or FlowResponse lines",
    structure=STRUCTURE,
    columns=COLUMNS,
    suspect=SUSPECT,
    diagnose=diagnose,
    # the result columns of the strings that are neither times nor checked enums, and the labels
    text_columns=(
        "source_name_aggr",
        "source_namespace",
        "dest_name_aggr",
        "dest_namespace",
        "proto",
        "source_labels",
        "dest_labels",
    ),
    # (a bare FlowResponse line is tested first: ltrim copies the line)
    record_sql=(
        "CASE WHEN starts_with(t, '{') THEN t WHEN starts_with(t, 'data:') THEN ltrim(t[6:])"
        " WHEN starts_with(ltrim(t), '{') THEN t END"
    ),
    ignorable=("event:", "id:", "retry:", ":"),
)


def looks_like(record: dict[str, Any]) -> bool:
    return "protocol" in record and isinstance(record.get("start_time"), str)
