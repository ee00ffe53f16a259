"""Goldmane flows as gRPC clients print them: the proto3 JSON mapping (``grpcurl``, Python's
``MessageToJson``), made into emitter records.

Goldmane's own emitter writes Go ``encoding/json`` of ``proto.Flow`` (snake_case keys, enums as
integers): the ``goldmane`` format. A capture of its gRPC API (``grpcurl ... goldmane.Flows/Stream``
or ``/List``) follows the standard proto3 JSON mapping instead: lowerCamelCase keys (``startTime``,
``sourceName``; ``Key`` stays ``Key``), 64-bit integers as strings (``"1700000000"``), enums by
name (``"WorkloadEndpoint"``, ``"Allow"``), fields at their zero value left out; a parser also
accepts the proto field names (``preserving_proto_field_name``). Such a capture is usually
pretty-printed, one response after another: ``{"id": "1", "flow": {...}}`` per streamed flow, or a
``List`` response ``{"meta": {...}, "flows": [...]}``.

:func:`to_emitter` turns one such record into the emitter's shape, so that it goes through the
``goldmane`` format's one parser and one set of checks. What it cannot map (an unknown enum name,
a number that is not an integer) it leaves as it is, for those checks to quarantine.
"""

from __future__ import annotations

import re
from typing import Any

# The proto3 JSON names (lowerCamelCase) of goldmane.Flow, FlowKey, PolicyTrace and PolicyHit
# fields, and the proto field names the emitter writes.
_FLOW_FIELDS = {
    "startTime": "start_time",
    "endTime": "end_time",
    "sourceLabels": "source_labels",
    "destLabels": "dest_labels",
    "packetsIn": "packets_in",
    "packetsOut": "packets_out",
    "bytesIn": "bytes_in",
    "bytesOut": "bytes_out",
    "numConnectionsStarted": "num_connections_started",
    "numConnectionsCompleted": "num_connections_completed",
    "numConnectionsLive": "num_connections_live",
}
_KEY_FIELDS = {
    "sourceName": "source_name",
    "sourceNamespace": "source_namespace",
    "sourceType": "source_type",
    "destName": "dest_name",
    "destNamespace": "dest_namespace",
    "destType": "dest_type",
    "destPort": "dest_port",
    "destServiceName": "dest_service_name",
    "destServiceNamespace": "dest_service_namespace",
    "destServicePortName": "dest_service_port_name",
    "destServicePort": "dest_service_port",
}
_TRACE_FIELDS = {"enforcedPolicies": "enforced_policies", "pendingPolicies": "pending_policies"}
_HIT_FIELDS = {"policyIndex": "policy_index", "ruleIndex": "rule_index"}
# int64 fields, which the mapping writes as strings
_FLOW_INTS = (
    "start_time",
    "end_time",
    *(v for v in _FLOW_FIELDS.values() if v not in ("source_labels", "dest_labels")),
)
_KEY_INTS = ("dest_port", "dest_service_port")
_HIT_INTS = ("policy_index", "rule_index")
# enums by name (api.proto: EndpointType, Reporter, Action, PolicyKind)
_ENDPOINT_TYPES = {
    "EndpointTypeUnspecified": 0,
    "WorkloadEndpoint": 1,
    "HostEndpoint": 2,
    "NetworkSet": 3,
    "Network": 4,
}
_REPORTERS = {"ReporterUnspecified": 0, "Src": 1, "Dst": 2}
_ACTIONS = {"ActionUnspecified": 0, "Allow": 1, "Deny": 2, "Pass": 3}
_POLICY_KINDS = {
    "KindUnspecified": 0,
    "CalicoNetworkPolicy": 1,
    "GlobalNetworkPolicy": 2,
    "StagedNetworkPolicy": 3,
    "StagedGlobalNetworkPolicy": 4,
    "StagedKubernetesNetworkPolicy": 5,
    "NetworkPolicy": 6,
    "AdminNetworkPolicy": 7,
    "BaselineAdminNetworkPolicy": 8,
    "Profile": 9,
    "EndOfTier": 10,
    "ClusterNetworkPolicy": 11,
}
_KEY_ENUMS = {
    "source_type": _ENDPOINT_TYPES,
    "dest_type": _ENDPOINT_TYPES,
    "reporter": _REPORTERS,
    "action": _ACTIONS,
}
_INTEGER = re.compile(r"-?[0-9]+")


def _renamed(obj: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``obj`` with its JSON names as proto field names (a proto field name is kept as it is)."""
    return {names.get(k, k): v for k, v in obj.items()}


def _int(value: Any) -> Any:
    """A 64-bit integer written as a string, as an integer; anything else as it is."""
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return value


def _enum(value: Any, names: dict[str, int]) -> Any:
    return names.get(value, value) if isinstance(value, str) else value


def _hit(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    hit = _renamed(obj, _HIT_FIELDS)
    for name in _HIT_INTS:
        if name in hit:
            hit[name] = _int(hit[name])
    if "kind" in hit:
        hit["kind"] = _enum(hit["kind"], _POLICY_KINDS)
    if "action" in hit:
        hit["action"] = _enum(hit["action"], _ACTIONS)
    if "trigger" in hit:
        hit["trigger"] = _hit(hit["trigger"])
    return hit


def _flow(obj: dict[str, Any]) -> dict[str, Any]:
    flow = _renamed(obj, _FLOW_FIELDS)
    for name in _FLOW_INTS:
        if name in flow:
            flow[name] = _int(flow[name])
    key = flow.get("Key")
    if isinstance(key, dict):
        key = _renamed(key, _KEY_FIELDS)
        for name in _KEY_INTS:
            if name in key:
                key[name] = _int(key[name])
        for name, names in _KEY_ENUMS.items():
            if name in key:
                key[name] = _enum(key[name], names)
        trace = key.get("policies")
        if isinstance(trace, dict):
            trace = _renamed(trace, _TRACE_FIELDS)
            for name in _TRACE_FIELDS.values():
                if isinstance(trace.get(name), list):
                    trace[name] = [_hit(h) for h in trace[name]]
            key["policies"] = trace
        flow["Key"] = key
    return flow


def to_emitter(record: Any) -> Any:
    """A Goldmane ``Flow`` or ``FlowResult`` (``{"id", "flow"}``) in the proto3 JSON mapping as the
    emitter writes it (a ``FlowResult`` stays wrapped); a record already in the emitter's shape
    comes back equal, and what is not an object as it is."""
    if not isinstance(record, dict):
        return record
    if isinstance(record.get("flow"), dict):
        return {**record, "id": _int(record.get("id")), "flow": _flow(record["flow"])}
    return _flow(record)


def _flow_and_key(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    inner = record.get("flow")
    flow: dict[str, Any] = inner if isinstance(inner, dict) else record
    key = flow.get("Key")
    return flow, key if isinstance(key, dict) else {}


def uses_json_names(record: Any) -> bool:
    """Whether a Goldmane record (a ``Flow`` or ``FlowResult``) has the mapping's lowerCamelCase
    names (``startTime``, ``sourceName``), which the emitter never writes."""
    if not isinstance(record, dict):
        return False
    flow, key = _flow_and_key(record)
    return any(name in flow for name in _FLOW_FIELDS) or any(name in key for name in _KEY_FIELDS)


def is_protojson(record: Any) -> bool:
    """Whether a Goldmane record is written in the proto3 JSON mapping: JSON names, or (with the
    proto field names) 64-bit integers as strings or enums by name."""
    if not isinstance(record, dict):
        return False
    if uses_json_names(record):
        return True
    flow, key = _flow_and_key(record)
    return isinstance(flow.get("start_time"), str) or any(
        isinstance(key.get(name), str) for name in _KEY_ENUMS
    )
