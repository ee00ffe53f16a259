"""The canonical flow schema: every column of the store, its type and meaning, in one place.

Column names are Calico's own (Felix ``flows.log`` keys), so the same name is used from the raw
JSON to Parquet to SQL to Python. Columns that Calico does not have (provenance, ``cluster``)
are marked as flowlens columns. ``flowlens schema`` prints this table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pyarrow as pa

from flowlens.errors import UsageError

SCHEMA_VERSION = 1

#: One entry of a policy trace (``enforced_policies`` and friends), whatever format wrote it.
POLICY_HIT = pa.struct(
    [
        pa.field("policy_index", pa.int32()),
        pa.field("tier", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("name", pa.string()),
        pa.field("action", pa.string()),
        pa.field("rule_index", pa.int32()),
        pa.field("staged", pa.bool_()),
        pa.field("end_of_tier", pa.bool_()),
        pa.field("hit", pa.string()),
    ]
)

#: Meaning of each field of :data:`POLICY_HIT`.
POLICY_HIT_DOC: dict[str, str] = {
    "policy_index": "position of the hit in its trace, from 0 (enforced traces count enforced hits only)",
    "tier": "tier name; '__PROFILE__' for profile hits",
    "kind": (
        "GlobalNetworkPolicy, NetworkPolicy (Calico), KubernetesNetworkPolicy, "
        "StagedGlobalNetworkPolicy, StagedNetworkPolicy, StagedKubernetesNetworkPolicy, "
        "ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Profile, "
        "or EndOfTier (an end-of-tier hit that names no policy)"
    ),
    "namespace": "policy namespace; null for global kinds and profiles",
    "name": (
        "policy resource name as applied (Kubernetes names without 'knp.default.', default-tier "
        "Calico names without 'default.', no 'staged:' marker); profile name for profiles "
        "(e.g. 'kns.production')"
    ),
    "action": "allow, deny or pass",
    "rule_index": "index of the matching rule; -1 = end of tier (tier default action); -2 or null = unknown",
    "staged": "true for the Staged* kinds",
    "end_of_tier": "true when no rule matched and the tier's default action applied (rule_index -1)",
    "hit": "the hit in Calico's modern string form, e.g. 0|default|knp:production/allow-web|allow|0",
}

POLICY_LIST = pa.list_(POLICY_HIT)
LABELS = pa.map_(pa.string(), pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One column of the store."""

    name: str
    type: pa.DataType
    doc: str
    flowlens: bool = False  # a flowlens column rather than a Calico field


def _c(name: str, type_: pa.DataType, doc: str, flowlens: bool = False) -> Column:
    return Column(name, type_, doc, flowlens)


_I64 = pa.int64()
_I32 = pa.int32()
_S = pa.string()

COLUMNS: tuple[Column, ...] = (
    _c("cluster", _S, "cluster the record came from (--cluster, the ES 'cluster' field, or 'default')", True),
    _c("start_time", TIMESTAMP, "start of the export interval, UTC"),
    _c("end_time", TIMESTAMP, "end of the export interval, UTC"),
    _c("source_ip", _S, "source IP; null when masked by aggregation (level >= 2) or not logged"),
    _c("source_name", _S, "pod / host endpoint / network set name; '-' when aggregated or type net"),
    _c(
        "source_name_aggr",
        _S,
        "aggregated name ('frontend-7d4f8c9b5-*'); 'pvt' or 'pub' for type net; hostname for hep",
    ),
    _c("source_namespace", _S, "namespace; '-' when not namespaced (net, hep, GlobalNetworkSet)"),
    _c("source_port", _I32, "source L4 port; null when aggregated (level >= 1) or ICMP"),
    _c("source_type", _S, "wep (pod), hep (host endpoint), ns (network set), net (no known endpoint)"),
    _c(
        "source_labels",
        LABELS,
        "source labels, key -> value; null when labels were not logged; intersection over aggregated endpoints",
    ),
    _c("nat_outgoing_ports", pa.list_(_I32), "post-SNAT source ports"),
    _c("dest_ip", _S, "destination IP; null when masked by aggregation or not logged"),
    _c("dest_name", _S, "destination name; '-' when aggregated or type net"),
    _c("dest_name_aggr", _S, "aggregated destination name; 'pvt' or 'pub' for type net"),
    _c("dest_namespace", _S, "destination namespace; '-' when not namespaced"),
    _c("dest_port", _I32, "destination L4 port; null for ICMP and aggregation level 3"),
    _c("dest_type", _S, "wep, hep, ns or net"),
    _c("dest_labels", LABELS, "destination labels, key -> value; null when not logged"),
    _c("dest_service_namespace", _S, "namespace of the Kubernetes Service; '-' when none"),
    _c("dest_service_name", _S, "Service name; '-' when none"),
    _c("dest_service_port", _S, "Service port NAME; '-' none or unnamed, '*' several"),
    _c("dest_service_port_num", _I32, "Service port number; null when no service"),
    _c("dest_domains", pa.list_(_S), "DNS names associated with the destination IP"),
    _c("proto", _S, "tcp, udp, icmp, icmp6, sctp, ipip, esp, or the protocol number"),
    _c("action", _S, "allow or deny: the final verdict"),
    _c("reporter", _S, "src (egress, at the source), dst (ingress, at the destination), or fwd variants"),
    _c(
        "enforced_policies",
        POLICY_LIST,
        "policy trace that decided the flow; null when policies were not logged",
    ),
    _c("pending_policies", POLICY_LIST, "trace with staged policies treated as enforced"),
    _c("all_policies", POLICY_LIST, "legacy trace including staged hits (Calico Enterprise up to 2025)"),
    _c("transit_policies", POLICY_LIST, "policies evaluated for forwarded traffic"),
    _c("bytes_in", _I64, "bytes received by the reporting endpoint in the interval"),
    _c("bytes_out", _I64, "bytes sent by the reporting endpoint in the interval"),
    _c("packets_in", _I64, "packets received in the interval"),
    _c("packets_out", _I64, "packets sent in the interval"),
    _c("transit_bytes_in", _I64, "transit (forwarded) bytes in"),
    _c("transit_bytes_out", _I64, "transit bytes out"),
    _c("transit_packets_in", _I64, "transit packets in"),
    _c("transit_packets_out", _I64, "transit packets out"),
    _c("num_flows", _I64, "connections tracked in the interval (Goldmane: num_connections_live)"),
    _c("num_flows_started", _I64, "connections started in the interval"),
    _c("num_flows_completed", _I64, "connections completed in the interval"),
    _c("http_requests_allowed_in", _I64, "inbound HTTP requests allowed by application-layer policy"),
    _c("http_requests_denied_in", _I64, "inbound HTTP requests denied by application-layer policy"),
    _c("process_name", _S, "process name; '-' not collected, '*' several"),
    _c("num_process_names", _I64, "number of process names"),
    _c("process_id", _S, "PID as text; '-' not collected, '*' several"),
    _c("num_process_ids", _I64, "number of PIDs"),
    _c("process_args", pa.list_(_S), "process arguments"),
    _c("num_process_args", _I64, "number of process arguments"),
    _c("original_source_ips", pa.list_(_S), "client IPs seen through an ingress (X-Forwarded-For)"),
    _c("num_original_source_ips", _I64, "number of original source IPs"),
    _c("tcp_mean_send_congestion_window", _I64, "TCP stats (flowLogsCollectTcpStats)"),
    _c("tcp_min_send_congestion_window", _I64, "TCP stats"),
    _c("tcp_mean_smooth_rtt", _I64, "TCP stats, microseconds"),
    _c("tcp_max_smooth_rtt", _I64, "TCP stats, microseconds"),
    _c("tcp_mean_min_rtt", _I64, "TCP stats, microseconds"),
    _c("tcp_max_min_rtt", _I64, "TCP stats, microseconds"),
    _c("tcp_mean_mss", _I64, "TCP stats"),
    _c("tcp_min_mss", _I64, "TCP stats"),
    _c("tcp_total_retransmissions", _I64, "TCP stats"),
    _c("tcp_lost_packets", _I64, "TCP stats"),
    _c("tcp_unrecovered_to", _I64, "TCP stats"),
    _c("host", _S, "node name (added by fluentd; Goldmane and Whisker have none)"),
    _c("es_timestamp", TIMESTAMP, "Elasticsearch '@timestamp' (end_time, added by fluentd)"),
    _c("generated_time", TIMESTAMP, "time Linseed received the record"),
    _c("es_id", _S, "Elasticsearch document id ('_id' or 'id')"),
    _c("format", _S, "input format: enterprise, elasticsearch, goldmane or whisker", True),
    _c("ingest_id", _S, "the ingest run that stored the row", True),
    _c("source_file", _S, "path of the file the row was read from ('-' for stdin)", True),
    _c("source_line", _I64, "1-based line number in the (decompressed) source file", True),
)

#: The hive partition column; not stored inside the Parquet files, present in the ``flows`` view.
PARTITION_COLUMN = Column("date", pa.date32(), "UTC date of start_time (hive partition)", True)

ARROW_SCHEMA = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

# Policy-trace columns, in the order Calico documents them.
POLICY_COLUMNS = ("enforced_policies", "pending_policies", "all_policies", "transit_policies")

# Values Calico writes for "not included" / "aggregated".
NOT_INCLUDED = "-"
AGGREGATED = "*"

# Endpoint types.
ENDPOINT_TYPES = ("wep", "hep", "ns", "net")

# Policy kinds as stored in the ``kind`` field of a hit, with their short form (Calico's modern
# flow-log format) and whether they are namespaced.
KINDS: dict[str, tuple[str, bool]] = {
    "GlobalNetworkPolicy": ("gnp", False),
    "NetworkPolicy": ("np", True),
    "KubernetesNetworkPolicy": ("knp", True),
    "StagedGlobalNetworkPolicy": ("sgnp", False),
    "StagedNetworkPolicy": ("snp", True),
    "StagedKubernetesNetworkPolicy": ("sknp", True),
    "ClusterNetworkPolicy": ("kcnp", False),
    "AdminNetworkPolicy": ("kanp", False),
    "BaselineAdminNetworkPolicy": ("kbanp", False),
    "Profile": ("pro", False),
    "EndOfTier": ("eot", False),
}
SHORT_KINDS: dict[str, str] = {short: kind for kind, (short, _) in KINDS.items()}
PROFILE_TIER = "__PROFILE__"


def describe() -> list[tuple[str, str, str]]:
    """Rows of (column, type, meaning) for every column, the partition column last."""
    rows = [(c.name, str(c.type), c.doc + (" [flowlens]" if c.flowlens else "")) for c in COLUMNS]
    rows.append((PARTITION_COLUMN.name, str(PARTITION_COLUMN.type), PARTITION_COLUMN.doc))
    return rows


def render_schema(fmt: str = "text") -> str:
    """What ``flowlens schema`` prints: every column with its type and meaning, then the policy-hit
    fields; ``fmt`` is ``text`` (aligned, for people) or ``json`` (for scripts)."""
    rows = describe()
    if fmt == "json":
        document = {
            "columns": [{"name": n, "type": t, "doc": d} for n, t, d in rows],
            "policy_hit": POLICY_HIT_DOC,
        }
        return json.dumps(document, indent=2) + "\n"
    width = max(len(n) for n, _, _ in rows)
    lines = [f"{name:<{width}}  {type_}\n{'':<{width}}  {doc}" for name, type_, doc in rows]
    lines.append("\npolicy hit fields (enforced_policies, pending_policies, all_policies, transit_policies):")
    lines += [f"  {name:<13} {doc}" for name, doc in POLICY_HIT_DOC.items()]
    return "\n".join(lines) + "\n"


#: A Kubernetes namespace name: a DNS label (RFC 1123), at most 63 characters.
NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_namespace(name: str) -> str:
    """``name`` if it is a valid Kubernetes namespace name (a DNS label), else UsageError."""
    if len(name) > 63 or not NAMESPACE_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a Kubernetes namespace name (lower-case letters, digits and '-', "
            "at most 63 characters)"
        )
    return name
