"""Kubernetes ``networking.k8s.io/v1`` NetworkPolicy manifests.

Owns the conversion of a NetworkPolicy into a Calico policy exactly as Calico's
``K8sNetworkPolicyToCalico`` does it (rulebook C7): tier ``default``, order 1000, the API server's
defaults (``policyTypes``, rulebook K2; TCP for ports, rulebook K12), pod and namespace selectors
as Calico selectors (rulebook L1, K7-K9), ipBlocks as nets (rulebook K11), and one Allow rule per
(protocol, peer) with protocols sorted, so that rule indexes in traces are Calico's.
Calico's ``StagedKubernetesNetworkPolicy`` has the same spec and reuses
:func:`kubernetes_policy` (see :mod:`~flowlens.policy.manifests.calico`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowlens.policy.manifests.documents import (
    Invalid,
    as_cidr,
    as_direction,
    as_label_selector,
    as_list,
    as_mapping,
    as_metadata,
    as_port_number,
)
from flowlens.policy.model import (
    DEFAULT_TIER,
    K8S_POLICY_ORDER,
    EntityRule,
    IPNetwork,
    NamedPort,
    Policy,
    Port,
    PortRange,
    Rule,
    normalize_protocol,
)
from flowlens.policy.selector import Selector

GROUP = "networking.k8s.io"


def kubernetes_policy(doc: Mapping[str, Any], origin: str, kind: str = "KubernetesNetworkPolicy") -> Policy:
    """A NetworkPolicy as the Calico policy Calico makes of it (``kind`` as flow logs name it)."""
    name, namespace, _ = as_metadata(doc, namespaced=True)
    spec = as_mapping(doc.get("spec"), "spec")
    selector = as_label_selector(spec.get("podSelector"), "spec.podSelector", orchestrator=True)
    ingress_raw = as_list(spec.get("ingress"), "spec.ingress")
    egress_raw = as_list(spec.get("egress"), "spec.egress")
    types_raw = as_list(spec.get("policyTypes"), "spec.policyTypes")
    types: list[str] = []
    for i, raw_type in enumerate(types_raw):
        t = as_direction(raw_type, f"spec.policyTypes[{i}]")
        if t not in types:
            types.append(t)
    if not types:
        # SetDefaults_NetworkPolicy (rulebook K2): Ingress always, Egress only with egress rules.
        types = ["Ingress"] + (["Egress"] if egress_raw else [])
    ingress: list[Rule] = []
    for i, raw in enumerate(ingress_raw):
        r = as_mapping(raw, f"spec.ingress[{i}]")
        ingress.extend(_k8s_rule(r, f"spec.ingress[{i}]", "from", ingress=True))
    egress: list[Rule] = []
    for i, raw in enumerate(egress_raw):
        r = as_mapping(raw, f"spec.egress[{i}]")
        egress.extend(_k8s_rule(r, f"spec.egress[{i}]", "to", ingress=False))
    return Policy(
        kind=kind,
        name=name,
        namespace=namespace,
        tier=DEFAULT_TIER,
        order=K8S_POLICY_ORDER,
        selector=selector,
        types=tuple(t for t in ("Ingress", "Egress") if t in types),
        ingress=tuple(ingress),
        egress=tuple(egress),
        origin=origin,
    )


@dataclass(frozen=True)
class _K8sPeer:
    selector: Selector | None = None
    namespace_selector: Selector | None = None
    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()


def _k8s_rule(rule: Mapping[str, Any], path: str, peer_field: str, *, ingress: bool) -> list[Rule]:
    """One Kubernetes rule -> Calico Allow rules, as ``k8sRuleToCalico`` builds them: one rule per
    (protocol, peer), protocols sorted, so rule indexes match Calico's traces."""
    peers: list[_K8sPeer | None] = [
        _k8s_peer(p, f"{path}.{peer_field}[{i}]")
        for i, p in enumerate(as_list(rule.get(peer_field), f"{path}.{peer_field}"))
    ]
    if not peers:
        peers = [None]
    ports_raw = as_list(rule.get("ports"), f"{path}.ports")
    protocol_ports: dict[str, list[Port] | None] = {}
    if not ports_raw:
        protocol_ports = {"": None}
    for i, raw in enumerate(ports_raw):
        ppath = f"{path}.ports[{i}]"
        entry = as_mapping(raw, ppath)
        proto_raw = entry.get("protocol")
        if proto_raw is None:
            proto = "TCP"  # SetDefaults_NetworkPolicyPort
        elif isinstance(proto_raw, str) and proto_raw.upper() in ("TCP", "UDP", "SCTP"):
            proto = proto_raw.upper()
        else:
            raise Invalid(f"{ppath}.protocol", f"unsupported protocol {proto_raw!r}; use TCP, UDP or SCTP")
        port = _k8s_port(entry, ppath)
        if port is None:
            protocol_ports[proto] = None  # all ports of this protocol
        elif proto not in protocol_ports:
            protocol_ports[proto] = [port]
        else:
            existing = protocol_ports[proto]
            if existing is not None:  # None (all ports) is never narrowed
                existing.append(port)
    rules: list[Rule] = []
    for proto_name in sorted(protocol_ports):
        ports = protocol_ports[proto_name]
        protocol = normalize_protocol(proto_name) if proto_name else None
        port_tuple = tuple(ports) if ports else ()
        for peer in peers:
            peer_entity = (
                EntityRule()
                if peer is None
                else EntityRule(
                    nets=peer.nets,
                    not_nets=peer.not_nets,
                    selector=peer.selector,
                    namespace_selector=peer.namespace_selector,
                )
            )
            if ingress:
                rules.append(
                    Rule(
                        "Allow",
                        protocol=protocol,
                        source=peer_entity,
                        destination=EntityRule(ports=port_tuple),
                    )
                )
            else:
                rules.append(
                    Rule(
                        "Allow",
                        protocol=protocol,
                        destination=EntityRule(
                            nets=peer_entity.nets,
                            not_nets=peer_entity.not_nets,
                            selector=peer_entity.selector,
                            namespace_selector=peer_entity.namespace_selector,
                            ports=port_tuple,
                        ),
                    )
                )
    return rules


def _k8s_port(entry: Mapping[str, Any], path: str) -> Port | None:
    port = entry.get("port")
    end_port = entry.get("endPort")
    if port is None:
        if end_port is not None:
            raise Invalid(f"{path}.endPort", "endPort requires a numeric port")
        return None
    if isinstance(port, str) and not port.isdigit():
        if end_port is not None:
            raise Invalid(f"{path}.endPort", "endPort requires a numeric port, not a named port")
        if not port:
            raise Invalid(f"{path}.port", "empty port name")
        return NamedPort(port)
    number = as_port_number(int(port) if isinstance(port, str) else port, f"{path}.port")
    if end_port is None:
        return PortRange(number, number)
    last = as_port_number(end_port, f"{path}.endPort")
    if last < number:
        raise Invalid(f"{path}.endPort", f"endPort {last} must not be below port {number}")
    return PortRange(number, last)


def _k8s_peer(raw: Any, path: str) -> _K8sPeer:
    peer = as_mapping(raw, path)
    unknown = sorted(str(k) for k in peer if k not in ("podSelector", "namespaceSelector", "ipBlock"))
    if unknown:
        raise Invalid(
            f"{path}.{unknown[0]}", "unknown peer field; use podSelector, namespaceSelector or ipBlock"
        )
    if "ipBlock" in peer and peer.get("ipBlock") is not None:
        if peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
            raise Invalid(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
        block = as_mapping(peer.get("ipBlock"), f"{path}.ipBlock")
        cidr = as_cidr(block.get("cidr"), f"{path}.ipBlock.cidr")
        excepts = tuple(
            as_cidr(e, f"{path}.ipBlock.except[{i}]")
            for i, e in enumerate(as_list(block.get("except"), f"{path}.ipBlock.except"))
        )
        return _K8sPeer(nets=(cidr,), not_nets=excepts)
    if peer.get("podSelector") is None and peer.get("namespaceSelector") is None:
        raise Invalid(path, "a peer needs podSelector, namespaceSelector or ipBlock")
    # k8sPeerToCalicoFields: the pod selector always carries the orchestrator clause, so it
    # selects pods only; a present namespaceSelector (even {}) replaces the own-namespace scope.
    selector = as_label_selector(peer.get("podSelector"), f"{path}.podSelector", orchestrator=True)
    ns_sel = None
    if peer.get("namespaceSelector") is not None:
        ns_sel = as_label_selector(
            peer.get("namespaceSelector"), f"{path}.namespaceSelector", orchestrator=False
        )
    return _K8sPeer(selector=selector, namespace_selector=ns_sel)


#: The kinds of this API group, by ``kind``: each turns a document into the model.
KINDS: dict[str, Callable[[Mapping[str, Any], str], Policy]] = {"NetworkPolicy": kubernetes_policy}
