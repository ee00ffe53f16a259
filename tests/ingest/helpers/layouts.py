"""Valid records of every layout Calico writes (docs/formats.md), built field by field from the
field tables of Calico's flow-log formats.

Calico Enterprise (the flows.log fields and their groups): every optional field group present with
values, present but empty as Felix writes a feature that is off, or missing (an older release),
in any combination; at any aggregation level; hits in the F0, F1 or F2 spelling; as a Felix
line, a bare Elasticsearch document or a search hit. Goldmane (its Flow messages): Go ``encoding/json``
with every zero field left out, in any combination, bare or wrapped as ``{"id", "flow"}``.
Whisker (its API): FlowResponse objects with empty or joined labels, network names, end-of-tier
hits with and without a trigger, times in any zone.

Independent of flowlens' own sample generator on purpose: the ingest tests check flowlens
against the formats, not against itself.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from flowlens.formats.hits import PolicyHit, to_legacy

ON, OFF, ABSENT = "on", "off", "absent"
GROUPS = (
    "labels",
    "policies",
    "services",
    "domains",
    "nat_ports",
    "transit",
    "http",
    "process",
    "original_ips",
    "tcp",
    "es_fields",
)
POLICY_KEYS = ("all_policies", "enforced_policies", "pending_policies", "transit_policies")
TCP_KEYS = (
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
)
HITS = (
    PolicyHit(0, "security", "GlobalNetworkPolicy", None, "security.baseline", "pass", 1),
    PolicyHit(1, "default", "KubernetesNetworkPolicy", "shop", "allow-web", "allow", 0),
    PolicyHit(1, "platform", "NetworkPolicy", "shop", "platform.db", "deny", -1),
    PolicyHit(2, "__PROFILE__", "Profile", None, "kns.shop", "allow", 0),
    PolicyHit(1, "default", "StagedNetworkPolicy", "shop", "lockdown", "deny", 2),
    PolicyHit(0, "kube-admin", "ClusterNetworkPolicy", None, "guard", "deny", 3),
)


def spell(hit: PolicyHit, spelling: str) -> str:
    """A hit as Calico wrote it: F2 (modern), F1 (legacy) or F0 (legacy, four parts)."""
    if spelling == "f2" or hit.kind == "ClusterNetworkPolicy":  # no legacy form: v3.32+ only
        return hit.hit
    legacy = to_legacy(hit)
    return legacy.rsplit("|", 1)[0] if spelling == "f0" else legacy


def felix_record(
    states: dict[str, str], variant: int, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One valid Calico Enterprise record: ``states`` gives each group of :data:`GROUPS` (ON,
    OFF or ABSENT; ``es_fields`` ON or ABSENT); ``variant`` varies everything else (aggregation
    level, endpoint types, protocol, verdict, which traces, hit spelling); ``values`` overrides
    single fields (e.g. from hypothesis)."""
    v = variant
    level = v % 4
    proto = ("tcp", "udp", "icmp", "icmp6", "sctp", "47")[v % 6]
    src_type, dst_type = ("wep", "hep", "ns", "net")[v % 4], ("wep", "net", "hep", "ns")[(v // 4) % 4]
    ports = proto != "icmp"

    def endpoint(kind: str, name: str, ip: str) -> tuple[Any, str, str, str]:
        if kind == "net":
            return (ip if level < 2 else None), "-", ("pvt" if v % 2 else "pub"), "-"
        namespace = "shop" if kind in ("wep", "ns") else "-"
        aggr = {"wep": f"{name}-7d4f8c9b5-*", "hep": "node-1", "ns": f"{name}-set"}[kind]
        return (ip if level < 2 else None), (name if level < 2 else "-"), aggr, namespace

    doc: dict[str, Any] = {"start_time": 1_767_225_600 + v * 300, "end_time": 1_767_225_900 + v * 300}
    s_ip, s_name, s_aggr, s_ns = endpoint(src_type, "client", "10.0.1.5")
    d_ip, d_name, d_aggr, d_ns = endpoint(dst_type, "server", "10.0.2.9")
    doc.update(source_ip=s_ip, source_name=s_name, source_name_aggr=s_aggr, source_namespace=s_ns)
    if states["nat_ports"] != ABSENT:
        doc["nat_outgoing_ports"] = [40001, 40007] if states["nat_ports"] == ON and v % 3 else None
    doc["source_port"] = 43210 if level == 0 and ports else None
    doc["source_type"] = src_type
    labels_on = states["labels"] == ON
    if states["labels"] != ABSENT:
        doc["source_labels"] = {"labels": ["app=client", "tier=web"][: v % 3]} if labels_on else None
    doc.update(dest_ip=d_ip, dest_name=d_name, dest_name_aggr=d_aggr, dest_namespace=d_ns)
    doc["dest_port"] = 8080 if level < 3 and ports else None
    doc["dest_type"] = dst_type
    if states["labels"] != ABSENT:
        doc["dest_labels"] = (
            {"labels": ["app=server", "kubernetes.io/hostname=node-1"]} if labels_on else None
        )
    if states["services"] != ABSENT:
        svc = states["services"] == ON and v % 3 != 0
        doc["dest_service_namespace"] = "shop" if svc else "-"
        doc["dest_service_name"] = "server" if svc else "-"
        doc["dest_service_port"] = ("http", "*", "-")[v % 3] if svc and level < 3 else "-"
        doc["dest_service_port_num"] = 8080 if svc else None
    if states["domains"] != ABSENT:
        doc["dest_domains"] = (
            ["api.example.com", "example.com"] if states["domains"] == ON and v % 2 else None
        )
    doc["proto"] = proto
    doc["action"] = ("allow", "deny")[(v // 3) % 2]
    doc["reporter"] = ("src", "dst", "fwd", "src,fwd", "dst,fwd")[v % 5]
    if states["policies"] != ABSENT:
        doc["policies"] = _policies(v) if states["policies"] == ON else None
    doc.update(
        bytes_in=1800 + v,
        bytes_out=900,
        num_flows=2,
        num_flows_started=v % 3,
        num_flows_completed=1,
        packets_in=12,
        packets_out=10,
    )
    on = {group: states[group] == ON for group in GROUPS}
    if states["transit"] != ABSENT:
        doc.update(
            {
                f"transit_{k}": (7 if on["transit"] else 0)
                for k in ("bytes_in", "bytes_out", "packets_in", "packets_out")
            }
        )
    if states["http"] != ABSENT:
        doc.update(http_requests_allowed_in=40 if on["http"] else 0, http_requests_denied_in=int(on["http"]))
    if states["process"] != ABSENT:
        if not on["process"]:
            doc.update(process_name="-", num_process_names=0, process_id="-", num_process_ids=0)
            doc.update(process_args=["-"], num_process_args=0)
        elif v % 2:
            doc.update(
                process_name="/usr/bin/curl", num_process_names=1, process_id="4242", num_process_ids=1
            )
            doc.update(process_args=["-s", "http://server:8080/"], num_process_args=2)
        else:
            doc.update(process_name="*", num_process_names=3, process_id="*", num_process_ids=4)
            doc.update(process_args=["*"], num_process_args=1)
    if states["original_ips"] != ABSENT:
        ips = ["203.0.113.7", "198.51.100.1"][: 1 + v % 2] if on["original_ips"] and v % 3 else None
        doc.update(original_source_ips=ips, num_original_source_ips=len(ips or []))
    if states["tcp"] != ABSENT:
        doc.update({k: (i * 37 + v if on["tcp"] else 0) for i, k in enumerate(TCP_KEYS)})
    if states["es_fields"] != ABSENT:
        doc.update(host="node-1", **{"@timestamp": doc["end_time"] * 1000})
        if v % 2:  # what Linseed adds, sometimes
            doc.update(cluster="prod", generated_time="2026-01-01T00:05:03.27Z", id=f"doc-{v}")
    doc.update(values or {})
    return doc


def _policies(v: int) -> dict[str, Any]:
    """Any non-empty subset of the four traces (an empty object too), each a list of hits in one
    spelling, an empty list or null."""
    keys = [k for i, k in enumerate(POLICY_KEYS) if (v // 5) >> i & 1] if v % 17 else []
    spelling = ("f2", "f1", "f0")[v % 3]
    out: dict[str, Any] = {}
    for i, key in enumerate(keys):
        kind = (v + i) % 5
        if kind == 0:
            out[key] = None
        elif kind == 1:
            out[key] = []
        else:
            picked = [HITS[(v + i + j) % len(HITS)] for j in range(kind - 1)]
            out[key] = [spell(h, spelling) for h in picked]
    return out


def every_felix_layout() -> list[dict[str, str]]:
    """Every combination of the groups present or missing (2 ** 11); a present group alternates
    between ON and OFF so that both occur with every other group."""
    layouts = []
    for n, present in enumerate(itertools.product((True, False), repeat=len(GROUPS))):
        states = {}
        for i, (group, here) in enumerate(zip(GROUPS, present, strict=True)):
            states[group] = (ON if (n >> i) % 2 == 0 or group == "es_fields" else OFF) if here else ABSENT
        layouts.append(states)
    return layouts


# --- hypothesis ---------------------------------------------------------------------------------

DNS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s not in ("true", "false")  # (a name that reads like a JSON boolean is examined)
)
LABEL_KEY = st.builds(
    lambda prefix, name: f"{prefix}/{name}" if prefix else name,
    st.one_of(st.none(), st.sampled_from(["app.kubernetes.io", "example.com"])),
    st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?", fullmatch=True),
)
LABEL_VALUE = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?)?", fullmatch=True)
LABELS = st.dictionaries(LABEL_KEY, LABEL_VALUE, max_size=6).map(lambda d: [f"{k}={v}" for k, v in d.items()])


@st.composite
def felix_values(draw: st.DrawFn) -> dict[str, Any]:
    """Field values a record may hold, beyond the fixed ones of :func:`felix_record`."""
    out: dict[str, Any] = {
        "bytes_in": draw(st.integers(0, 2**62)),
        "packets_out": draw(st.integers(0, 2**40)),
        "source_namespace": draw(DNS),
        "dest_name_aggr": draw(DNS).rstrip("-") + "-*",
    }
    if draw(st.booleans()):
        out["source_labels"] = {"labels": draw(LABELS)}
    if draw(st.booleans()):
        out["dest_port"] = draw(st.one_of(st.none(), st.integers(0, 65535)))
    return out


@st.composite
def felix_layouts(draw: st.DrawFn) -> dict[str, str]:
    states = {group: draw(st.sampled_from((ON, OFF, ABSENT))) for group in GROUPS}
    states["es_fields"] = ON if states["es_fields"] == OFF else states["es_fields"]
    return states


# --- Goldmane -----------------------------------------------------------------------------------

GOLDMANE_OPTIONAL = (
    "source_name",
    "source_namespace",
    "source_type",
    "dest_name",
    "dest_namespace",
    "dest_type",
    "dest_port",
    "dest_service_name",
    "dest_service_namespace",
    "dest_service_port_name",
    "dest_service_port",
    "proto",
    "policies",
    "source_labels",
    "dest_labels",
    "packets_in",
    "packets_out",
    "bytes_in",
    "bytes_out",
    "num_connections_started",
    "num_connections_completed",
    "num_connections_live",
)


def goldmane_hit(v: int) -> dict[str, Any]:
    """A PolicyHit as Go's encoding/json writes it: zero fields left out."""
    kind = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)[v % 11]
    hit: dict[str, Any] = {"kind": kind, "name": f"policy-{v % 7}", "tier": "default", "action": 1 + v % 3}
    if kind in (1, 3, 5, 6):
        hit["namespace"] = "shop"
    if kind == 9:  # profiles: tier left empty
        hit.update(name="kns.shop")
        del hit["tier"]
    if v % 4:
        hit["policy_index"] = v % 4
    if kind == 10:  # end of tier, with or without the policy that triggered it
        hit["rule_index"] = -1
        del hit["name"]
        if v % 2:
            hit["trigger"] = {"kind": 1, "namespace": "shop", "name": "lockdown", "tier": "default"}
    elif v % 3:
        hit["rule_index"] = v % 3
    return hit


def goldmane_flow(v: int, omitted: frozenset[str], wrapped: bool = False) -> dict[str, Any]:
    """A Goldmane emitter flow with the fields in ``omitted`` left out (as zero or empty)."""
    key: dict[str, Any] = {
        "source_name": "client-7d4f8c9b5-*",
        "source_namespace": "shop",
        "source_type": 1 + v % 4,
        "dest_name": ("pub", "server-*", "node-1", "set")[v % 4],
        "dest_namespace": "shop",
        "dest_type": 1 + (v // 4) % 4,
        "dest_port": 8080,
        "dest_service_name": "server",
        "dest_service_namespace": "shop",
        "dest_service_port_name": "http",
        "dest_service_port": 8080,
        "proto": ("tcp", "udp", "icmp6", "sctp")[v % 4],
        "reporter": 1 + v % 2,
        "action": 1 + v % 3,
        "policies": {
            "enforced_policies": [goldmane_hit(v + i) for i in range(v % 3)],
            "pending_policies": [goldmane_hit(v * 7 + i) for i in range((v + 1) % 3)],
        },
    }
    if not key["policies"]["pending_policies"]:
        del key["policies"]["pending_policies"]
    if not key["policies"]["enforced_policies"]:
        del key["policies"]["enforced_policies"]
    flow: dict[str, Any] = {
        "Key": {k: val for k, val in key.items() if k not in omitted},
        "start_time": 1_767_225_600 + v * 15,
        "end_time": 1_767_225_900 + v * 15,
        "source_labels": ["app=client", "pod-template-hash=7d4f8c9b5"],
        "dest_labels": ["app=server"],
        "packets_in": 12,
        "packets_out": 10,
        "bytes_in": 1800,
        "bytes_out": 900,
        "num_connections_started": 2,
        "num_connections_completed": 1,
        "num_connections_live": 3,
    }
    flow = {k: val for k, val in flow.items() if k not in omitted}
    return {"id": v, "flow": flow} if wrapped else flow


# --- Whisker ------------------------------------------------------------------------------------


def whisker_hit(v: int) -> dict[str, Any]:
    kinds = ("CalicoNetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy", "NetworkPolicy",
             "ClusterNetworkPolicy", "Profile", "EndOfTier", "StagedKubernetesNetworkPolicy")  # fmt: skip
    kind = kinds[v % len(kinds)]
    hit: dict[str, Any] = {
        "kind": kind,
        "name": "kns.shop" if kind == "Profile" else f"policy-{v % 5}",
        "namespace": "shop"
        if kind in ("CalicoNetworkPolicy", "StagedNetworkPolicy", "NetworkPolicy")
        else "",
        "tier": "" if kind == "Profile" else "default",
        "action": ("Allow", "Deny", "Pass")[v % 3],
        "policy_index": v % 3,
        "rule_index": v % 4,
        "trigger": None,
    }
    if kind == "EndOfTier":
        hit.update(name="", namespace="", rule_index=-1)
        if v % 2:
            hit["trigger"] = {**whisker_hit(0), "kind": "CalicoNetworkPolicy", "name": "lockdown"}
    return hit


def whisker_flow(v: int) -> dict[str, Any]:
    net = v % 3 == 0
    zone = ("Z", "+01:00", "-05:30")[v % 3]
    fraction = ("", ".5", ".123456789")[(v // 3) % 3]
    return {
        "start_time": f"2026-01-01T0{v % 10}:00:00{fraction}{zone}",
        "end_time": f"2026-01-01T0{v % 10}:05:00{fraction}{zone}",
        "action": ("Allow", "Deny", "Pass")[v % 3],
        "source_name": ("PUBLIC NETWORK" if v % 2 else "PRIVATE NETWORK") if net else "client-7d4f8c9b5-*",
        "source_namespace": "" if net else "shop",
        "source_labels": "" if net else " | ".join(["app=client", "tier=web"][: 1 + v % 2]),
        "dest_name": ("server-*", "node-1")[v % 2],
        "dest_namespace": ("shop", "")[v % 2],
        "dest_labels": ("app=server", "")[v % 2],
        "protocol": ("tcp", "udp", "icmp")[v % 3],
        "dest_port": (8080, 0, 443)[v % 3],
        "reporter": ("Src", "Dst")[v % 2],
        "policies": {
            "enforced": [whisker_hit(v + i) for i in range(v % 3)],
            "pending": [whisker_hit(v * 3 + i) for i in range((v + 1) % 3)],
        },
        "packets_in": v,
        "packets_out": 0,
        "bytes_in": 100 * v,
        "bytes_out": 0,
    }
