"""What the simulation produces: the ends of a connection (:class:`Member`), the decision at a
reporter (:class:`Verdict`) and Felix's records (:class:`RecordKey`, :class:`Interval`).

:mod:`flowlens.sample.traffic` fills them; :mod:`flowlens.sample.render` encodes them;
:mod:`flowlens.sample.decide` and :func:`declared_decisions` decide them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowlens.errors import UsageError
from flowlens.formats.hits import PolicyHit, parse_hit
from flowlens.sample.model import ClusterModel, Connection, External, Node, Pod, resolve_ref

INTERVAL = 300  # flowLogsFlushInterval default, seconds
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def subnet_type(ip: str) -> str:
    """Calico's name for an address outside the cluster: ``pvt`` (RFC 1918) or ``pub``."""
    addr = ipaddress.ip_address(ip)
    return "pvt" if any(addr in n for n in _PRIVATE) else "pub"


@dataclass(frozen=True, slots=True)
class Member:
    """One end of a connection: a pod, a node's host endpoint or an address outside the cluster."""

    type: str  # wep | hep | net
    name: str  # pod name, host endpoint name, '-' for net
    name_aggr: str  # pod generateName + '*', hostname, pvt/pub
    namespace: str  # '-' when not namespaced
    ip: str
    labels: Mapping[str, str]
    node: str | None  # the node that reports for it
    service_account: str | None = None
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, port)
    domains: tuple[str, ...] = ()
    #: grouping identities: aggregated (level 2) and full (level 1); set in __post_init__
    agg_id: tuple[str, ...] = ()
    full_id: tuple[str, ...] = ()
    reports: bool = False  # workloads and host endpoints report; outside addresses do not
    label_strs: tuple[str, ...] = ()  # the labels as Felix writes them, 'k=v'

    def __post_init__(self) -> None:
        object.__setattr__(self, "agg_id", (self.type, self.namespace, self.name_aggr))
        object.__setattr__(self, "full_id", (self.type, self.namespace, self.name, self.ip))
        object.__setattr__(self, "reports", self.type in ("wep", "hep"))
        object.__setattr__(self, "label_strs", tuple(f"{k}={v}" for k, v in self.labels.items()))


def pod_member(pod: Pod) -> Member:
    return Member(
        "wep",
        pod.name,
        pod.aggregated_name,
        pod.namespace,
        pod.ip,
        pod.labels,
        pod.node,
        pod.service_account,
        tuple((p.name, p.protocol, p.port) for p in pod.ports if p.name),
    )


def node_member(node: Node) -> Member:
    return Member("hep", node.host_endpoint, node.name, "-", node.ip, node.hep_labels, node.name)


def net_member(ext: External, ip: str) -> Member:
    return Member("net", "-", subnet_type(ip), "-", ip, {}, None, domains=ext.domains)


@dataclass(frozen=True)
class Verdict:
    """The decision at one reporter: the action and the policy traces Calico writes."""

    action: str  # allow | deny
    enforced: tuple[PolicyHit, ...]
    pending: tuple[PolicyHit, ...]


#: (connection, reporter, source, destination, proto, port) -> Verdict
Decide = Callable[[Connection, str, Member, Member, str, int], Verdict]


def verdict_from_hits(enforced: Sequence[PolicyHit], pending: Sequence[PolicyHit]) -> Verdict:
    if not enforced:
        raise ValueError("an enforced trace needs at least one hit")
    action = enforced[-1].action
    if action not in ("allow", "deny"):
        raise ValueError(f"a trace must end in allow or deny, not {action!r}")
    return Verdict(action, tuple(enforced), tuple(pending))


def declared_decisions(model: ClusterModel) -> Decide:
    """Decisions as the model declares them (``expect`` of each connection)."""
    table: dict[tuple[str, str], Verdict] = {}
    for c in model.connections:
        for reporter, trace in c.expect.items():
            table[(c.id, reporter)] = verdict_from_hits(
                [parse_hit(h) for h in trace.enforced], [parse_hit(h) for h in trace.pending]
            )

    def decide(conn: Connection, reporter: str, src: Member, dst: Member, proto: str, port: int) -> Verdict:
        try:
            return table[(conn.id, reporter)]
        except KeyError:
            raise UsageError(
                f"connection {conn.id!r} declares no expected trace for reporter {reporter!r}: "
                "add expect." + reporter + " to the cluster model"
            ) from None

    return decide


@dataclass(eq=False, slots=True)
class RecordKey:
    """Everything of a record that does not change from one interval to the next.

    Renderers cache their templates on it (``cache``), so a record costs one string format.
    """

    reporter: str
    action: str
    src: Member  # masked view (level 2: name '-', ip '') for allowed records
    dst: Member
    src_labels: tuple[str, ...]  # 'k=v', intersection over the aggregated endpoints
    dst_labels: tuple[str, ...]
    dest_port: int
    proto: str
    service: tuple[str, str, str, int] | None  # namespace, name, port name, port number
    domains: tuple[str, ...]
    verdict: Verdict
    host: str
    index: int  # creation order; also varies the (random in Felix) order of trace entries
    offset: int = 0  # the reporting node's flush second within the interval
    gm_key: tuple[Any, ...] = ()  # identity across nodes, for Goldmane aggregation
    ent_a: tuple[bytes, bytes] | None = None  # rendered static parts of a flows.log line (render.py)
    es_tpl: tuple[str, str] | None = None
    cache: dict[str, Any] = field(default_factory=dict)


# counters of a record, relative to the reporting endpoint, in the order of Felix's JSONOutput
BYTES_IN, BYTES_OUT, NUM_FLOWS, STARTED, COMPLETED, PACKETS_IN, PACKETS_OUT = range(7)


@dataclass(frozen=True)
class Interval:
    """The records Felix exports for one 5-minute interval (all nodes)."""

    index: int
    start: int  # epoch seconds of the interval (aligned); nodes add their own offset
    records: list[tuple[RecordKey, tuple[int, ...]]]  # the record and its counters


def common_labels(members: Sequence[Member]) -> tuple[str, ...]:
    """The labels of an aggregated record: those every endpoint it aggregates has, as 'k=v'."""
    if len(members) == 1:
        return members[0].label_strs
    first = members[0].labels
    common = {k: v for k, v in first.items() if all(m.labels.get(k) == v for m in members[1:])}
    return tuple(f"{k}={v}" for k, v in common.items())


def masked(m: Member) -> Member:
    """The level-2 view: no IP, no name (Felix keys such records by the aggregated name)."""
    return Member(m.type, "-", m.name_aggr, m.namespace, "", m.labels, m.node)


def members_of(model: ClusterModel, ref: str, cid: str) -> tuple[Member, ...]:
    """The endpoints a connection's ``ref`` names (pods, nodes' host endpoints or addresses)."""
    kind, items = resolve_ref(model, ref, cid)
    if kind == "wep":
        return tuple(pod_member(p) for p in items)
    if kind == "hep":
        return tuple(node_member(n) for n in items)
    ext = items[0]
    return tuple(net_member(ext, ip) for ip in ext.addresses)


def service_of(model: ClusterModel, conn: Connection, port: int) -> tuple[str, str, str, int] | None:
    """The Service a connection goes through on ``port``: namespace, name, port name, number."""
    if not conn.service:
        return None
    svc = model.service(conn.service)
    sp = svc.port_for(port, conn.proto)
    if sp is None:
        return None
    return (svc.namespace, svc.name, sp.name or "-", sp.port)
