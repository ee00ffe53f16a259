"""Cluster-scoped Kubernetes policies (``policy.networking.k8s.io``): the cluster guardrails.

Owns ClusterNetworkPolicy (``v1alpha2``, network-policy-api v0.2.0, enforced by Calico v3.32+),
AdminNetworkPolicy and BaselineAdminNetworkPolicy (``v1alpha1``, v0.1.5, enforced by Calico
v3.29-v3.31): validated as their CRDs validate them (errors carry the field path), then converted
exactly as Calico converts them into a policy of its static tier (rulebook G2-G7): the priority
becomes the order (a BaselineAdminNetworkPolicy always has 1000), Accept becomes Allow, the
subject becomes a namespace selector and a pod selector that selects pods only, each rule becomes
one Calico rule per protocol and peer (protocols sorted), and the policy types are the directions
that keep rules. A rule Calico cannot convert (a ``nodes`` or ``domainNames`` peer) fails closed
the way Calico's conversion does (rulebook G9): a Deny or Pass rule becomes an unconditional Deny
at its position, an Accept/Allow rule is dropped; the policy's ``notes`` say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from flowlens.policy.manifests.documents import (
    Invalid,
    as_cidr,
    as_label_selector,
    as_list,
    as_mapping,
    as_metadata,
    as_str,
)
from flowlens.policy.model import (
    ANP_TIER,
    BANP_TIER,
    KUBE_ADMIN_TIER,
    KUBE_BASELINE_TIER,
    EntityRule,
    NamedPort,
    Policy,
    Port,
    PortRange,
    Rule,
    normalize_protocol,
)
from flowlens.policy.selector import Selector

GROUPS = ("policy.networking.k8s.io",)

#: Order Calico gives every BaselineAdminNetworkPolicy (it has no priority).
BANP_ORDER = 1000.0
MAX_PRIORITY = 1000


@dataclass(frozen=True)
class _Api:
    """What differs between the three kinds: API version, actions, the ports field, peers."""

    kind: str
    version: str
    actions: Mapping[str, str]  # manifest action -> Calico action
    ports_field: str  # "protocols" (v1alpha2) or "ports" (v1alpha1)
    egress_peers: frozenset[str]
    has_priority: bool

    @property
    def modern(self) -> bool:
        return self.ports_field == "protocols"


_INGRESS_PEERS = frozenset({"namespaces", "pods"})
_CNP = _Api(
    "ClusterNetworkPolicy",
    "v1alpha2",
    {"Accept": "Allow", "Deny": "Deny", "Pass": "Pass"},
    "protocols",
    frozenset({"namespaces", "pods", "networks", "nodes", "domainNames"}),
    True,
)
_ANP = _Api(
    "AdminNetworkPolicy",
    "v1alpha1",
    {"Allow": "Allow", "Deny": "Deny", "Pass": "Pass"},
    "ports",
    frozenset({"namespaces", "pods", "networks", "nodes"}),
    True,
)
_BANP = _Api(
    "BaselineAdminNetworkPolicy",
    "v1alpha1",
    {"Allow": "Allow", "Deny": "Deny"},
    "ports",
    frozenset({"namespaces", "pods", "networks", "nodes"}),
    False,
)
_APIS = {api.kind: api for api in (_CNP, _ANP, _BANP)}
_CNP_TIERS = {"Admin": KUBE_ADMIN_TIER, "Baseline": KUBE_BASELINE_TIER}
_MAX_RULES = {"v1alpha2": 25, "v1alpha1": 100}


class _Unconverted(Exception):
    """A rule Calico's conversion refuses (it then fails closed)."""


def cluster_policy(doc: Mapping[str, Any], origin: str, kind: str) -> Policy:
    """A ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy as the Calico
    policy Calico makes of it (rulebook G2-G9)."""
    api = _APIS[kind]
    version = str(doc.get("apiVersion") or "").partition("/")[2]
    if version != api.version:
        raise Invalid(
            "apiVersion",
            f"{kind} is policy.networking.k8s.io/{api.version}, not {doc.get('apiVersion')!r}",
        )
    name, _, _ = as_metadata(doc, namespaced=False)
    if kind == "BaselineAdminNetworkPolicy" and name != "default":
        raise Invalid(
            "metadata.name",
            f"a BaselineAdminNetworkPolicy must be named 'default' (the CRD allows only one), not {name!r}",
        )
    spec = as_mapping(doc.get("spec"), "spec")
    known = {"subject", "ingress", "egress"} | ({"priority"} if api.has_priority else set())
    known |= {"tier"} if kind == "ClusterNetworkPolicy" else set()
    _no_unknown(spec, known, "spec")
    tier = _tier(spec, api)
    order = _priority(spec, api)
    selector, namespace_selector = _subject(spec.get("subject"), api)
    notes: list[str] = []
    where = f"{origin}: {kind} {name}"
    ingress = _rules(spec, "ingress", api, where, notes)
    egress = _rules(spec, "egress", api, where, notes)
    # clusterNetPolicyTypes / calculateANPPolicyTypes: a direction only when it keeps rules (rulebook G4).
    types = tuple(t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules)
    return Policy(
        kind=kind,
        name=name,
        namespace=None,
        tier=tier,
        order=order,
        selector=selector,
        types=types,
        ingress=ingress,
        egress=egress,
        namespace_selector=namespace_selector,
        origin=origin,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Spec fields


def _no_unknown(obj: Mapping[str, Any], known: set[str] | frozenset[str], path: str) -> None:
    unknown = sorted(str(k) for k in obj if k not in known)
    if unknown:
        raise Invalid(f"{path}.{unknown[0]}", f"unknown field; expected one of {', '.join(sorted(known))}")


def _tier(spec: Mapping[str, Any], api: _Api) -> str:
    if api.kind == "AdminNetworkPolicy":
        return ANP_TIER
    if api.kind == "BaselineAdminNetworkPolicy":
        return BANP_TIER
    raw = spec.get("tier")
    if raw is None:
        raise Invalid("spec.tier", "required: Admin or Baseline")
    if raw not in _CNP_TIERS:
        raise Invalid("spec.tier", f"unknown tier {raw!r}; use Admin or Baseline")
    return _CNP_TIERS[raw]


def _priority(spec: Mapping[str, Any], api: _Api) -> float:
    if not api.has_priority:
        return BANP_ORDER
    raw = spec.get("priority")
    if raw is None:
        raise Invalid("spec.priority", f"required: a number from 0 to {MAX_PRIORITY}")
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_PRIORITY:
        raise Invalid("spec.priority", f"priority {raw!r} must be a whole number from 0 to {MAX_PRIORITY}")
    return float(raw)


def _one_of(obj: Mapping[str, Any], allowed: frozenset[str], path: str) -> str:
    """The one field an exactly-one-of object (a subject, a peer, a protocol) sets."""
    _no_unknown(obj, allowed, path)
    present = [k for k in sorted(allowed) if obj.get(k) is not None]
    if len(present) != 1:
        what = "none" if not present else " and ".join(present)
        raise Invalid(path, f"set exactly one of {', '.join(sorted(allowed))} (got {what})")
    return present[0]


def _subject(raw: Any, api: _Api) -> tuple[Selector, Selector]:
    """(pod selector, namespace selector) of the subject (rulebook G3): pods only, through
    ``projectcalico.org/orchestrator == 'k8s'``, which leaves host endpoints out."""
    if raw is None:
        raise Invalid("spec.subject", "required: namespaces or pods")
    subject = as_mapping(raw, "spec.subject")
    field = _one_of(subject, frozenset({"namespaces", "pods"}), "spec.subject")
    if field == "namespaces":
        namespaces = as_label_selector(subject["namespaces"], "spec.subject.namespaces", orchestrator=False)
        return as_label_selector(None, "spec.subject", orchestrator=True), namespaces
    return _pods(subject["pods"], "spec.subject.pods", api)


def _pods(raw: Any, path: str, api: _Api) -> tuple[Selector, Selector]:
    pods = as_mapping(raw, path)
    _no_unknown(pods, {"namespaceSelector", "podSelector"}, path)
    required = ("podSelector",) if api.modern else ("namespaceSelector", "podSelector")
    for key in required:
        if pods.get(key) is None:
            raise Invalid(f"{path}.{key}", "required (use {} for all)")
    selector = as_label_selector(pods.get("podSelector"), f"{path}.podSelector", orchestrator=True)
    namespaces = as_label_selector(
        pods.get("namespaceSelector"), f"{path}.namespaceSelector", orchestrator=False
    )
    return selector, namespaces


# --------------------------------------------------------------------------------------------
# Rules


def _rules(
    spec: Mapping[str, Any], direction: str, api: _Api, where: str, notes: list[str]
) -> tuple[Rule, ...]:
    items = as_list(spec.get(direction), f"spec.{direction}")
    limit = _MAX_RULES[api.version]
    if len(items) > limit:
        raise Invalid(f"spec.{direction}", f"at most {limit} rules are allowed, got {len(items)}")
    out: list[Rule] = []
    for i, raw in enumerate(items):
        path = f"spec.{direction}[{i}]"
        rule = as_mapping(raw, path)
        peer_field = "from" if direction == "ingress" else "to"
        _no_unknown(rule, {"name", "action", peer_field, api.ports_field}, path)
        name = as_str(rule.get("name"), f"{path}.name")
        if name is not None and len(name) > 100:
            raise Invalid(f"{path}.name", "a rule name has at most 100 characters")
        action_raw = rule.get("action")
        if not isinstance(action_raw, str) or action_raw not in api.actions:
            raise Invalid(
                f"{path}.action",
                f"unknown action {action_raw!r}; a {api.kind} rule uses {', '.join(api.actions)}",
            )
        action = api.actions[action_raw]
        peers = _peers(rule.get(peer_field), f"{path}.{peer_field}", direction, api)
        ports, unrestricted = _ports(rule.get(api.ports_field), f"{path}.{api.ports_field}", api)
        if any(kind in ("networks", "nodes", "domainNames") for kind, _ in peers) and (
            unrestricted or any(isinstance(p, NamedPort) for group in ports.values() for p in group or ())
        ):
            raise Invalid(path, "networks, nodes and domainNames peers cannot be used with named ports")
        label = f"{direction} rule {i}" + (f" {name!r}" if name else "")
        try:
            out.extend(_convert(action, name, peers, ports, direction))
        except _Unconverted as exc:
            # k8sClusterNetPolHandleFailedRules / k8sANPHandleFailedRules (rulebook G9).
            if action in ("Deny", "Pass"):
                out.append(Rule("Deny", name=name))
                notes.append(
                    f"{where}: {label} ({action_raw}) cannot be converted by Calico ({exc}); like Calico, "
                    "flowlens fails closed and replaces it with a rule that denies all traffic at that position"
                )
            else:
                notes.append(
                    f"{where}: {label} ({action_raw}) cannot be converted by Calico ({exc}); like Calico, "
                    "flowlens fails closed and drops it (it allows nothing)"
                )
        if unrestricted:
            notes.append(
                f"{where}: {label} has a namedPort, which Calico v3.29-v3.31 does not convert: the rule "
                "matches every port and protocol of its peers, as it does in Calico"
            )
    return tuple(out)


Peer = tuple[str, EntityRule | None]  # (field, entity); entity None for a peer Calico cannot convert


def _peers(raw: Any, path: str, direction: str, api: _Api) -> list[Peer]:
    items = as_list(raw, path)
    if not items:
        raise Invalid(path, "required: at least one peer")
    allowed = _INGRESS_PEERS if direction == "ingress" else api.egress_peers
    peers: list[Peer] = []
    for i, item in enumerate(items):
        ppath = f"{path}[{i}]"
        peer = as_mapping(item, ppath)
        field = _one_of(peer, allowed, ppath)
        value = peer[field]
        if field == "namespaces":
            peers.append(
                (
                    field,
                    EntityRule(
                        namespace_selector=as_label_selector(value, f"{ppath}.namespaces", orchestrator=False)
                    ),
                )
            )
        elif field == "pods":
            selector, namespaces = _pods(value, f"{ppath}.pods", api)
            peers.append((field, EntityRule(selector=selector, namespace_selector=namespaces)))
        elif field == "networks":
            nets = as_list(value, f"{ppath}.networks")
            if not nets:
                raise Invalid(f"{ppath}.networks", "required: at least one CIDR")
            peers.append(
                (
                    field,
                    EntityRule(nets=tuple(as_cidr(n, f"{ppath}.networks[{j}]") for j, n in enumerate(nets))),
                )
            )
        else:
            if field == "domainNames":
                as_list(value, f"{ppath}.domainNames")
            else:
                as_label_selector(value, f"{ppath}.nodes", orchestrator=False)
            peers.append((field, None))
    return peers


#: Ports by protocol name ("" = any protocol); None = every port of that protocol.
Ports = dict[str, list[Port] | None]


def _ports(raw: Any, path: str, api: _Api) -> tuple[Ports, bool]:
    """The ports of a rule by protocol, and whether an admin network policy's named port left it
    with no port restriction at all."""
    items = as_list(raw, path)
    if raw is not None and not items and api.modern:
        raise Invalid(path, "give at least one protocol, or leave the field out for all traffic")
    if not items:
        return {"": None}, False
    out: Ports = {}
    for i, item in enumerate(items):
        epath = f"{path}[{i}]"
        entry = as_mapping(item, epath)
        if api.modern:
            field = _one_of(entry, frozenset({"tcp", "udp", "sctp", "destinationNamedPort"}), epath)
            if field == "destinationNamedPort":
                port_name = as_str(entry[field], f"{epath}.{field}", required=True)
                assert port_name is not None
                # A named port carries no protocol: Felix matches the endpoints' named port with the
                # protocol it is declared with (rulebook G7).
                _add_port(out, "", NamedPort(port_name))
                continue
            body = as_mapping(entry[field], f"{epath}.{field}")
            _no_unknown(body, {"destinationPort"}, f"{epath}.{field}")
            if body.get("destinationPort") is None:
                raise Invalid(f"{epath}.{field}.destinationPort", "required: number or range")
            port = _cnp_port(body["destinationPort"], f"{epath}.{field}.destinationPort")
            _add_port(out, field.upper(), port)
            continue
        field = _one_of(entry, frozenset({"portNumber", "portRange", "namedPort"}), epath)
        if field == "namedPort":
            as_str(entry[field], f"{epath}.namedPort", required=True)
            # unpackANPPorts: a named port converts to no protocol and no port, which Calico reads
            # as "no port restriction" and keeps alone (rulebook G7).
            return {"": None}, True
        body = as_mapping(entry[field], f"{epath}.{field}")
        proto = _anp_protocol(body.get("protocol"), f"{epath}.{field}.protocol")
        if field == "portNumber":
            _no_unknown(body, {"protocol", "port"}, f"{epath}.portNumber")
            number = _port_number(body.get("port"), f"{epath}.portNumber.port")
            _add_port(out, proto, PortRange(number, number))
        else:
            _no_unknown(body, {"protocol", "start", "end"}, f"{epath}.portRange")
            first = _port_number(body.get("start"), f"{epath}.portRange.start")
            last = _port_number(body.get("end"), f"{epath}.portRange.end")
            if first > last:
                raise Invalid(f"{epath}.portRange", f"start {first} is above end {last}")
            _add_port(out, proto, PortRange(first, last))
    return out, False


def _add_port(out: Ports, proto: str, port: Port) -> None:
    if proto not in out:
        out[proto] = [port]
    else:
        existing = out[proto]
        if existing is not None and port not in existing:
            existing.append(port)


def _cnp_port(raw: Any, path: str) -> Port:
    dest = as_mapping(raw, path)
    field = _one_of(dest, frozenset({"number", "range"}), path)
    if field == "number":
        n = _port_number(dest["number"], f"{path}.number")
        return PortRange(n, n)
    rng = as_mapping(dest["range"], f"{path}.range")
    _no_unknown(rng, {"start", "end"}, f"{path}.range")
    first = _port_number(rng.get("start"), f"{path}.range.start")
    last = _port_number(rng.get("end"), f"{path}.range.end")
    if first >= last:
        raise Invalid(f"{path}.range", f"start {first} must be below end {last}")
    return PortRange(first, last)


def _port_number(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise Invalid(path, f"port {value!r} must be a number from 1 to 65535")
    return value


def _anp_protocol(value: Any, path: str) -> str:
    if value is None:
        return "TCP"  # the CRD's default (ensureProtocol in Calico)
    if isinstance(value, str) and value.upper() in ("TCP", "UDP", "SCTP"):
        return value.upper()
    raise Invalid(path, f"unsupported protocol {value!r}; use TCP, UDP or SCTP")


def _convert(action: str, name: str | None, peers: list[Peer], ports: Ports, direction: str) -> list[Rule]:
    """One rule per protocol (sorted) and peer, as ``combinePortsWith*Peers`` builds them."""
    unsupported = sorted({field for field, entity in peers if entity is None})
    if unsupported:
        raise _Unconverted(f"Calico does not support {' or '.join(unsupported)} peers")
    rules: list[Rule] = []
    for proto_name in sorted(ports):
        port_list = ports[proto_name]
        protocol = normalize_protocol(proto_name) if proto_name else None
        port_tuple = tuple(port_list) if port_list else ()
        for _, entity in peers:
            assert entity is not None
            if direction == "ingress":
                rules.append(
                    Rule(
                        action,
                        protocol=protocol,
                        source=entity,
                        destination=EntityRule(ports=port_tuple),
                        name=name,
                    )
                )
            else:
                rules.append(
                    Rule(
                        action,
                        protocol=protocol,
                        destination=EntityRule(
                            nets=entity.nets,
                            selector=entity.selector,
                            namespace_selector=entity.namespace_selector,
                            ports=port_tuple,
                        ),
                        name=name,
                    )
                )
    return rules


#: The kinds of this API group, by ``kind``: each turns a document into the model.
KINDS: dict[str, Callable[[Mapping[str, Any], str], Policy]] = {
    kind: partial(cluster_policy, kind=kind) for kind in _APIS
}
