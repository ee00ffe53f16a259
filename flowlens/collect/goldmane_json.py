"""Goldmane ``Flow`` messages as emitter lines, and their dedupe key.

The Goldmane collector receives ``goldmane.Flow`` protobuf messages. It writes each as the line
Goldmane's own emitter would POST (Go ``encoding/json`` of ``proto.Flow``: snake_case keys, a
capitalised ``Key``, enums as integers, zero and empty fields left out), so that the rows go
through the ``goldmane`` format of :mod:`flowlens.formats` like any emitter file: one parser,
one set of checks, the same columns whether the flows came by file, by push or by stream.

:func:`flow_digest` is the dedupe key of a flow within its bucket (see
:mod:`flowlens.collect.buckets`): 8 bytes of XXH3 over the flow key's deterministic protobuf
encoding and the bucket's end.

This module needs no protobuf import: it reads the messages' fields by name.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import xxhash

from flowlens.collect.buckets import DIGEST_BYTES

if TYPE_CHECKING:
    from flowlens.collect.proto.goldmane_pb2 import Flow, PolicyHit

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
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _hit(hit: PolicyHit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if hit.kind:
        out["kind"] = int(hit.kind)
    for name in ("namespace", "name", "tier"):
        value = getattr(hit, name)
        if value:
            out[name] = value
    if hit.action:
        out["action"] = int(hit.action)
    if hit.policy_index:
        out["policy_index"] = hit.policy_index
    if hit.rule_index:
        out["rule_index"] = hit.rule_index
    if hit.HasField("trigger"):
        out["trigger"] = _hit(hit.trigger)
    return out


def flow_object(flow: Flow) -> dict[str, Any]:
    """The emitter's JSON object of ``flow`` (omitempty: zero and empty fields left out)."""
    key = flow.Key
    k: dict[str, Any] = {}
    for name in _KEY_STRINGS:
        value = getattr(key, name)
        if value:
            k[name] = value
    for name in _KEY_INTS:
        value = int(getattr(key, name))
        if value:
            k[name] = value
    if key.HasField("policies"):
        trace: dict[str, Any] = {}
        enforced = [_hit(h) for h in key.policies.enforced_policies]
        pending = [_hit(h) for h in key.policies.pending_policies]
        if enforced:
            trace["enforced_policies"] = enforced
        if pending:
            trace["pending_policies"] = pending
        k["policies"] = trace
    out: dict[str, Any] = {"Key": k}
    if flow.start_time:
        out["start_time"] = flow.start_time
    if flow.end_time:
        out["end_time"] = flow.end_time
    if flow.source_labels:
        out["source_labels"] = list(flow.source_labels)
    if flow.dest_labels:
        out["dest_labels"] = list(flow.dest_labels)
    for name in _COUNTERS:
        value = getattr(flow, name)
        if value:
            out[name] = value
    return out


def flow_line(flow: Flow) -> bytes:
    """``flow`` as one emitter line, newline included."""
    return _dumps(flow_object(flow)).encode("utf-8") + b"\n"


def flow_digest(flow: Flow) -> bytes:
    """The dedupe key of ``flow`` within its bucket (the bucket start is kept beside it)."""
    h = xxhash.xxh3_64(flow.Key.SerializeToString(deterministic=True))
    h.update(flow.end_time.to_bytes(8, "little", signed=True))
    return h.digest()[:DIGEST_BYTES]
