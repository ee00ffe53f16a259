"""Calico Enterprise/Cloud flow logs: Felix ``flows.log`` lines and Elasticsearch exports.

A Felix line and an Elasticsearch ``_source`` document share one field list (the latter adds
``host``, ``@timestamp``, ``cluster``, ``generated_time`` and ``id``). Elasticsearch exports come
either as bare documents, one per line (read as ``enterprise``), or as search hits
``{"_index": ..., "_id": ..., "_source": {...}}`` (read as ``elasticsearch``).
"""

from __future__ import annotations

from typing import Any

from flowlens.formats.base import (
    COUNTER,
    DATE_OR_EPOCH_MS,
    INT,
    INT_LIST,
    LABELS_OBJ,
    MAX_EPOCH_SECONDS,
    STR_OR_INT,
    TEXT,
    TEXT_LIST,
    Format,
    check_fields,
    check_labels,
    check_range,
    sql_date_or_epoch_ms,
    sql_date_or_epoch_ms_odd,
)
from flowlens.formats.hits import HitParseError, check_indexes, parse_hit

# Counters every era of Felix writes (2019 records included): NULL here means missing or wrong.
_ALWAYS_INTS = (
    "bytes_in",
    "bytes_out",
    "packets_in",
    "packets_out",
    "num_flows",
    "num_flows_started",
    "num_flows_completed",
)
# Groups of fields that a Calico release writes all or none of (older releases lack whole
# groups; what a feature that is off writes is still a value: "-" or 0). A group whose values are
# all null was not written; one that is null in some columns only holds a null Calico never
# writes: suspect. Their counters are read as raw JSON (JSON_COUNTERS), so that a value of the
# wrong type is seen wherever it is, never read as a missing one.
GROUPS: dict[str, tuple[str, ...]] = {
    "http": ("http_requests_allowed_in", "http_requests_denied_in"),
    "process": ("num_process_names", "process_name", "num_process_ids", "process_id", "num_process_args"),
    "original_ips": ("num_original_source_ips",),
    "tcp": (
        "tcp_mean_send_congestion_window",
        "tcp_min_send_congestion_window",
        "tcp_mean_smooth_rtt",
        "tcp_max_smooth_rtt",
        "tcp_mean_min_rtt",
        "tcp_max_min_rtt",
        "tcp_mean_mss",
        "tcp_min_mss",
        "tcp_total_retransmissions",
        "tcp_lost_packets",
        "tcp_unrecovered_to",
    ),
    "transit": ("transit_bytes_in", "transit_bytes_out", "transit_packets_in", "transit_packets_out"),
}
_OPTIONAL_COUNTERS = tuple(
    n for group in GROUPS.values() for n in group if n not in ("process_name", "process_id")
)
# Integers that are legitimately null: read as raw JSON so a wrong type is still seen.
_NULLABLE_INTS = ("source_port", "dest_port", "dest_service_port_num")
_STRINGS = (
    "source_ip",
    "source_name",
    "source_name_aggr",
    "source_namespace",
    "source_type",
    "dest_ip",
    "dest_name",
    "dest_name_aggr",
    "dest_namespace",
    "dest_type",
    "dest_service_namespace",
    "dest_service_name",
    "dest_service_port",
    "proto",
    "action",
    "reporter",
    "process_name",
    "host",
    "cluster",
    "generated_time",
    "id",
)
POLICY_KEYS = ("enforced_policies", "pending_policies", "all_policies", "transit_policies")
REQUIRED = ("start_time", "end_time", "action", "reporter")
ACTIONS = ("allow", "deny")
# src and dst; newer Calico Enterprise releases also report forwarded (transit) traffic
REPORTERS = ("src", "dst", "fwd", "src,fwd", "dst,fwd")


def _sql_set(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_RARE_LISTS = {
    "nat_outgoing_ports": '["INTEGER"]',
    "dest_domains": '["VARCHAR"]',
    "process_args": '["VARCHAR"]',
    "original_source_ips": '["VARCHAR"]',
}
STRUCTURE: dict[str, Any] = {
    # JSON text, made timestamps by ingest (JSON_TIMES): as BIGINT, DuckDB would read numeric
    # text and round a fraction, which the diagnosis rejects
    "start_time": "JSON",
    "end_time": "JSON",
    # Epoch milliseconds from fluentd, an ISO-8601 text from other shippers (fluent-bit):
    # read as text, either becomes a timestamp (sql_date_or_epoch_ms)
    "@timestamp": "VARCHAR",
    # The counters every release writes: raw JSON too, made integers by ingest with the
    # diagnosis' own coercion (JSON_COUNTERS). Read as BIGINT, DuckDB would take texts the
    # diagnosis rejects ("1_000") and the two paths would disagree on such a line.
    **{k: "JSON" for k in _ALWAYS_INTS},
    **{k: "VARCHAR" for k in _STRINGS},
    "process_id": "VARCHAR",
    # Kept as JSON text: ingest converts and checks each distinct label set and trace once.
    "source_labels": "JSON",
    "dest_labels": "JSON",
    "policies": "JSON",
    # Usually null: kept as raw JSON (NULL costs nothing) and converted only when present, so a
    # value of the wrong type is seen instead of silently becoming NULL.
    **{k: "JSON" for k in _NULLABLE_INTS},
    # Optional counters: raw JSON too, so that a value that is no number is told from a missing
    # field (both would be NULL as BIGINT) and quarantined, and one that coerces (numeric text,
    # a fraction, a boolean) is coerced exactly as the diagnosis does (JSON_COUNTERS).
    **{k: "JSON" for k in _OPTIONAL_COUNTERS},
    **{k: "JSON" for k in _RARE_LISTS},
}

TYPES: dict[str, str] = {
    "start_time": INT,
    "end_time": INT,
    "@timestamp": DATE_OR_EPOCH_MS,
    **{k: COUNTER for k in _ALWAYS_INTS + _OPTIONAL_COUNTERS},
    **{k: INT for k in _NULLABLE_INTS},
    **{k: TEXT for k in _STRINGS},
    "process_id": STR_OR_INT,
    "source_labels": LABELS_OBJ,
    "dest_labels": LABELS_OBJ,
    "nat_outgoing_ports": INT_LIST,
    "dest_domains": TEXT_LIST,
    "process_args": TEXT_LIST,
    "original_source_ips": TEXT_LIST,
}


# An Elasticsearch index of multi-index mode names its cluster: tigera_secure_ee_flows.<cluster>.<n>,
# or with a tenant tigera_secure_ee_flows.<tenant>.<cluster>.<n> (Linseed's index names).
_INDEX_PREFIX = "tigera_secure_ee_flows."


def _cluster_of_index(index: str) -> str:
    dots = f"length({index}) - length(replace({index}, '.', ''))"
    return (
        f"CASE WHEN starts_with({index}, '{_INDEX_PREFIX}') THEN CASE {dots} "
        f"WHEN 2 THEN nullif(split_part({index}, '.', 2), '') "
        f"WHEN 3 THEN nullif(split_part({index}, '.', 3), '') END END"
    )


def _columns(d: str, es_id: str, index: str | None = None) -> dict[str, str]:
    """The canonical columns of records at ``d``; ``index``: the Elasticsearch index of a hit,
    which names the cluster when the record does not (multi-index mode)."""
    q = f'{d}."@timestamp"'
    named = f"{d}.cluster" if index is None else f"{d}.cluster, {_cluster_of_index(index)}"
    cols: dict[str, str] = {
        "cluster": f"COALESCE($cluster_override, {named}, $cluster_default)",
        "start_time": f"{d}.start_time",  # JSON text, made a timestamp by ingest (JSON_TIMES)
        "end_time": f"{d}.end_time",
        **{name: f"json_transform({d}.{name}, '{shape}')" for name, shape in _RARE_LISTS.items()},
        "process_id": f"{d}.process_id",
        "es_timestamp": sql_date_or_epoch_ms(q),
        "generated_time": f"TRY_CAST({d}.generated_time AS TIMESTAMPTZ)",
        "es_id": es_id,
    }
    for name in _STRINGS:
        if name not in ("cluster", "generated_time", "id"):
            cols[name] = f"{d}.{name}"
    for name in _NULLABLE_INTS + _ALWAYS_INTS + _OPTIONAL_COUNTERS:
        cols[name] = f"{d}.{name}"  # JSON text, made an integer by ingest (JSON_INTS, JSON_COUNTERS)
    return cols


# Strings that are result columns under their own name, unchanged (see _columns); and the
# process id, a string or an integer (either reads as its text).
TEXT_COLUMNS = (*(n for n in _STRINGS if n not in ("cluster", "generated_time", "id")), "process_id")
JSON_INTS = {
    "source_port": (0, 65535),
    "dest_port": (0, 65535),
    "dest_service_port_num": (-(2**31), 2**31 - 1),
}
# Counters, JSON text made an integer by ingest as the diagnosis coerces it (COUNTER).
JSON_COUNTERS = _ALWAYS_INTS + _OPTIONAL_COUNTERS
# Times in whole seconds, JSON text made a timestamp by ingest (out of range: null, suspect).
JSON_TIMES = ("start_time", "end_time")
# Result columns under the field's own name; start_time and end_time are null out of range too.
NOT_NULL = REQUIRED + _ALWAYS_INTS


def _json_columns(d: str) -> dict[str, str]:
    return {name: f"{d}.{name}" for name in ("source_labels", "dest_labels", "policies")}


def _suspect(d: str) -> str:
    # A list's items, seen in its compact JSON text (only where the list is there): converted to
    # ["VARCHAR"], a null, a boolean or a list inside would be a null or its text; to ["INTEGER"],
    # anything but an integer would be null or the number it spells. (Text that merely holds such
    # characters only has the line looked at.)
    odd_items = {
        "nat_outgoing_ports": "regexp_matches({x}, '[^0-9,\\[\\]-]|.\\[')",
        **{
            n: "regexp_matches({x}, '[\\[,](null|true|false|\\[|\\{{)')"
            for n in _RARE_LISTS
            if n != "nat_outgoing_ports"
        },
    }
    # The usual list of strings holds one (process_args ["-"]): text that opens with [", closes
    # with "] and has no comma is one string, with no need to look further.
    one_string = "prefix({x}, '[\"') AND suffix({x}, '\"]') AND NOT contains({x}, ',')"
    lists = " OR ".join(
        f"CASE WHEN {d}.{n} IS NULL THEN false"
        + (f" WHEN {one_string.format(x=f'{d}.{n}')} THEN false" if n != "nat_outgoing_ports" else "")
        + f" WHEN json_type({d}.{n}) <> 'ARRAY' THEN true ELSE {odd_items[n].format(x=f'{d}.{n}')} END"
        for n in _RARE_LISTS
    )
    # DuckDB turns any JSON value into text for a VARCHAR field: a list, an object or a boolean
    # there is seen by its text (a string that merely looks like one passes the diagnosis). The
    # strings that are result columns as they are, the ports and the fields that must not be null
    # are checked by ingest on the Arrow result (TEXT_COLUMNS, JSON_INTS, NOT_NULL, GROUPS);
    # the rest is checked here. (prefix compares bytes: cheaper than taking the first character
    # with left())
    texts = " OR ".join(
        f"prefix({d}.{n}, '[') OR prefix({d}.{n}, '{{') OR {d}.{n} IN ('true', 'false')"
        for n in _STRINGS
        if n not in TEXT_COLUMNS
    )
    values = f"{d}.action NOT IN {_sql_set(ACTIONS)} OR {d}.reporter NOT IN {_sql_set(REPORTERS)}"
    # Labels and policies are JSON text, checked by ingest once per distinct text.
    when = sql_date_or_epoch_ms_odd(f'{d}."@timestamp"')
    return f"{d} IS NULL OR {lists} OR {texts} OR {values} OR {when}"


def diagnose_document(doc: Any) -> str | None:
    """The first problem with a flows.log record / ``_source`` document, or None."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    reason = check_fields(doc, TYPES, REQUIRED)
    if reason:
        return reason
    for name, allowed in (("action", ACTIONS), ("reporter", REPORTERS)):
        if doc[name] not in allowed:
            return f"invalid value for field '{name}': {doc[name]!r} (expected one of {', '.join(allowed)})"
    for name in ("start_time", "end_time"):
        reason = check_range(doc, name, 0, MAX_EPOCH_SECONDS)
        if reason:
            return reason
    for name, (low, high) in JSON_INTS.items():
        reason = check_range(doc, name, low, high)
        if reason:
            return reason
    for name in ("source_labels", "dest_labels"):
        value = doc.get(name)
        reason = check_labels(value.get("labels") if isinstance(value, dict) else None, name)
        if reason:
            return reason
    policies = doc.get("policies")
    if policies is not None:
        if not isinstance(policies, dict):
            return "wrong type for field 'policies': expected an object"
        for key in POLICY_KEYS:
            hits = policies.get(key)
            if hits is None:
                continue
            if not isinstance(hits, list) or not all(isinstance(h, str) for h in hits):
                return f"wrong type for field 'policies.{key}': expected a list of strings"
            for h in hits:
                try:
                    check_indexes(parse_hit(h, strict=False))
                except HitParseError as exc:
                    return f"invalid policy hit in 'policies.{key}': {exc}"
    return None


def diagnose_hit(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    if "_source" in doc:
        return (
            diagnose_document(doc["_source"])
            if isinstance(doc["_source"], dict)
            else "'_source' is not an object"
        )
    return diagnose_document(doc)


ENTERPRISE = Format(
    name="enterprise",
    description="Calico Enterprise/Cloud flows.log (Felix), one JSON object per line; also bare Elasticsearch documents",
    structure=STRUCTURE,
    columns=_columns("j", "j.id"),
    suspect=_suspect("j"),
    diagnose=diagnose_document,
    json_columns=_json_columns("j"),
    text_columns=TEXT_COLUMNS,
    json_ints=JSON_INTS,
    json_counters=JSON_COUNTERS,
    json_times=JSON_TIMES,
    not_null=NOT_NULL,
    groups=tuple(GROUPS.values()),
)

ELASTICSEARCH = Format(
    name="elasticsearch",
    description='Elasticsearch export of tigera_secure_ee_flows*: search hits {"_id": ..., "_source": {...}}, one per line',
    structure={"_id": "VARCHAR", "_index": "VARCHAR", "_source": STRUCTURE},
    columns=_columns("j._source", "COALESCE(j._id, j._source.id)", "j._index"),
    suspect=_suspect("j._source"),
    diagnose=diagnose_hit,
    json_columns=_json_columns("j._source"),
    text_columns=TEXT_COLUMNS,
    json_ints=JSON_INTS,
    json_counters=JSON_COUNTERS,
    json_times=JSON_TIMES,
    not_null=NOT_NULL,
    groups=tuple(GROUPS.values()),
)


def looks_like(record: dict[str, Any]) -> str | None:
    """Which of the two formats a parsed first record belongs to, if any."""
    if "_source" in record and isinstance(record["_source"], dict):
        return "elasticsearch"
    keys = set(record)
    if {"start_time", "end_time", "action", "reporter"} <= keys and isinstance(record.get("start_time"), int):
        return "enterprise"
    return None
