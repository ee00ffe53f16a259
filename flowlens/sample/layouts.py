"""Record layouts: which optional field groups a Calico Enterprise record carries, and how.

Felix writes every key of its ``JSONOutput``, but what some keys hold depends on its settings
(labels, policies and services only with ``flowLogsFileInclude*``; process information and TCP
statistics only when collected), and older releases lack whole groups of keys (2019 records
have neither services nor process fields, and only ``all_policies``). A :class:`Layout` says,
for each optional group, whether its keys are there with values (:data:`ON`), there but empty as
Felix writes a feature that is off (:data:`OFF`), or missing (:data:`ABSENT`, an older release),
and how policy hits are spelled. :data:`LAYOUTS` are the named layouts ``flowlens sample
--layout`` writes; ``sample`` is the default and what ``sample_logs/`` holds.

The values of the groups the sample cluster does not simulate (process names, TCP statistics,
NAT ports, original source IPs, HTTP counts) are made up per record, deterministically, in the
ranges Calico writes; they are there to exercise readers, not to be analysed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from flowlens.errors import UsageError
from flowlens.formats.enterprise import GROUPS as FIELD_GROUPS
from flowlens.formats.hits import PolicyHit, to_legacy
from flowlens.sample.records import Member, RecordKey

ON, OFF, ABSENT = "on", "off", "absent"
#: how a layout may spell policy hits: F2 (Calico v3.32+, Enterprise 2026), F1 (up to 2025),
#: F0 (2019-2021: four parts, no rule index)
HIT_SPELLINGS = ("modern", "legacy", "f0")
POLICY_KEYS = ("all_policies", "enforced_policies", "pending_policies", "transit_policies")
TCP_KEYS = FIELD_GROUPS["tcp"]  # in the order Felix writes them
#: the optional groups, each ON, OFF or ABSENT in a layout
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
)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True)
class Layout:
    """One layout of a Felix record; each group is ON, OFF or ABSENT (see the module)."""

    name: str
    description: str
    hits: str = "modern"
    #: the keys of the policies object, in Felix's order (when ``policies`` is ON)
    policy_keys: tuple[str, ...] = ("enforced_policies", "pending_policies", "transit_policies")
    labels: str = ON  # source_labels, dest_labels (OFF: null, flowLogsFileIncludeLabels off)
    policies: str = ON  # policies (OFF: null, flowLogsFileIncludePolicies off)
    services: str = ON  # dest_service_* (OFF: "-" and null, flowLogsFileIncludeService off)
    domains: str = ON  # dest_domains (OFF: null)
    nat_ports: str = OFF  # nat_outgoing_ports (OFF: null)
    transit: str = OFF  # transit_{bytes,packets}_{in,out} (2026; OFF: zero)
    http: str = OFF  # http_requests_{allowed,denied}_in (OFF: zero)
    process: str = OFF  # process_name/_id/_args and their counts (OFF: "-", 0, ["-"])
    original_ips: str = OFF  # original_source_ips, num_original_source_ips (OFF: null, 0)
    tcp: str = OFF  # tcp_* statistics (OFF: zero, flowLogsCollectTcpStats off)
    #: what fluentd and Linseed add (host, @timestamp, cluster, generated_time, id): a bare
    #: Elasticsearch document rather than a Felix line (search hits always have them)
    es_fields: bool = False

    def __post_init__(self) -> None:
        if self.hits not in HIT_SPELLINGS:
            raise UsageError(f"layout {self.name!r}: hits must be one of {', '.join(HIT_SPELLINGS)}")
        unknown = [k for k in self.policy_keys if k not in POLICY_KEYS]
        if unknown or list(self.policy_keys) != sorted(self.policy_keys, key=POLICY_KEYS.index):
            raise UsageError(
                f"layout {self.name!r}: policy keys must be some of {', '.join(POLICY_KEYS)}, in order"
            )
        for group in GROUPS:
            if getattr(self, group) not in (ON, OFF, ABSENT):
                raise UsageError(f"layout {self.name!r}: {group} must be on, off or absent")


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "sample",
            "Calico Enterprise 2026 as the sample cluster's Felix writes it: labels, policies "
            "(F2 hits) and services on, process and TCP statistics off (the default)",
        ),
        Layout(
            "felix-defaults",
            "Felix's own defaults: labels, policies and services not included (null and '-'), "
            "process and TCP statistics off",
            labels=OFF,
            policies=OFF,
            services=OFF,
            domains=OFF,
        ),
        Layout(
            "labels-policies",
            "an older release with labels and policies (F1 hits, all_policies) but no service, "
            "domain, NAT, process or TCP keys (as the 2020 documentation example)",
            hits="legacy",
            policy_keys=("all_policies", "enforced_policies", "pending_policies"),
            services=ABSENT,
            domains=ABSENT,
            nat_ports=ABSENT,
            transit=ABSENT,
            process=ABSENT,
            tcp=ABSENT,
        ),
        Layout(
            "2025",
            "Calico Enterprise 2025: F1 hits, all_policies beside enforced and pending, no transit fields",
            hits="legacy",
            policy_keys=("all_policies", "enforced_policies", "pending_policies"),
            transit=ABSENT,
        ),
        Layout(
            "2019",
            "Calico Enterprise 2019: F0 hits in all_policies only; no service, domain, NAT, "
            "process, original IP or TCP keys",
            hits="f0",
            policy_keys=("all_policies",),
            services=ABSENT,
            domains=ABSENT,
            nat_ports=ABSENT,
            transit=ABSENT,
            process=ABSENT,
            original_ips=ABSENT,
            tcp=ABSENT,
        ),
        Layout(
            "full",
            "every optional group with values: all four policy traces, NAT ports, domains, "
            "process information, original source IPs, HTTP counts, TCP statistics, and what "
            "fluentd and Linseed add (a bare Elasticsearch document)",
            policy_keys=POLICY_KEYS,
            nat_ports=ON,
            transit=ON,
            http=ON,
            process=ON,
            original_ips=ON,
            tcp=ON,
            es_fields=True,
        ),
    )
}
DEFAULT_LAYOUT = "sample"


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UsageError(f"unknown layout {name!r}: choose one of {', '.join(LAYOUTS)}") from None


# --- the groups' JSON, as fragments that start with a comma ------------------------------------


#: Up to v3.31 Calico enforced the cluster guardrails as an AdminNetworkPolicy and the one
#: BaselineAdminNetworkPolicy ('default'): a ClusterNetworkPolicy hit of the model is written as
#: the hit of its counterpart in ``policies-v3.31/`` (rulebook G10).
_LEGACY_GUARDRAILS = {
    "kube-admin": ("adminnetworkpolicy", "AdminNetworkPolicy", None),
    "kube-baseline": ("baselineadminnetworkpolicy", "BaselineAdminNetworkPolicy", "default"),
}


def legacy_hit(h: PolicyHit) -> str:
    """The F1 string of a hit, as a Calico v3.29-v3.31 cluster with the same guardrails writes it."""
    mapped = _LEGACY_GUARDRAILS.get(h.tier) if h.kind == "ClusterNetworkPolicy" else None
    if mapped is not None:
        tier, kind, name = mapped
        h = PolicyHit(h.policy_index, tier, kind, None, name or h.name, h.action, h.rule_index)
    return to_legacy(h)


def hit_texts(hits: Sequence[PolicyHit], spelling: str) -> list[str]:
    """The hit strings of a layout's spelling: ``modern``, ``legacy`` (F1, as Calico up to v3.31
    writes them, guardrails included) or ``f0`` (F1 without the rule index)."""
    if spelling == "modern":
        return [h.hit for h in hits]
    texts = [legacy_hit(h) for h in hits]
    if spelling == "f0":
        texts = [t.rsplit("|", 1)[0] for t in texts]
    return texts


def _mix(rk: RecordKey, salt: int) -> int:
    """A number from 0 to 2**31 - 1 that depends on the record and ``salt`` only."""
    return (rk.index * 2_654_435_761 + salt * 40_503) % 2_147_483_647


def labels_field(side: str, labels: tuple[str, ...], layout: Layout) -> str:
    if layout.labels == ABSENT:
        return ""
    value = '{"labels":' + _dumps(list(labels)) + "}" if layout.labels == ON else "null"
    return f',"{side}_labels":{value}'


def nat_ports_field(rk: RecordKey, layout: Layout) -> str:
    """Post-SNAT source ports: egress to the internet is NATed (at most three, ascending)."""
    if layout.nat_ports == ABSENT:
        return ""
    if layout.nat_ports == ON and rk.reporter == "src" and rk.dst.type == "net":
        first = 32768 + _mix(rk, 1) % 28000
        ports = [first + i * 7 for i in range(1 + _mix(rk, 2) % 3)]
        return ',"nat_outgoing_ports":' + _dumps(ports)
    return ',"nat_outgoing_ports":null'


def service_fields(rk: RecordKey, layout: Layout) -> str:
    if layout.services == ABSENT:
        return ""
    svc = rk.service if layout.services == ON else None
    return "".join(
        [
            ',"dest_service_namespace":' + _dumps(svc[0] if svc else "-"),
            ',"dest_service_name":' + _dumps(svc[1] if svc else "-"),
            ',"dest_service_port":' + _dumps(svc[2] if svc else "-"),
            ',"dest_service_port_num":' + (str(svc[3]) if svc else "null"),
        ]
    )


def domains_field(rk: RecordKey, layout: Layout) -> str:
    if layout.domains == ABSENT:
        return ""
    if layout.domains == ON and rk.domains:
        return ',"dest_domains":' + _dumps(list(rk.domains))
    return ',"dest_domains":null'


def policies_field(traces: dict[str, list[str]], layout: Layout) -> str:
    """``traces``: the hit texts of ``all_policies``, ``enforced_policies`` and
    ``pending_policies``. No transit traffic is simulated: ``transit_policies`` is null, or an
    empty list where the layout has the transit counters."""
    if layout.policies == ABSENT:
        return ""
    if layout.policies == OFF:
        return ',"policies":null'
    transit: list[str] | None = [] if layout.transit == ON else None
    inner = ",".join(
        f'"{key}":' + _dumps(transit if key == "transit_policies" else traces[key])
        for key in layout.policy_keys
    )
    return ',"policies":{' + inner + "}"


def transit_fields(layout: Layout) -> str:
    """The sample cluster forwards no transit traffic: the counters are zero when present."""
    if layout.transit == ABSENT:
        return ""
    return ',"transit_bytes_in":0,"transit_bytes_out":0,"transit_packets_in":0,"transit_packets_out":0'


def http_fields(rk: RecordKey, layout: Layout) -> str:
    if layout.http == ABSENT:
        return ""
    allowed = denied = 0
    if layout.http == ON and rk.reporter == "dst" and rk.proto == "tcp" and rk.dest_port in (80, 443, 8080):
        allowed = 1 + _mix(rk, 3) % 400
        denied = _mix(rk, 4) % 3
    return f',"http_requests_allowed_in":{allowed},"http_requests_denied_in":{denied}'


def _process_name(m: Member) -> str:
    if m.type == "hep":
        return "/usr/bin/kubelet"
    app = m.labels.get("app") or m.labels.get("k8s-app") or m.name_aggr.split("-")[0]
    return f"/usr/local/bin/{app}"


def process_fields(rk: RecordKey, layout: Layout) -> str:
    if layout.process == ABSENT:
        return ""
    if layout.process == OFF:
        name, names, pid, pids, args, nargs = "-", 0, "-", 0, ["-"], 0
    elif _mix(rk, 5) % 11 == 0:  # more processes than flowLogsFilePerFlowProcessLimit: aggregated
        name, names, pid, pids, args, nargs = "*", 3, "*", 4, ["*"], 1
    else:
        member = rk.src if rk.reporter == "src" else rk.dst
        name, names, pid, pids = _process_name(member), 1, str(1000 + _mix(rk, 6) % 60000), 1
        args = [f"--port={rk.dest_port}"] if rk.reporter == "dst" else ["-v"]
        nargs = len(args)
    return (
        f',"process_name":{_dumps(name)},"num_process_names":{names},"process_id":{_dumps(pid)},'
        f'"num_process_ids":{pids},"process_args":{_dumps(args)},"num_process_args":{nargs}'
    )


def original_ips_field(rk: RecordKey, layout: Layout) -> str:
    """External clients seen through an ingress (X-Forwarded-For)."""
    if layout.original_ips == ABSENT:
        return ""
    if layout.original_ips == ON and rk.reporter == "dst" and rk.src.type == "net":
        ips = [f"203.0.113.{1 + _mix(rk, 7) % 254}"]
        return f',"original_source_ips":{_dumps(ips)},"num_original_source_ips":{len(ips)}'
    return ',"original_source_ips":null,"num_original_source_ips":0'


def tcp_fields(rk: RecordKey, layout: Layout) -> str:
    if layout.tcp == ABSENT:
        return ""
    if layout.tcp == OFF or rk.proto != "tcp":
        values = [0] * len(TCP_KEYS)
    else:
        rtt = 80 + _mix(rk, 8) % 40_000  # microseconds
        cwnd = 10 + _mix(rk, 9) % 200
        mss = 1448 if _mix(rk, 10) % 4 else 1360
        lost = _mix(rk, 11) % 5
        values = [cwnd, max(1, cwnd // 3), rtt, rtt * 3, rtt // 2, rtt, mss, mss, lost * 2, lost, lost // 2]
    return "".join(f',"{key}":{value}' for key, value in zip(TCP_KEYS, values, strict=True))


__all__ = ["ABSENT", "DEFAULT_LAYOUT", "GROUPS", "LAYOUTS", "OFF", "ON", "Layout", "get_layout"]
