"""Policy manifests: reading Kubernetes and Calico YAML/JSON into the policy model.

Owns :func:`load_policies`: files and directories (recursive, ``*.yaml``/``*.yml``/``*.json``),
multi-document YAML and ``kind: List``; the API defaults the Kubernetes API server and Calico
apply (``policyTypes`` and ``types`` defaulting, TCP as the default protocol, tier ``default``,
order 1000 for Kubernetes policies, ``Deny`` as the tier default action); the conversion of a
Kubernetes NetworkPolicy into Calico rules exactly as Calico's ``K8sNetworkPolicyToCalico`` does
it (so rule indexes in traces are Calico's); and validation with errors that name the file, the
document (1-based) and the field path.

Unknown kinds are skipped with a note in :attr:`PolicySet.notes`; a later manifest with the same
(kind, namespace, name) replaces an earlier one, also with a note.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowlens.errors import PolicyError, SelectorError
from flowlens.policy.model import (
    DEFAULT_TIER,
    DEFAULT_TIER_ORDER,
    K8S_POLICY_ORDER,
    ContainerPort,
    EntityRule,
    HostEndpoint,
    IPNetwork,
    NamedPort,
    NetworkSet,
    Policy,
    PolicySet,
    Port,
    PortRange,
    Rule,
    ServiceAccountMatch,
    Tier,
    freeze_labels,
    normalize_protocol,
)
from flowlens.policy.selector import Selector, label_selector_to_calico, parse_selector

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

K8S_GROUP = "networking.k8s.io"
CALICO_GROUPS = ("projectcalico.org", "crd.projectcalico.org")

_CALICO_POLICY_KINDS = {
    "NetworkPolicy": "NetworkPolicy",
    "GlobalNetworkPolicy": "GlobalNetworkPolicy",
    "StagedNetworkPolicy": "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy": "StagedGlobalNetworkPolicy",
}
_ACTIONS = {"allow": "Allow", "deny": "Deny", "log": "Log", "pass": "Pass"}
_STAGED_ACTIONS = {"set": "Set", "delete": "Delete", "learn": "Learn", "ignore": "Ignore"}
_PORT_PROTOCOLS = (6, 17, 132)  # TCP, UDP, SCTP: the only protocols rules with ports may use


class _Invalid(Exception):
    """A problem at a field path inside one document (turned into a PolicyError with location)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass
class _Loader:
    policies: dict[tuple[str, str | None, str], Policy]
    tiers: dict[str, Tier]
    network_sets: dict[tuple[str | None, str], NetworkSet]
    host_endpoints: dict[str, HostEndpoint]
    notes: list[str]


def manifest_files(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """The manifest files named by ``paths``: files as given, directories searched recursively."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise PolicyError(f"{path}: no such file or directory; give a manifest file or a folder of them")
    return files


def read_documents(path: Path) -> list[Any]:
    """Every document of a YAML (multi-document) or JSON file; parse errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the file ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            return [json.loads(text)] if text.strip() else []
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{path}: invalid YAML{where}: {problem}") from None


def load_policies(paths: Iterable[str | Path] | str | Path) -> PolicySet:
    """Load every policy, tier, network set and host endpoint from ``paths``.

    Raises :class:`PolicyError` naming ``file: document N: field.path`` for an invalid manifest.
    """
    loader = _Loader({}, {}, {}, {}, [])
    for path in manifest_files(paths):
        for index, doc in enumerate(read_documents(path), start=1):
            if doc is None:
                continue
            _load_object(loader, doc, path, index, "")
    return _finish(loader)


def policies_from_objects(objects: Iterable[Mapping[str, Any]], origin: str = "<objects>") -> PolicySet:
    """Load manifests that are already parsed (dicts), e.g. from another tool or a test."""
    loader = _Loader({}, {}, {}, {}, [])
    for index, doc in enumerate(objects, start=1):
        if doc is not None:
            _load_object(loader, doc, Path(origin), index, "")
    return _finish(loader)


def _finish(loader: _Loader) -> PolicySet:
    notes = list(loader.notes)
    tiers = dict(loader.tiers)
    for policy in loader.policies.values():
        if policy.tier not in tiers and policy.tier not in _BUILTIN_TIER_NAMES:
            notes.append(
                f"{policy.origin}: tier {policy.tier!r} of {policy.display} is not defined; "
                "it is treated as a tier with no order (last) and defaultAction Deny"
            )
            tiers[policy.tier] = Tier(policy.tier, None, "Deny")
        skipped = _not_evaluated(policy)
        if skipped:
            notes.append(f"{policy.origin}: {policy.display} {skipped}")
    return PolicySet(
        policies=tuple(sorted(loader.policies.values(), key=lambda p: (p.kind, p.namespace or "", p.name))),
        tiers=tuple(sorted(tiers.values(), key=lambda t: t.name)),
        network_sets=tuple(sorted(loader.network_sets.values(), key=lambda s: (s.namespace or "", s.name))),
        host_endpoints=tuple(sorted(loader.host_endpoints.values(), key=lambda h: h.name)),
        notes=tuple(notes),
    )


def _not_evaluated(policy: Policy) -> str:
    if policy.do_not_track:
        return "is a doNotTrack policy: it acts before connection tracking and leaves no flow logs; it is not evaluated"
    if policy.pre_dnat:
        return "is a preDNAT policy: it acts on host endpoints before DNAT; it is not evaluated"
    return ""


_BUILTIN_TIER_NAMES = frozenset(
    {DEFAULT_TIER, "kube-admin", "kube-baseline", "adminnetworkpolicy", "baselineadminnetworkpolicy"}
)


def _load_object(loader: _Loader, doc: Any, path: Path, index: int, prefix: str) -> None:
    where = f"{path}: document {index}"
    if not isinstance(doc, Mapping):
        raise PolicyError(
            f"{where}{': ' + prefix if prefix else ''}: expected a mapping with apiVersion and kind"
        )
    kind = doc.get("kind")
    api_version = str(doc.get("apiVersion") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    if isinstance(kind, str) and (kind == "List" or kind.endswith("List")) and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise PolicyError(f"{where}: {prefix}items: expected a list")
        for i, item in enumerate(items):
            _load_object(loader, item, path, index, f"{prefix}items[{i}].")
        return
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), Mapping) else None
    label = f"{kind} {name}" if name else str(kind)
    origin = f"{path}, document {index}"
    try:
        if kind == "NetworkPolicy" and group == K8S_GROUP:
            _add_policy(loader, _k8s_policy(doc, origin, "KubernetesNetworkPolicy"), origin)
        elif group in CALICO_GROUPS and kind == "StagedKubernetesNetworkPolicy":
            _add_policy(loader, _k8s_policy(doc, origin, "StagedKubernetesNetworkPolicy"), origin)
        elif group in CALICO_GROUPS and kind in _CALICO_POLICY_KINDS:
            _add_policy(loader, _calico_policy(doc, origin, _CALICO_POLICY_KINDS[kind]), origin)
        elif group in CALICO_GROUPS and kind == "Tier":
            tier = _tier(doc)
            if tier.name in loader.tiers:
                loader.notes.append(f"{origin}: Tier {tier.name} replaces an earlier definition")
            loader.tiers[tier.name] = tier
            if tier.name == DEFAULT_TIER and (
                tier.order != DEFAULT_TIER_ORDER or tier.default_action != "Deny"
            ):
                loader.notes.append(
                    f"{origin}: the default tier always has order 1000000 and defaultAction Deny; "
                    "the manifest's values are ignored"
                )
                loader.tiers[tier.name] = Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER, "Deny")
        elif group in CALICO_GROUPS and kind in ("NetworkSet", "GlobalNetworkSet"):
            nset = _network_set(doc, namespaced=kind == "NetworkSet")
            key = (nset.namespace, nset.name)
            if key in loader.network_sets:
                loader.notes.append(f"{origin}: {kind} {nset.name} replaces an earlier definition")
            loader.network_sets[key] = nset
        elif group in CALICO_GROUPS and kind == "HostEndpoint":
            hep = _host_endpoint(doc)
            if hep.name in loader.host_endpoints:
                loader.notes.append(f"{origin}: HostEndpoint {hep.name} replaces an earlier definition")
            loader.host_endpoints[hep.name] = hep
        else:
            loader.notes.append(
                f"{origin}: skipped {label} ({api_version or 'no apiVersion'}): not a policy resource flowlens evaluates"
            )
    except _Invalid as exc:
        raise PolicyError(f"{where}: {prefix}{exc.path}: {exc.message}") from None
    except SelectorError as exc:
        raise PolicyError(f"{where}: {prefix}{exc}") from None


def _add_policy(loader: _Loader, policy: Policy, origin: str) -> None:
    if policy.key in loader.policies:
        loader.notes.append(f"{origin}: {policy.display} replaces an earlier manifest with the same name")
    loader.policies[policy.key] = policy


# --------------------------------------------------------------------------------------------
# Field helpers


def _map(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Invalid(path, "expected a mapping")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(path, "expected a list")
    return value


def _str(value: Any, path: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise _Invalid(path, "required")
        return None
    if not isinstance(value, str):
        raise _Invalid(path, f"expected a string, got {value!r}")
    return value


def _metadata(doc: Mapping[str, Any], *, namespaced: bool) -> tuple[str, str | None, Mapping[str, Any]]:
    meta = _map(doc.get("metadata"), "metadata")
    name = _str(meta.get("name"), "metadata.name", required=True)
    assert name is not None
    namespace = _str(meta.get("namespace"), "metadata.namespace") if namespaced else None
    if namespaced and namespace is None:
        namespace = "default"  # kubectl/calicoctl apply a namespaced object to 'default'
    labels = _map(meta.get("labels"), "metadata.labels")
    return name, namespace, labels


def _selector(text: Any, path: str) -> Selector | None:
    # Calico's API has plain strings: an empty selector field is "not set", not all().
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise _Invalid(path, f"a selector must be a string, got {text!r}")
    try:
        return parse_selector(text)
    except SelectorError as exc:
        raise _Invalid(path, str(exc)) from None


def _label_selector(obj: Any, path: str, *, orchestrator: bool) -> Selector:
    try:
        return label_selector_to_calico(obj, orchestrator=orchestrator, field=path)
    except SelectorError as exc:
        # The selector module already names the field path.
        raise _Invalid(path, str(exc).removeprefix(path + ": ")) from None


def _order(value: Any, path: str) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(path, f"expected a number, got {value!r}")
    return float(value)


def _cidr(value: Any, path: str) -> IPNetwork:
    if not isinstance(value, str):
        raise _Invalid(path, f"expected a CIDR string, got {value!r}")
    try:
        # strict=False: Calico and Kubernetes accept host bits and mask them (192.168.1.5/24).
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise _Invalid(path, f"{value!r} is not an IP address or CIDR") from None


def _protocol(value: Any, path: str) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Invalid(path, f"invalid protocol {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise _Invalid(path, f"protocol number {value} is outside 1-255")
        return value
    if not isinstance(value, str):
        raise _Invalid(path, f"invalid protocol {value!r}")
    proto = normalize_protocol(value)
    if isinstance(proto, int):
        if not 1 <= proto <= 255:
            raise _Invalid(path, f"protocol number {proto} is outside 1-255")
        return proto
    raise _Invalid(
        path, f"unknown protocol {value!r}; use TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255"
    )


def _port_number(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _Invalid(path, f"port {value!r} must be a number from 0 to 65535")
    return value


def _calico_port(value: Any, path: str) -> Port:
    if isinstance(value, int) and not isinstance(value, bool):
        n = _port_number(value, path)
        return PortRange(n, n)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            n = _port_number(int(text), path)
            return PortRange(n, n)
        if ":" in text:
            first, _, last = text.partition(":")
            if not (first.isdigit() and last.isdigit()):
                raise _Invalid(path, f"port range {value!r} must look like '6040:6050'")
            lo, hi = _port_number(int(first), path), _port_number(int(last), path)
            if lo > hi:
                raise _Invalid(path, f"port range {value!r} has its minimum above its maximum")
            return PortRange(lo, hi)
        if not text:
            raise _Invalid(path, "empty port")
        return NamedPort(text)
    raise _Invalid(path, f"invalid port {value!r}: use a number, 'min:max' or a port name")


def _labels(value: Any, path: str) -> dict[str, str]:
    labels = _map(value, path)
    out: dict[str, str] = {}
    for key, val in labels.items():
        if not isinstance(key, str):
            raise _Invalid(f"{path}.{key}", "label keys must be strings")
        out[key] = "" if val is None else str(val)
    return out


# --------------------------------------------------------------------------------------------
# Kubernetes NetworkPolicy (and StagedKubernetesNetworkPolicy)


def _k8s_policy(doc: Mapping[str, Any], origin: str, kind: str) -> Policy:
    name, namespace, _ = _metadata(doc, namespaced=True)
    spec = _map(doc.get("spec"), "spec")
    selector = _label_selector(spec.get("podSelector"), "spec.podSelector", orchestrator=True)
    ingress_raw = _list(spec.get("ingress"), "spec.ingress")
    egress_raw = _list(spec.get("egress"), "spec.egress")
    types_raw = _list(spec.get("policyTypes"), "spec.policyTypes")
    types: list[str] = []
    for i, raw_type in enumerate(types_raw):
        t = _direction(raw_type, f"spec.policyTypes[{i}]")
        if t not in types:
            types.append(t)
    if not types:
        # SetDefaults_NetworkPolicy (K2): Ingress always, Egress only with egress rules.
        types = ["Ingress"] + (["Egress"] if egress_raw else [])
    ingress: list[Rule] = []
    for i, raw in enumerate(ingress_raw):
        r = _map(raw, f"spec.ingress[{i}]")
        ingress.extend(_k8s_rule(r, f"spec.ingress[{i}]", "from", ingress=True))
    egress: list[Rule] = []
    for i, raw in enumerate(egress_raw):
        r = _map(raw, f"spec.egress[{i}]")
        egress.extend(_k8s_rule(r, f"spec.egress[{i}]", "to", ingress=False))
    staged_action = _staged_action(spec) if kind.startswith("Staged") else None
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
        staged_action=staged_action,
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
        for i, p in enumerate(_list(rule.get(peer_field), f"{path}.{peer_field}"))
    ]
    if not peers:
        peers = [None]
    ports_raw = _list(rule.get("ports"), f"{path}.ports")
    protocol_ports: dict[str, list[Port] | None] = {}
    if not ports_raw:
        protocol_ports = {"": None}
    for i, raw in enumerate(ports_raw):
        ppath = f"{path}.ports[{i}]"
        entry = _map(raw, ppath)
        proto_raw = entry.get("protocol")
        if proto_raw is None:
            proto = "TCP"  # SetDefaults_NetworkPolicyPort
        elif isinstance(proto_raw, str) and proto_raw.upper() in ("TCP", "UDP", "SCTP"):
            proto = proto_raw.upper()
        else:
            raise _Invalid(f"{ppath}.protocol", f"unsupported protocol {proto_raw!r}; use TCP, UDP or SCTP")
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
            raise _Invalid(f"{path}.endPort", "endPort requires a numeric port")
        return None
    if isinstance(port, str) and not port.isdigit():
        if end_port is not None:
            raise _Invalid(f"{path}.endPort", "endPort requires a numeric port, not a named port")
        if not port:
            raise _Invalid(f"{path}.port", "empty port name")
        return NamedPort(port)
    number = _port_number(int(port) if isinstance(port, str) else port, f"{path}.port")
    if end_port is None:
        return PortRange(number, number)
    last = _port_number(end_port, f"{path}.endPort")
    if last < number:
        raise _Invalid(f"{path}.endPort", f"endPort {last} must not be below port {number}")
    return PortRange(number, last)


def _k8s_peer(raw: Any, path: str) -> _K8sPeer:
    peer = _map(raw, path)
    unknown = sorted(str(k) for k in peer if k not in ("podSelector", "namespaceSelector", "ipBlock"))
    if unknown:
        raise _Invalid(
            f"{path}.{unknown[0]}", "unknown peer field; use podSelector, namespaceSelector or ipBlock"
        )
    if "ipBlock" in peer and peer.get("ipBlock") is not None:
        if peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
            raise _Invalid(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
        block = _map(peer.get("ipBlock"), f"{path}.ipBlock")
        cidr = _cidr(block.get("cidr"), f"{path}.ipBlock.cidr")
        excepts = tuple(
            _cidr(e, f"{path}.ipBlock.except[{i}]")
            for i, e in enumerate(_list(block.get("except"), f"{path}.ipBlock.except"))
        )
        return _K8sPeer(nets=(cidr,), not_nets=excepts)
    if peer.get("podSelector") is None and peer.get("namespaceSelector") is None:
        raise _Invalid(path, "a peer needs podSelector, namespaceSelector or ipBlock")
    # k8sPeerToCalicoFields: the pod selector always carries the orchestrator clause, so it
    # selects pods only; a present namespaceSelector (even {}) replaces the own-namespace scope.
    selector = _label_selector(peer.get("podSelector"), f"{path}.podSelector", orchestrator=True)
    ns_sel = None
    if peer.get("namespaceSelector") is not None:
        ns_sel = _label_selector(
            peer.get("namespaceSelector"), f"{path}.namespaceSelector", orchestrator=False
        )
    return _K8sPeer(selector=selector, namespace_selector=ns_sel)


# --------------------------------------------------------------------------------------------
# Calico policies


def _direction(value: Any, path: str) -> str:
    if isinstance(value, str) and value.lower() in ("ingress", "egress"):
        return value.capitalize()
    raise _Invalid(path, f"unknown policy type {value!r}; use Ingress or Egress")


def _staged_action(spec: Mapping[str, Any]) -> str:
    raw = spec.get("stagedAction")
    if raw is None:
        return "Set"
    if not isinstance(raw, str) or raw.lower() not in _STAGED_ACTIONS:
        raise _Invalid("spec.stagedAction", f"unknown stagedAction {raw!r}; use Set, Delete, Learn or Ignore")
    return _STAGED_ACTIONS[raw.lower()]


def _calico_policy(doc: Mapping[str, Any], origin: str, kind: str) -> Policy:
    namespaced = kind in ("NetworkPolicy", "StagedNetworkPolicy")
    name, namespace, _ = _metadata(doc, namespaced=namespaced)
    spec = _map(doc.get("spec"), "spec")
    tier = _str(spec.get("tier"), "spec.tier") or DEFAULT_TIER
    order = _order(spec.get("order"), "spec.order")
    selector = _selector(spec.get("selector"), "spec.selector") or parse_selector("all()")
    ns_selector = None
    if not namespaced:
        ns_selector = _selector(spec.get("namespaceSelector"), "spec.namespaceSelector")
    elif spec.get("namespaceSelector") is not None:
        raise _Invalid("spec.namespaceSelector", "only GlobalNetworkPolicy has a namespaceSelector")
    sa_selector = _selector(spec.get("serviceAccountSelector"), "spec.serviceAccountSelector")
    ingress_raw = spec.get("ingress")
    egress_raw = spec.get("egress")
    ingress = tuple(
        _calico_rule(r, f"spec.ingress[{i}]") for i, r in enumerate(_list(ingress_raw, "spec.ingress"))
    )
    egress = tuple(
        _calico_rule(r, f"spec.egress[{i}]") for i, r in enumerate(_list(egress_raw, "spec.egress"))
    )
    types_raw = spec.get("types")
    if types_raw is None or types_raw == []:
        # C8: no rules or ingress only -> Ingress; egress only -> Egress; both -> both.
        if ingress and egress:
            types = ["Ingress", "Egress"]
        elif egress:
            types = ["Egress"]
        else:
            types = ["Ingress"]
    else:
        types = []
        for i, raw_type in enumerate(_list(types_raw, "spec.types")):
            types.append(_direction(raw_type, f"spec.types[{i}]"))
    staged_action = _staged_action(spec) if kind.startswith("Staged") else None
    flags = {}
    for key in ("doNotTrack", "preDNAT", "applyOnForward"):
        value = spec.get(key)
        if value is not None and not isinstance(value, bool):
            raise _Invalid(f"spec.{key}", f"expected true or false, got {value!r}")
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
    rule = _map(raw, path)
    action_raw = rule.get("action")
    if not isinstance(action_raw, str) or action_raw.lower() not in _ACTIONS:
        raise _Invalid(f"{path}.action", f"unknown action {action_raw!r}; use Allow, Deny, Pass or Log")
    protocol = _protocol(rule.get("protocol"), f"{path}.protocol")
    not_protocol = _protocol(rule.get("notProtocol"), f"{path}.notProtocol")
    source = _entity(rule.get("source"), f"{path}.source")
    destination = _entity(rule.get("destination"), f"{path}.destination")
    for side, entity in (("source", source), ("destination", destination)):
        if (entity.ports or entity.not_ports) and protocol not in _PORT_PROTOCOLS:
            raise _Invalid(
                f"{path}.protocol",
                f"rules that specify {side} ports must set protocol to TCP, UDP or SCTP (Calico's validator)",
            )
    ip_version = rule.get("ipVersion")
    if ip_version is not None and ip_version not in (4, 6):
        raise _Invalid(f"{path}.ipVersion", f"must be 4 or 6, got {ip_version!r}")
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
    entity = _map(raw, path)
    unknown = sorted(str(k) for k in entity if k not in _ENTITY_FIELDS)
    if unknown:
        raise _Invalid(f"{path}.{unknown[0]}", "unknown EntityRule field")
    nets = tuple(
        _cidr(n, f"{path}.nets[{i}]") for i, n in enumerate(_list(entity.get("nets"), f"{path}.nets"))
    )
    not_nets = tuple(
        _cidr(n, f"{path}.notNets[{i}]")
        for i, n in enumerate(_list(entity.get("notNets"), f"{path}.notNets"))
    )
    ports = tuple(
        _calico_port(p, f"{path}.ports[{i}]")
        for i, p in enumerate(_list(entity.get("ports"), f"{path}.ports"))
    )
    not_ports = tuple(
        _calico_port(p, f"{path}.notPorts[{i}]")
        for i, p in enumerate(_list(entity.get("notPorts"), f"{path}.notPorts"))
    )
    sa = None
    if entity.get("serviceAccounts") is not None:
        sa_raw = _map(entity.get("serviceAccounts"), f"{path}.serviceAccounts")
        names = tuple(
            str(_str(n, f"{path}.serviceAccounts.names[{i}]", required=True))
            for i, n in enumerate(_list(sa_raw.get("names"), f"{path}.serviceAccounts.names"))
        )
        sa_sel = _selector(sa_raw.get("selector"), f"{path}.serviceAccounts.selector")
        sa = ServiceAccountMatch(names, sa_sel)
    services: list[tuple[str, str | None]] = []
    if entity.get("services") is not None:
        svc = _map(entity.get("services"), f"{path}.services")
        svc_name = _str(svc.get("name"), f"{path}.services.name", required=True)
        assert svc_name is not None
        services.append((svc_name, _str(svc.get("namespace"), f"{path}.services.namespace")))
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


# --------------------------------------------------------------------------------------------
# Tiers, network sets, host endpoints


def _tier(doc: Mapping[str, Any]) -> Tier:
    name, _, _ = _metadata(doc, namespaced=False)
    spec = _map(doc.get("spec"), "spec")
    order_raw = spec.get("order")
    order = None if order_raw is None else _order(order_raw, "spec.order")
    action_raw = spec.get("defaultAction")
    if action_raw is None:
        action = "Deny"
    elif isinstance(action_raw, str) and action_raw.lower() in ("deny", "pass"):
        action = action_raw.capitalize()
    else:
        raise _Invalid("spec.defaultAction", f"unknown defaultAction {action_raw!r}; use Deny or Pass")
    return Tier(name, order, action)


def _network_set(doc: Mapping[str, Any], *, namespaced: bool) -> NetworkSet:
    name, namespace, labels = _metadata(doc, namespaced=namespaced)
    spec = _map(doc.get("spec"), "spec")
    nets = tuple(_cidr(n, f"spec.nets[{i}]") for i, n in enumerate(_list(spec.get("nets"), "spec.nets")))
    return NetworkSet(name, namespace, freeze_labels(_labels(labels, "metadata.labels")), nets)


def _host_endpoint(doc: Mapping[str, Any]) -> HostEndpoint:
    name, _, labels = _metadata(doc, namespaced=False)
    spec = _map(doc.get("spec"), "spec")
    ips = []
    for i, ip in enumerate(_list(spec.get("expectedIPs"), "spec.expectedIPs")):
        try:
            ips.append(str(ipaddress.ip_address(str(ip))))
        except ValueError:
            raise _Invalid(f"spec.expectedIPs[{i}]", f"{ip!r} is not an IP address") from None
    profiles = tuple(
        str(_str(p, f"spec.profiles[{i}]", required=True))
        for i, p in enumerate(_list(spec.get("profiles"), "spec.profiles"))
    )
    ports = []
    for i, raw in enumerate(_list(spec.get("ports"), "spec.ports")):
        entry = _map(raw, f"spec.ports[{i}]")
        pname = _str(entry.get("name"), f"spec.ports[{i}].name", required=True)
        assert pname is not None
        proto = _protocol(entry.get("protocol") or "TCP", f"spec.ports[{i}].protocol")
        port = _port_number(entry.get("port"), f"spec.ports[{i}].port")
        ports.append(ContainerPort(pname, proto or 6, port))
    return HostEndpoint(
        name=name,
        node=_str(spec.get("node"), "spec.node"),
        interface_name=_str(spec.get("interfaceName"), "spec.interfaceName"),
        expected_ips=tuple(ips),
        labels=freeze_labels(_labels(labels, "metadata.labels")),
        profiles=profiles,
        ports=tuple(ports),
    )
