"""Rendering of simulated records in every format flowlens reads, byte for byte as Calico writes them.

* ``enterprise``: a Felix ``flows.log`` line (Go ``json.Encoder`` of ``JSONOutput``: every key,
  nulls written, field order of the struct). Modern Calico Enterprise (F2 hit strings,
  ``enforced/pending/transit_policies`` and ``transit_*`` counters) by default; other releases
  and Felix settings by their :class:`~flowlens.sample.layouts.Layout` (which optional groups
  are there, and how hits are spelled).
* ``elasticsearch``: an export hit ``{"_index", "_id", "_score", "_source"}`` whose source is the
  Felix document plus what fluentd and Linseed add (``host``, ``@timestamp``, ``cluster``,
  ``generated_time``).
* ``goldmane``: a Goldmane emitter line (Go ``encoding/json`` of ``proto.Flow``: ``Key`` object,
  enums as integers, zero values omitted), aggregated across nodes per 5-minute window.
* ``whisker``: a ``FlowResponse`` of the Whisker backend ``/flows`` API (enum names, labels
  joined with ``" | "``, RFC 3339 times, ``PUBLIC NETWORK``/``PRIVATE NETWORK``).

Templates are built once per distinct record and cached on it, so rendering a record is one
``%`` format of its counters.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from flowlens.formats.hits import PolicyHit
from flowlens.sample import layouts
from flowlens.sample.layouts import Layout
from flowlens.sample.records import (
    BYTES_IN,
    BYTES_OUT,
    COMPLETED,
    NUM_FLOWS,
    PACKETS_IN,
    PACKETS_OUT,
    STARTED,
    RecordKey,
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

GOLDMANE_KINDS = {
    "NetworkPolicy": 1,
    "GlobalNetworkPolicy": 2,
    "StagedNetworkPolicy": 3,
    "StagedGlobalNetworkPolicy": 4,
    "StagedKubernetesNetworkPolicy": 5,
    "KubernetesNetworkPolicy": 6,
    "AdminNetworkPolicy": 7,
    "BaselineAdminNetworkPolicy": 8,
    "Profile": 9,
    "EndOfTier": 10,
    "ClusterNetworkPolicy": 11,
}
WHISKER_KINDS = {
    1: "CalicoNetworkPolicy",
    2: "GlobalNetworkPolicy",
    3: "StagedNetworkPolicy",
    4: "StagedGlobalNetworkPolicy",
    5: "StagedKubernetesNetworkPolicy",
    6: "NetworkPolicy",
    7: "AdminNetworkPolicy",
    8: "BaselineAdminNetworkPolicy",
    9: "Profile",
    10: "EndOfTier",
    11: "ClusterNetworkPolicy",
}
ACTIONS = {"allow": 1, "deny": 2, "pass": 3}
ACTION_NAMES = {0: "ActionUnspecified", 1: "Allow", 2: "Deny", 3: "Pass"}
ENDPOINT_TYPES = {"wep": 1, "hep": 2, "ns": 3, "net": 4}
REPORTERS = {"src": 1, "dst": 2}
REPORTER_NAMES = {1: "Src", 2: "Dst"}
WHISKER_NAMES = {"pub": "PUBLIC NETWORK", "pvt": "PRIVATE NETWORK"}


def all_policies(enforced: Sequence[PolicyHit], pending: Sequence[PolicyHit]) -> list[PolicyHit]:
    """The legacy dataplane trace: enforced hits with the staged hits of the pending trace in
    their place (the first tier where the two traces part), re-numbered."""
    common = 0
    while common < min(len(enforced), len(pending)) and enforced[common] == pending[common]:
        common += 1
    staged = [h for h in pending[common:] if h.staged]
    merged = list(enforced[:common]) + staged + list(enforced[common:])
    return [
        PolicyHit(i, h.tier, h.kind, h.namespace, h.name, h.action, h.rule_index)
        for i, h in enumerate(merged)
    ]


def _hit_list(hits: Sequence[PolicyHit], spelling: str, shuffle: bool) -> list[str]:
    texts = layouts.hit_texts(hits, spelling)
    if shuffle:  # Felix writes these sets in Go map order; flowlens must not rely on any order
        texts.reverse()
    return texts


def _endpoint_part(
    side: str, m: Any, labels: tuple[str, ...], port: int | None, nat: str, layout: Layout
) -> str:
    """``source_ip`` to ``source_labels`` (``dest_ip`` to ``dest_labels``, with ``dest_port``);
    ``nat``: the ``nat_outgoing_ports`` field of the source side."""
    return "".join(
        [
            f',"{side}_ip":' + _dumps(m.ip or None),
            f',"{side}_name":' + _dumps(m.name),
            f',"{side}_name_aggr":' + _dumps(m.name_aggr),
            f',"{side}_namespace":' + _dumps(m.namespace),
            nat + ',"source_port":null' if port is None else f',"dest_port":{port}',
            f',"{side}_type":' + _dumps(m.type),
            layouts.labels_field(side, labels, layout),
        ]
    )


def _flow_part(rk: RecordKey, layout: Layout, shuffle: bool) -> str:
    """``dest_service_namespace`` to ``policies``."""
    v = rk.verdict
    traces: dict[str, list[str]] = {}
    if layout.policies == layouts.ON:
        traces = {
            "enforced_policies": _hit_list(v.enforced, layout.hits, shuffle),
            "pending_policies": _hit_list(v.pending, layout.hits, shuffle),
        }
        if "all_policies" in layout.policy_keys:
            traces["all_policies"] = _hit_list(all_policies(v.enforced, v.pending), layout.hits, shuffle)
    return "".join(
        [
            layouts.service_fields(rk, layout),
            layouts.domains_field(rk, layout),
            ',"proto":' + _dumps(rk.proto),
            ',"action":' + _dumps(rk.action),
            ',"reporter":' + _dumps(rk.reporter),
            layouts.policies_field(traces, layout),
        ]
    )


#: rendered parts shared by many records (thousands of scanner records have one trace, a few
#: destinations): keyed by value, dropped when large
_PARTS: dict[tuple[Any, ...], str] = {}


def _part(key: tuple[Any, ...], make: Callable[[], str]) -> str:
    text = _PARTS.get(key)
    if text is None:
        if len(_PARTS) > 65536:
            _PARTS.clear()
        text = _PARTS[key] = make()
    return text


def felix_parts(rk: RecordKey, layout: Layout) -> tuple[str, str]:
    """The static parts of a Felix document: what goes between ``end_time`` and ``bytes_in``, and
    what follows ``packets_out`` (without the closing brace). The counters go in between."""
    s, d = rk.src, rk.dst
    shuffle = rk.index % 3 == 1
    nat = layouts.nat_ports_field(rk, layout)
    src = _part(
        ("src", s.ip, s.name, s.name_aggr, s.namespace, s.type, rk.src_labels, nat, layout),
        lambda: _endpoint_part("source", s, rk.src_labels, None, nat, layout),
    )
    dst = _part(
        ("dst", d.ip, d.name, d.name_aggr, d.namespace, d.type, rk.dst_labels, rk.dest_port, layout),
        lambda: _endpoint_part("dest", d, rk.dst_labels, rk.dest_port, "", layout),
    )
    flow = _part(
        ("flow", rk.service, rk.domains, rk.proto, rk.action, rk.reporter, rk.verdict, layout, shuffle),
        lambda: _flow_part(rk, layout, shuffle),
    )
    tail = "".join(
        [
            layouts.transit_fields(layout),
            layouts.http_fields(rk, layout),
            layouts.process_fields(rk, layout),
            layouts.original_ips_field(rk, layout),
            layouts.tcp_fields(rk, layout),
        ]
    )
    return src + dst + flow, tail


def enterprise_parts(rk: RecordKey, layout: Layout) -> tuple[bytes, bytes]:
    """A flows.log line is ``{"start_time":S,"end_time":E`` + A + :data:`ENTERPRISE_COUNTERS` +
    B + ``}``; A and B, encoded once per distinct record and cached on it. With the layout's
    ``es_fields``, B ends in ``"@timestamp":`` and the document goes on (see the producer)."""
    a, b = felix_parts(rk, layout)
    if layout.es_fields:
        b += ',"host":' + _dumps(rk.host) + ',"@timestamp":'
    else:
        b += "}\n"
    rk.ent_a = (a.encode(), b.encode())
    return rk.ent_a


#: the counter fields of a flows.log line, for ``%`` with a record's counters (JSONOutput order)
ENTERPRISE_COUNTERS = (
    b',"bytes_in":%d,"bytes_out":%d,"num_flows":%d,"num_flows_started":%d'
    b',"num_flows_completed":%d,"packets_in":%d,"packets_out":%d'
)


def elasticsearch_parts(rk: RecordKey, layout: Layout) -> tuple[str, str]:
    """An export hit is ``{"_index":..,"_id":"ID","_score":null,"_source":`` + the Felix document
    + B ending in ``"@timestamp":`` + the time + ``,"cluster":..,"generated_time":"G"}}``."""
    a, b = felix_parts(rk, layout)
    rk.es_tpl = (a, b + ',"host":' + _dumps(rk.host) + ',"@timestamp":')
    return rk.es_tpl


def es_prefix(cluster: str) -> str:
    return '{"_index":' + _dumps(f"tigera_secure_ee_flows.{cluster}.linseed-000001") + ',"_id":"'


def go_time(epoch_ms: int) -> str:
    """A UTC time as Go's ``time.Time`` JSON (RFC 3339, fractional seconds without trailing zeros)."""
    secs, ms = divmod(epoch_ms, 1000)
    text = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if ms:
        text += "." + f"{ms:03d}".rstrip("0")
    return text + "Z"


# -- Goldmane ---------------------------------------------------------------------------------


def goldmane_hit(h: PolicyHit) -> dict[str, Any]:
    """A PolicyHit as Goldmane's ``HitFromString`` builds it (end of tier -> EndOfTier + trigger),
    with Go's omitempty (zero values left out)."""
    kind = GOLDMANE_KINDS[h.kind]
    tier = "" if h.kind == "Profile" else h.tier
    out: dict[str, Any] = {}
    if h.rule_index == -1:
        out["kind"] = GOLDMANE_KINDS["EndOfTier"]
        if tier:
            out["tier"] = tier
        out["action"] = ACTIONS[h.action]
        if h.policy_index:
            out["policy_index"] = h.policy_index
        out["rule_index"] = -1
        trigger: dict[str, Any] = {"kind": kind}
        if h.namespace:
            trigger["namespace"] = h.namespace
        trigger["name"] = h.name
        if tier:
            trigger["tier"] = tier
        out["trigger"] = trigger
        return out
    out["kind"] = kind
    if h.namespace:
        out["namespace"] = h.namespace
    out["name"] = h.name
    if tier:
        out["tier"] = tier
    out["action"] = ACTIONS[h.action]
    if h.policy_index:
        out["policy_index"] = h.policy_index
    if h.rule_index:
        out["rule_index"] = h.rule_index
    return out


def goldmane_key(rk: RecordKey) -> str:
    """The ``Key`` object of a Goldmane flow (no IPs: Goldmane keys by aggregated names)."""
    t = rk.cache.get("gmkey")
    if t is None:
        s, d, svc, v = rk.src, rk.dst, rk.service, rk.verdict
        key: dict[str, Any] = {
            "source_name": s.name_aggr,
            "source_namespace": s.namespace,
            "source_type": ENDPOINT_TYPES[s.type],
            "dest_name": d.name_aggr,
            "dest_namespace": d.namespace,
            "dest_type": ENDPOINT_TYPES[d.type],
            "dest_port": rk.dest_port,
            "dest_service_name": svc[1] if svc else "-",
            "dest_service_namespace": svc[0] if svc else "-",
            "dest_service_port_name": svc[2] if svc else "-",
        }
        if svc:
            key["dest_service_port"] = svc[3]
        key["proto"] = rk.proto
        key["reporter"] = REPORTERS[rk.reporter]
        key["action"] = ACTIONS[rk.action]
        key["policies"] = {
            "enforced_policies": [goldmane_hit(h) for h in v.enforced],
            "pending_policies": [goldmane_hit(h) for h in v.pending],
        }
        t = rk.cache["gmkey"] = _dumps(key)
    return t


def intersect(labels: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    if len(labels) == 1:
        return labels[0]
    rest = [set(x) for x in labels[1:]]
    return tuple(x for x in labels[0] if all(x in r for r in rest))


_GM_COUNTERS = (
    ("packets_in", PACKETS_IN),
    ("packets_out", PACKETS_OUT),
    ("bytes_in", BYTES_IN),
    ("bytes_out", BYTES_OUT),
    ("num_connections_started", STARTED),
    ("num_connections_completed", COMPLETED),
    ("num_connections_live", NUM_FLOWS),
)


def goldmane_line(
    key_json: str,
    start: int,
    end: int,
    src_labels: tuple[str, ...],
    dst_labels: tuple[str, ...],
    c: Sequence[int],
) -> str:
    parts = ['{"Key":', key_json, ',"start_time":', str(start), ',"end_time":', str(end)]
    if src_labels:
        parts += [',"source_labels":', _dumps(sorted(src_labels))]
    if dst_labels:
        parts += [',"dest_labels":', _dumps(sorted(dst_labels))]
    for name, i in _GM_COUNTERS:
        if c[i]:
            parts += [',"', name, '":', str(c[i])]
    parts.append("}\n")
    return "".join(parts)


# -- Whisker ----------------------------------------------------------------------------------


def _whisker_hit(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {
        "kind": WHISKER_KINDS.get(obj.get("kind", 0), "KindUnspecified"),
        "name": obj.get("name", ""),
        "namespace": obj.get("namespace", ""),
        "tier": obj.get("tier", ""),
        "action": ACTION_NAMES[obj.get("action", 0)],
        "policy_index": obj.get("policy_index", 0),
        "rule_index": obj.get("rule_index", 0),
        "trigger": _whisker_hit(obj.get("trigger")),
    }


def whisker_flow(
    rk: RecordKey,
    start: int,
    end: int,
    src_labels: tuple[str, ...],
    dst_labels: tuple[str, ...],
    c: Sequence[int],
) -> dict[str, Any]:
    """A Whisker ``FlowResponse`` (what ``GET /whisker-backend/flows`` returns per item)."""
    s, d, v = rk.src, rk.dst, rk.verdict
    return {
        "start_time": go_time(start * 1000),
        "end_time": go_time(end * 1000),
        "action": ACTION_NAMES[ACTIONS[rk.action]],
        "source_name": WHISKER_NAMES.get(s.name_aggr, s.name_aggr) if s.type == "net" else s.name_aggr,
        "source_namespace": s.namespace,
        "source_labels": " | ".join(sorted(src_labels)),
        "dest_name": WHISKER_NAMES.get(d.name_aggr, d.name_aggr) if d.type == "net" else d.name_aggr,
        "dest_namespace": d.namespace,
        "dest_labels": " | ".join(sorted(dst_labels)),
        "protocol": rk.proto,
        "dest_port": rk.dest_port,
        "reporter": REPORTER_NAMES[REPORTERS[rk.reporter]],
        "policies": {
            "enforced": [_whisker_hit(goldmane_hit(h)) for h in v.enforced],
            "pending": [_whisker_hit(goldmane_hit(h)) for h in v.pending],
        },
        "packets_in": c[PACKETS_IN],
        "packets_out": c[PACKETS_OUT],
        "bytes_in": c[BYTES_IN],
        "bytes_out": c[BYTES_OUT],
    }


def dumps(obj: Any) -> str:
    """Compact JSON, as Go's encoding/json writes it."""
    return _dumps(obj)
