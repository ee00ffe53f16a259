"""Calico ``projectcalico.org/v3`` manifests (also under the ``crd.projectcalico.org`` group).

Owns NetworkPolicy, GlobalNetworkPolicy and their staged variants (Calico's defaults: tier
``default``, no order = last, ``selector: all()``, ``types`` defaulting as rulebook C8; rules and
entity rules validated the way Calico's validator does), StagedKubernetesNetworkPolicy (a
Kubernetes spec, read by :func:`~flowlens.policy.manifests.networking.kubernetes_policy`), Tier,
NetworkSet, GlobalNetworkSet and HostEndpoint.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from flowlens.errors import SelectorError
from flowlens.policy.manifests.documents import (
    Invalid,
    as_cidr,
    as_direction,
    as_labels,
    as_list,
    as_mapping,
    as_metadata,
    as_port_number,
    as_str,
)
from flowlens.policy.manifests.networking import kubernetes_policy
from flowlens.policy.model import (
    DEFAULT_TIER,
    ContainerPort,
    EntityRule,
    HostEndpoint,
    NamedPort,
    NetworkSet,
    Policy,
    Port,
    PortRange,
    Rule,
    ServiceAccountMatch,
    Tier,
    freeze_labels,
    normalize_protocol,
)
from flowlens.policy.selector import Selector, parse_selector

GROUPS = ("projectcalico.org", "crd.projectcalico.org")

_ACTIONS = {"allow": "Allow", "deny": "Deny", "log": "Log", "pass": "Pass"}
_STAGED_ACTIONS = {"set": "Set", "delete": "Delete", "learn": "Learn", "ignore": "Ignore"}
_PORT_PROTOCOLS = (6, 17, 132)  # TCP, UDP, SCTP: the only protocols rules with ports may use


# --------------------------------------------------------------------------------------------
# Policies


def _staged_action(spec: Mapping[str, Any]) -> str:
    raw = spec.get("stagedAction")
    if raw is None:
        return "Set"
    if not isinstance(raw, str) or raw.lower() not in _STAGED_ACTIONS:
        raise Invalid("spec.stagedAction", f"unknown stagedAction {raw!r}; use Set, Delete, Learn or Ignore")
    return _STAGED_ACTIONS[raw.lower()]


def _calico_policy(doc: Mapping[str, Any], origin: str, kind: str) -> Policy:
    namespaced = kind in ("NetworkPolicy", "StagedNetworkPolicy")
    name, namespace, _ = as_metadata(doc, namespaced=namespaced)
    spec = as_mapping(doc.get("spec"), "spec")
    tier = as_str(spec.get("tier"), "spec.tier") or DEFAULT_TIER
    order = _order(spec.get("order"), "spec.order")
    selector = _selector(spec.get("selector"), "spec.selector") or parse_selector("all()")
    ns_selector = None
    if not namespaced:
        ns_selector = _selector(spec.get("namespaceSelector"), "spec.namespaceSelector")
    elif spec.get("namespaceSelector") is not None:
        raise Invalid("spec.namespaceSelector", "only GlobalNetworkPolicy has a namespaceSelector")
    sa_selector = _selector(spec.get("serviceAccountSelector"), "spec.serviceAccountSelector")
    ingress_raw = spec.get("ingress")
    egress_raw = spec.get("egress")
    ingress = tuple(
        _calico_rule(r, f"spec.ingress[{i}]") for i, r in enumerate(as_list(ingress_raw, "spec.ingress"))
    )
    egress = tuple(
        _calico_rule(r, f"spec.egress[{i}]") for i, r in enumerate(as_list(egress_raw, "spec.egress"))
    )
    types_raw = spec.get("types")
    if types_raw is None or types_raw == []:
        # rulebook C8: no rules or ingress only -> Ingress; egress only -> Egress; both -> both.
        if ingress and egress:
            types = ["Ingress", "Egress"]
        elif egress:
            types = ["Egress"]
        else:
            types = ["Ingress"]
    else:
        types = []
        for i, raw_type in enumerate(as_list(types_raw, "spec.types")):
            types.append(as_direction(raw_type, f"spec.types[{i}]"))
    staged_action = _staged_action(spec) if kind.startswith("Staged") else None
    flags = {}
    for key in ("doNotTrack", "preDNAT", "applyOnForward"):
        value = spec.get(key)
        if value is not None and not isinstance(value, bool):
            raise Invalid(f"spec.{key}", f"expected true or false, got {value!r}")
        flags[key] = bool(value)
    return Policy(
        kind=kind,
        name=name,
        namespace=namespace,
        tier=tier,
        order=order,
        selector=selector,
        types=tuple(t for t in ("Ingress", "Egress") if t in types),
        ingress=ingress,
        egress=egress,
        namespace_selector=ns_selector,
        service_account_selector=sa_selector,
        staged_action=staged_action,
        do_not_track=flags["doNotTrack"],
        pre_dnat=flags["preDNAT"],
        apply_on_forward=flags["applyOnForward"],
        origin=origin,
    )


def _calico_rule(raw: Any, path: str) -> Rule:
    rule = as_mapping(raw, path)
    action_raw = rule.get("action")
    if not isinstance(action_raw, str) or action_raw.lower() not in _ACTIONS:
        raise Invalid(f"{path}.action", f"unknown action {action_raw!r}; use Allow, Deny, Pass or Log")
    protocol = _protocol(rule.get("protocol"), f"{path}.protocol")
    not_protocol = _protocol(rule.get("notProtocol"), f"{path}.notProtocol")
    source = _entity(rule.get("source"), f"{path}.source")
    destination = _entity(rule.get("destination"), f"{path}.destination")
    for side, entity in (("source", source), ("destination", destination)):
        if (entity.ports or entity.not_ports) and protocol not in _PORT_PROTOCOLS:
            raise Invalid(
                f"{path}.protocol",
                f"rules that specify {side} ports must set protocol to TCP, UDP or SCTP (Calico's validator)",
            )
    ip_version = rule.get("ipVersion")
    if ip_version is not None and ip_version not in (4, 6):
        raise Invalid(f"{path}.ipVersion", f"must be 4 or 6, got {ip_version!r}")
    return Rule(
        action=_ACTIONS[action_raw.lower()],
        protocol=protocol,
        not_protocol=not_protocol,
        source=source,
        destination=destination,
        ip_version=ip_version,
        has_icmp=rule.get("icmp") is not None or rule.get("notICMP") is not None,
        has_http=rule.get("http") is not None,
    )


_ENTITY_FIELDS = frozenset(
    {
        "nets",
        "notNets",
        "selector",
        "notSelector",
        "namespaceSelector",
        "ports",
        "notPorts",
        "serviceAccounts",
        "services",
    }
)


def _entity(raw: Any, path: str) -> EntityRule:
    entity = as_mapping(raw, path)
    unknown = sorted(str(k) for k in entity if k not in _ENTITY_FIELDS)
    if unknown:
        raise Invalid(f"{path}.{unknown[0]}", "unknown EntityRule field")
    nets = tuple(
        as_cidr(n, f"{path}.nets[{i}]") for i, n in enumerate(as_list(entity.get("nets"), f"{path}.nets"))
    )
    not_nets = tuple(
        as_cidr(n, f"{path}.notNets[{i}]")
        for i, n in enumerate(as_list(entity.get("notNets"), f"{path}.notNets"))
    )
    ports = tuple(
        _calico_port(p, f"{path}.ports[{i}]")
        for i, p in enumerate(as_list(entity.get("ports"), f"{path}.ports"))
    )
    not_ports = tuple(
        _calico_port(p, f"{path}.notPorts[{i}]")
        for i, p in enumerate(as_list(entity.get("notPorts"), f"{path}.notPorts"))
    )
    sa = None
    if entity.get("serviceAccounts") is not None:
        sa_raw = as_mapping(entity.get("serviceAccounts"), f"{path}.serviceAccounts")
        names = tuple(
            str(as_str(n, f"{path}.serviceAccounts.names[{i}]", required=True))
            for i, n in enumerate(as_list(sa_raw.get("names"), f"{path}.serviceAccounts.names"))
        )
        sa_sel = _selector(sa_raw.get("selector"), f"{path}.serviceAccounts.selector")
        sa = ServiceAccountMatch(names, sa_sel)
    services: list[tuple[str, str | None]] = []
    if entity.get("services") is not None:
        svc = as_mapping(entity.get("services"), f"{path}.services")
        svc_name = as_str(svc.get("name"), f"{path}.services.name", required=True)
        assert svc_name is not None
        services.append((svc_name, as_str(svc.get("namespace"), f"{path}.services.namespace")))
    return EntityRule(
        nets=nets,
        not_nets=not_nets,
        selector=_selector(entity.get("selector"), f"{path}.selector"),
        not_selector=_selector(entity.get("notSelector"), f"{path}.notSelector"),
        namespace_selector=_selector(entity.get("namespaceSelector"), f"{path}.namespaceSelector"),
        ports=ports,
        not_ports=not_ports,
        service_accounts=sa,
        services=tuple(services),
    )


def _staged_kubernetes_policy(doc: Mapping[str, Any], origin: str) -> Policy:
    policy = kubernetes_policy(doc, origin, "StagedKubernetesNetworkPolicy")
    return dataclasses.replace(policy, staged_action=_staged_action(as_mapping(doc.get("spec"), "spec")))


# --------------------------------------------------------------------------------------------
# Tiers, network sets, host endpoints


def _tier(doc: Mapping[str, Any]) -> Tier:
    name, _, _ = as_metadata(doc, namespaced=False)
    spec = as_mapping(doc.get("spec"), "spec")
    order_raw = spec.get("order")
    order = None if order_raw is None else _order(order_raw, "spec.order")
    action_raw = spec.get("defaultAction")
    if action_raw is None:
        action = "Deny"
    elif isinstance(action_raw, str) and action_raw.lower() in ("deny", "pass"):
        action = action_raw.capitalize()
    else:
        raise Invalid("spec.defaultAction", f"unknown defaultAction {action_raw!r}; use Deny or Pass")
    return Tier(name, order, action)


def _network_set(doc: Mapping[str, Any], *, namespaced: bool) -> NetworkSet:
    name, namespace, labels = as_metadata(doc, namespaced=namespaced)
    spec = as_mapping(doc.get("spec"), "spec")
    nets = tuple(as_cidr(n, f"spec.nets[{i}]") for i, n in enumerate(as_list(spec.get("nets"), "spec.nets")))
    return NetworkSet(name, namespace, freeze_labels(as_labels(labels, "metadata.labels")), nets)


def _host_endpoint(doc: Mapping[str, Any]) -> HostEndpoint:
    name, _, labels = as_metadata(doc, namespaced=False)
    spec = as_mapping(doc.get("spec"), "spec")
    ips = []
    for i, ip in enumerate(as_list(spec.get("expectedIPs"), "spec.expectedIPs")):
        try:
            ips.append(str(ipaddress.ip_address(str(ip))))
        except ValueError:
            raise Invalid(f"spec.expectedIPs[{i}]", f"{ip!r} is not an IP address") from None
    profiles = tuple(
        str(as_str(p, f"spec.profiles[{i}]", required=True))
        for i, p in enumerate(as_list(spec.get("profiles"), "spec.profiles"))
    )
    ports = []
    for i, raw in enumerate(as_list(spec.get("ports"), "spec.ports")):
        entry = as_mapping(raw, f"spec.ports[{i}]")
        pname = as_str(entry.get("name"), f"spec.ports[{i}].name", required=True)
        assert pname is not None
        proto = _protocol(entry.get("protocol") or "TCP", f"spec.ports[{i}].protocol")
        port = as_port_number(entry.get("port"), f"spec.ports[{i}].port")
        ports.append(ContainerPort(pname, proto or 6, port))
    return HostEndpoint(
        name=name,
        node=as_str(spec.get("node"), "spec.node"),
        interface_name=as_str(spec.get("interfaceName"), "spec.interfaceName"),
        expected_ips=tuple(ips),
        labels=freeze_labels(as_labels(labels, "metadata.labels")),
        profiles=profiles,
        ports=tuple(ports),
    )


# --------------------------------------------------------------------------------------------
# Calico field values


def _selector(text: Any, path: str) -> Selector | None:
    # Calico's API has plain strings: an empty selector field is "not set", not all().
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise Invalid(path, f"a selector must be a string, got {text!r}")
    try:
        return parse_selector(text)
    except SelectorError as exc:
        raise Invalid(path, str(exc)) from None


def _order(value: Any, path: str) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(path, f"expected a number, got {value!r}")
    return float(value)


def _protocol(value: Any, path: str) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise Invalid(path, f"invalid protocol {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise Invalid(path, f"protocol number {value} is outside 1-255")
        return value
    if not isinstance(value, str):
        raise Invalid(path, f"invalid protocol {value!r}")
    proto = normalize_protocol(value)
    if isinstance(proto, int):
        if not 1 <= proto <= 255:
            raise Invalid(path, f"protocol number {proto} is outside 1-255")
        return proto
    raise Invalid(
        path, f"unknown protocol {value!r}; use TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255"
    )


def _calico_port(value: Any, path: str) -> Port:
    if isinstance(value, int) and not isinstance(value, bool):
        n = as_port_number(value, path)
        return PortRange(n, n)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            n = as_port_number(int(text), path)
            return PortRange(n, n)
        if ":" in text:
            first, _, last = text.partition(":")
            if not (first.isdigit() and last.isdigit()):
                raise Invalid(path, f"port range {value!r} must look like '6040:6050'")
            lo, hi = as_port_number(int(first), path), as_port_number(int(last), path)
            if lo > hi:
                raise Invalid(path, f"port range {value!r} has its minimum above its maximum")
            return PortRange(lo, hi)
        if not text:
            raise Invalid(path, "empty port")
        return NamedPort(text)
    raise Invalid(path, f"invalid port {value!r}: use a number, 'min:max' or a port name")


#: The kinds of these API groups, by ``kind``: each turns a document into the model.
KINDS: dict[str, Callable[[Mapping[str, Any], str], Policy | Tier | NetworkSet | HostEndpoint]] = {
    "NetworkPolicy": partial(_calico_policy, kind="NetworkPolicy"),
    "GlobalNetworkPolicy": partial(_calico_policy, kind="GlobalNetworkPolicy"),
    "StagedNetworkPolicy": partial(_calico_policy, kind="StagedNetworkPolicy"),
    "StagedGlobalNetworkPolicy": partial(_calico_policy, kind="StagedGlobalNetworkPolicy"),
    "StagedKubernetesNetworkPolicy": _staged_kubernetes_policy,
    "Tier": lambda doc, origin: _tier(doc),
    "NetworkSet": lambda doc, origin: _network_set(doc, namespaced=True),
    "GlobalNetworkSet": lambda doc, origin: _network_set(doc, namespaced=False),
    "HostEndpoint": lambda doc, origin: _host_endpoint(doc),
}
