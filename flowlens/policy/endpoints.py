"""Endpoint resolution: the two sides of a flow key as Felix's selectors and rules see them.

Owns :class:`EndpointResolver`, which turns an :class:`~flowlens.policy.model.Endpoint` into

* a :class:`Local` (the endpoint whose policies are evaluated: its labels, named ports and
  profiles), and
* a :class:`Side` (one side of the packet as rules see it: its possible addresses, the ``pvt`` /
  ``pub`` class of a masked address, every identity a selector can match — the endpoint and the
  network sets holding its address, rulebook C13 — and its named ports),

with the labels Felix's IP sets see (rulebook L3): pod labels plus
``projectcalico.org/namespace``, ``projectcalico.org/orchestrator=k8s``,
``projectcalico.org/serviceaccount``, the namespace's labels as ``pcns.<key>`` (with
``pcns.projectcalico.org/name``) and the service account's labels as ``pcsa.<key>`` (with
``pcsa.projectcalico.org/name``). Facts the flow record lacks come from the inventory and the
policy set (host endpoints, network sets); what stays unknown is recorded in the label view so
that a selector reading it is undecided (rulebook U1, U2). Masked addresses are narrowed where
possible (rulebook U4).

It also parses endpoint names (``namespace/pod``, an IP, a host endpoint or network set) for
:meth:`flowlens.policy.Evaluator.endpoint`. Results are memoized per endpoint.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field, replace

from flowlens.errors import PolicyError
from flowlens.policy.compiled import SERVICE_ACCOUNT_LABEL
from flowlens.policy.inventory import NAMESPACE_NAME_LABEL, Inventory
from flowlens.policy.model import (
    ContainerPort,
    Endpoint,
    HostEndpoint,
    IPAddress,
    IPNetwork,
    NetworkSet,
    PolicySet,
)
from flowlens.policy.selector import (
    NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX,
    ORCHESTRATOR_LABEL,
    SERVICE_ACCOUNT_LABEL_PREFIX,
)

NAME_LABEL = "projectcalico.org/name"

#: The ranges Calico's flow logs call ``pvt`` when they mask an address.
PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass(frozen=True)
class View:
    """The labels Felix's selectors see for one endpoint, and which keys are unknown."""

    labels: dict[str, str]
    unknown_prefixes: tuple[str, ...] = ()
    unknown_why: tuple[str, ...] = ()  # one description per prefix
    # The answers of :meth:`undecided` per key set: every rule and policy selector asks it again.
    _undecided: dict[frozenset[str], str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def undecided(self, keys: frozenset[str]) -> str | None:
        """A description of the missing fact when the selector's keys touch an unknown key."""
        if not self.unknown_prefixes:
            return None
        memo = self._undecided
        if keys in memo:
            return memo[keys]
        why = memo[keys] = self._first_unknown(keys)
        return why

    def _first_unknown(self, keys: frozenset[str]) -> str | None:
        for key in sorted(keys):
            if key in self.labels:
                continue  # present keys are known, whatever else is missing
            best: tuple[int, str] | None = None
            for prefix, why in zip(self.unknown_prefixes, self.unknown_why, strict=True):
                if key.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), why)
            if best is not None:
                return best[1]
        return None


@dataclass(frozen=True)
class Ident:
    """An endpoint or network set as a selector target."""

    kind: str  # wep | hep | ns
    namespace: str | None
    name: str | None
    view: View
    display: str


@dataclass(frozen=True)
class Local:
    """The endpoint whose policies are evaluated."""

    ident: Ident
    named_ports: tuple[ContainerPort, ...] | None
    profiles: tuple[str, ...] | None  # None = unknown (host endpoint without manifest)


@dataclass(frozen=True)
class Side:
    """One side of a packet as rules see it."""

    ips: tuple[IPAddress, ...] | None  # the possible addresses; None = unknown
    ip_class: str | None  # 'pvt' / 'pub' for a masked address outside the cluster
    idents: tuple[Ident, ...]
    complete: bool  # False: the side may be an endpoint we cannot see (masked IP)
    named_ports: tuple[ContainerPort, ...] | None
    display: str


def parse_ip(text: str | None) -> IPAddress | None:
    """The address ``text`` spells, or None (empty, masked or not an address)."""
    if not text:
        return None
    return _parse_ip(text)


@functools.lru_cache(maxsize=65536)
def _parse_ip(text: str) -> IPAddress | None:
    # Addresses are immutable; a replay parses the same few thousand again and again.
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def may_hold(net: IPNetwork, ip_class: str) -> bool:
    """Whether a CIDR can contain an address Calico classifies as ``pvt`` or ``pub``."""
    if net.version != 4:
        return ip_class == "pub"
    if ip_class == "pvt":
        return any(net.overlaps(r) for r in PRIVATE)
    return not any(net.subnet_of(r) for r in PRIVATE)  # type: ignore[arg-type]


class EndpointResolver:
    """Resolves endpoints against one policy set (host endpoints, network sets) and, optionally,
    a cluster inventory. Memoizes :meth:`local` and :meth:`side` per endpoint."""

    def __init__(self, policy_set: PolicySet, inventory: Inventory | None = None) -> None:
        self.inventory = inventory
        self._network_sets = policy_set.network_sets
        self._heps_by_name = {h.name: h for h in policy_set.host_endpoints}
        self._heps_by_ip: dict[str, HostEndpoint] = {}
        for hep in policy_set.host_endpoints:
            for ip in hep.expected_ips:
                self._heps_by_ip.setdefault(ip, hep)
        self._sets_by_key = {(s.namespace, s.name): s for s in policy_set.network_sets}
        self._local_cache: dict[Endpoint, Local] = {}
        self._side_cache: dict[Endpoint, Side] = {}
        self._known_cache: dict[Endpoint, Endpoint] = {}

    def forget(self) -> None:
        """Drop the memoized resolutions."""
        self._local_cache.clear()
        self._side_cache.clear()
        self._known_cache.clear()

    # -- names ----------------------------------------------------------------------------

    def endpoint(self, text: str) -> Endpoint:
        """An endpoint from ``namespace/pod``, an IP address, or a network set ``namespace/name``.

        Pods need the inventory; an IP that no pod, host endpoint or network set owns is an
        address outside the cluster (kind ``net``).
        """
        text = text.strip()
        ip = parse_ip(text)
        if ip is not None:
            ip_text = str(ip)
            if self.inventory is not None:
                pod = self.inventory.pod_by_ip(ip_text)
                if pod is not None:
                    # Keep the address that was given: a dual-stack pod's second IP is what nets
                    # and ipBlocks compare (rulebook K11), not the pod's first IP.
                    return replace(self.inventory.endpoint(pod), ip=ip_text)
            hep = self._heps_by_ip.get(ip_text)
            if hep is not None:
                return Endpoint("hep", None, hep.name, hep.labels, ip_text, named_ports=hep.ports)
            return Endpoint("net", None, None, {}, ip_text)
        namespace, sep, name = text.partition("/")
        if not sep:
            hep = self._heps_by_name.get(text)
            if hep is not None:
                first_ip = hep.expected_ips[0] if hep.expected_ips else None
                return Endpoint("hep", None, hep.name, hep.labels, first_ip, named_ports=hep.ports)
            nset = self._sets_by_key.get((None, text))
            if nset is not None:
                return Endpoint("ns", None, nset.name, nset.labels)
            raise PolicyError(f"{text!r}: give NAMESPACE/POD, an IP address, or a host endpoint name")
        if self.inventory is not None:
            pods = self.inventory.find_pods(namespace, name)
            if pods:
                return self.inventory.endpoint(pods[0])
        nset = self._sets_by_key.get((namespace, name))
        if nset is not None:
            return Endpoint("ns", namespace, nset.name, nset.labels)
        raise PolicyError(
            f"no pod {name!r} in namespace {namespace!r}: give --inventory with the cluster's pods, "
            "or describe the endpoint with labels"
        )

    def known(self, ep: Endpoint) -> Endpoint:
        """A ``net`` endpoint whose IP is a known pod's or host endpoint's, as that endpoint."""
        if ep.kind != "net" or not ep.ip:
            return ep
        cached = self._known_cache.get(ep)
        if cached is None:
            cached = ep
            if parse_ip(ep.ip) is not None:
                resolved = self.endpoint(str(ep.ip))
                cached = resolved if resolved.kind != "net" else ep
            self._known_cache[ep] = cached
        return cached

    # -- the evaluated endpoint and the two sides -----------------------------------------

    def local(self, ep: Endpoint) -> Local:
        """The endpoint whose policies are evaluated (a pod or a host endpoint)."""
        cached = self._local_cache.get(ep)
        if cached is not None:
            return cached
        if ep.kind == "wep":
            ident, ports, _ = self._wep_ident(ep)
            local = Local(ident, ports, ("kns",))
        else:
            ident, hep = self._hep_ident(ep)
            if hep is not None:
                local = Local(ident, hep.ports, hep.profiles)
            else:
                local = Local(ident, ep.named_ports, None)
        self._local_cache[ep] = local
        return local

    def side(self, ep: Endpoint) -> Side:
        """One side of the packet: addresses, identities (endpoint and network sets), ports."""
        cached = self._side_cache.get(ep)
        if cached is not None:
            return cached
        ip = parse_ip(ep.ip)
        ips: tuple[IPAddress, ...] | None = None if ip is None else (ip,)
        ip_class: str | None = None
        idents: list[Ident] = []
        named_ports: tuple[ContainerPort, ...] | None = ()
        kind = ep.kind
        display = ep.display
        original = ep
        if kind == "net" and ip is not None:
            # An address the record did not attribute may still be a pod or host endpoint we know.
            pod = self.inventory.pod_by_ip(str(ip)) if self.inventory is not None else None
            if pod is not None and self.inventory is not None:
                ep = self.inventory.endpoint(pod)
                ep = Endpoint(
                    "wep",
                    ep.namespace,
                    ep.name,
                    ep.labels,
                    str(ip),
                    ep.service_account,
                    ep.named_ports,
                    ep.namespace_labels,
                    ep.service_account_labels,
                )
                kind = "wep"
            elif str(ip) in self._heps_by_ip:
                hep = self._heps_by_ip[str(ip)]
                ep = Endpoint("hep", None, hep.name, hep.labels, str(ip), named_ports=hep.ports)
                kind = "hep"
        elif kind == "net" and ep.name in ("pvt", "pub"):
            ip_class = ep.name
        own_set: NetworkSet | None = None
        if kind == "wep":
            ident, named_ports, ips = self._wep_ident(ep)
            idents.append(ident)
            display = ident.display
        elif kind == "hep":
            ident, hep_obj = self._hep_ident(ep)
            idents.append(ident)
            named_ports = hep_obj.ports if hep_obj is not None else ep.named_ports
            if ips is None and hep_obj is not None and hep_obj.expected_ips:
                ips = tuple(a for a in map(parse_ip, hep_obj.expected_ips) if a is not None) or None
            display = ident.display
        elif kind == "ns":
            own_set = self._sets_by_key.get((ep.namespace, ep.name or ""))
            if own_set is not None:
                idents.append(self._set_ident(own_set))
            else:
                labels = dict(ep.labels)
                if ep.namespace:
                    labels[NAMESPACE_LABEL] = ep.namespace
                    labels[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = ep.namespace
                    labels[NAMESPACE_LABEL_PREFIX + NAMESPACE_NAME_LABEL] = ep.namespace
                idents.append(Ident("ns", ep.namespace, ep.name, View(labels), f"network set {ep.display}"))
        complete = True
        if ips is not None:
            for nset in self._network_sets:
                if nset is not own_set and any(nset.contains(a) for a in ips):
                    idents.append(self._set_ident(nset))
        elif kind in ("net", "ns"):
            # A masked address may be in any network set that can hold an address of its class.
            possible = [
                n
                for n in self._network_sets
                if n is not own_set and (ip_class is None or any(may_hold(c, ip_class) for c in n.nets))
            ]
            complete = not possible
        side = Side(ips, ip_class, tuple(idents), complete, named_ports, display)
        self._side_cache[original] = side
        return side

    # -- identities -----------------------------------------------------------------------

    def _ns_labels(self, namespace: str, given: object) -> tuple[dict[str, str] | None, str]:
        if given is not None:
            labels = dict(given)  # type: ignore[call-overload]
            labels.setdefault(NAMESPACE_NAME_LABEL, namespace)  # rulebook K15: always present
            return labels, ""
        if self.inventory is not None:
            labels = self.inventory.namespace_labels(namespace)
            if labels is not None:
                return labels.as_dict(), ""
            return None, f"the labels of namespace {namespace} are not known (it is not in the inventory)"
        return None, f"the labels of namespace {namespace} are not known (give --inventory)"

    def _wep_ident(
        self, ep: Endpoint
    ) -> tuple[Ident, tuple[ContainerPort, ...] | None, tuple[IPAddress, ...] | None]:
        ns = ep.namespace or "default"
        pod = None
        template = None
        candidates: list[IPAddress] = []
        if self.inventory is not None:
            if ep.name:
                pod = self.inventory.pod(ns, ep.name)
            if pod is None and ep.ip:
                candidate = self.inventory.pod_by_ip(ep.ip)
                if candidate is not None and candidate.namespace == ns:
                    pod = candidate
            if pod is None and ep.name:
                pods = self.inventory.logged_pods(ns, ep.name)
                if pods and all(
                    (p.service_account, p.named_ports) == (pods[0].service_account, pods[0].named_ports)
                    for p in pods
                ):
                    template = pods[0]
                for p in pods:
                    candidates.extend(ip for ip in map(parse_ip, p.ips) if ip is not None)
        known = pod or template
        labels: dict[str, str] = dict(ep.labels)
        labels_known = ep.labels_known
        if not labels_known and known is not None:
            labels = known.labels.as_dict()
            labels_known = True
        sa = ep.service_account or (known.service_account if known else None)
        named_ports = ep.named_ports if ep.named_ports is not None else (known.named_ports if known else None)
        prefixes: list[str] = []
        whys: list[str] = []
        view: dict[str, str] = dict(labels)
        view[NAMESPACE_LABEL] = ns
        view[ORCHESTRATOR_LABEL] = "k8s"
        display = f"{ns}/{ep.name or ep.ip or '?'}"
        if not labels_known:
            prefixes.append("")
            whys.append(f"the labels of {display} are not known (not in the flow record)")
        ns_labels, ns_why = self._ns_labels(ns, ep.namespace_labels)
        if ns_labels is None:
            ns_labels = {NAMESPACE_NAME_LABEL: ns}
            prefixes.append(NAMESPACE_LABEL_PREFIX)
            whys.append(ns_why)
        for key, value in ns_labels.items():
            view[NAMESPACE_LABEL_PREFIX + key] = value
        view[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = ns
        if sa is None:
            prefixes += [SERVICE_ACCOUNT_LABEL, SERVICE_ACCOUNT_LABEL_PREFIX]
            why = f"the service account of {display} is not known " + (
                "(give --inventory)" if self.inventory is None else "(not in the inventory)"
            )
            whys += [why, why]
        else:
            if len(sa) < 63:
                view[SERVICE_ACCOUNT_LABEL] = sa
            sa_labels = ep.service_account_labels
            if sa_labels is None and self.inventory is not None:
                sa_labels = self.inventory.service_account_labels(ns, sa)
            if sa_labels is None:
                prefixes.append(SERVICE_ACCOUNT_LABEL_PREFIX)
                whys.append(f"the labels of service account {ns}/{sa} are not known (give --inventory)")
            else:
                for key, value in sa_labels.items():
                    view[SERVICE_ACCOUNT_LABEL_PREFIX + key] = value
            view[SERVICE_ACCOUNT_LABEL_PREFIX + NAME_LABEL] = sa
        ident = Ident("wep", ns, ep.name, View(view, tuple(prefixes), tuple(whys)), display)
        own_ip = parse_ip(ep.ip)
        if own_ip is not None:
            ips: tuple[IPAddress, ...] | None = (own_ip,)
        elif pod is not None:
            ips = tuple(ip for ip in map(parse_ip, pod.ips) if ip is not None) or None
        else:
            ips = tuple(candidates) or None
        return ident, named_ports, ips

    def _set_ident(self, nset: NetworkSet) -> Ident:
        view: dict[str, str] = dict(nset.labels)
        prefixes: list[str] = []
        whys: list[str] = []
        if nset.namespace is not None:
            # Namespaced network sets carry their namespace and inherit its labels (kns profile).
            view[NAMESPACE_LABEL] = nset.namespace
            ns_labels, why = self._ns_labels(nset.namespace, None)
            if ns_labels is None:
                ns_labels = {NAMESPACE_NAME_LABEL: nset.namespace}
                prefixes.append(NAMESPACE_LABEL_PREFIX)
                whys.append(why)
            for key, value in ns_labels.items():
                view[NAMESPACE_LABEL_PREFIX + key] = value
            view[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = nset.namespace
        display = f"{nset.namespace}/{nset.name}" if nset.namespace else nset.name
        kind = "NetworkSet" if nset.namespace else "GlobalNetworkSet"
        return Ident(
            "ns", nset.namespace, nset.name, View(view, tuple(prefixes), tuple(whys)), f"{kind} {display}"
        )

    def _hep_ident(self, ep: Endpoint) -> tuple[Ident, HostEndpoint | None]:
        hep = self._heps_by_name.get(ep.name or "") if ep.name else None
        if hep is None and ep.ip:
            hep = self._heps_by_ip.get(ep.ip)
        if hep is None and ep.name:
            # Flow logs aggregate host endpoints to the hostname: one HEP on that node is it
            # (rulebook H1).
            on_node = [h for h in self._heps_by_name.values() if h.node == ep.name]
            if len(on_node) == 1:
                hep = on_node[0]
        labels = dict(hep.labels) if hep is not None else dict(ep.labels)
        prefixes: tuple[str, ...] = ()
        whys: tuple[str, ...] = ()
        name = hep.name if hep is not None else ep.name
        display = f"host endpoint {name or ep.ip or '?'}"
        if hep is None and not ep.labels_known:
            prefixes, whys = ("",), (f"the labels of {display} are not known",)
        return Ident("hep", None, name, View(labels, prefixes, whys), display), hep
