"""The policy model: tiers, policies, rules, network sets, host endpoints and endpoints.

Every value here is a frozen dataclass, already defaulted the way the Kubernetes API server and
Calico default them (``flowlens.policy.manifests`` does the defaulting), so the evaluator never
has to guess. Selectors are kept as parsed :class:`flowlens.policy.selector.Selector` objects so
they are compiled once per load, not once per flow.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowlens.formats.hits import PolicyHit
from flowlens.schema import PROFILE_TIER

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IANA numbers of the protocols Calico knows by name. Flow logs spell ICMPv6 ``icmp6``.
PROTOCOL_NUMBERS: dict[str, int] = {
    "icmp": 1,
    "ipip": 4,
    "tcp": 6,
    "udp": 17,
    "esp": 50,
    "icmpv6": 58,
    "icmp6": 58,
    "sctp": 132,
    "udplite": 136,
}
_PROTOCOL_NAMES: dict[int, str] = {
    1: "icmp",
    4: "ipip",
    6: "tcp",
    17: "udp",
    50: "esp",
    58: "icmpv6",
    132: "sctp",
    136: "udplite",
}

#: Tier names with a fixed meaning. ``default`` holds Kubernetes and tier-less Calico policies.
DEFAULT_TIER = "default"
DEFAULT_TIER_ORDER = 1_000_000.0
#: Order Calico gives every Kubernetes NetworkPolicy inside the default tier.
K8S_POLICY_ORDER = 1000.0


def normalize_protocol(value: int | str | None) -> int | str | None:
    """A protocol as a comparable value: its IANA number when known, else the lower-case name.

    Calico matches protocol names case-insensitively and accepts numbers 1-255; flow logs write
    lower-case names (``tcp``, ``icmp6``) or numbers.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"invalid protocol {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    return PROTOCOL_NUMBERS.get(text, text)


def protocol_name(value: int | str | None) -> str:
    """The lower-case name of a normalized protocol, for messages and output."""
    if value is None:
        return "any"
    if isinstance(value, int):
        return _PROTOCOL_NAMES.get(value, str(value))
    return value


class FrozenLabels(Mapping[str, str]):
    """An immutable, hashable label mapping (so endpoints and flow keys can be memo keys)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self._data: dict[str, str] = dict(sorted((data or {}).items()))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenLabels):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenLabels({self._data!r})"

    def as_dict(self) -> dict[str, str]:
        return dict(self._data)


def freeze_labels(labels: Mapping[str, Any] | None) -> FrozenLabels:
    if isinstance(labels, FrozenLabels):
        return labels
    return FrozenLabels({str(k): "" if v is None else str(v) for k, v in (labels or {}).items()})


# --------------------------------------------------------------------------------------------
# Ports


@dataclass(frozen=True)
class PortRange:
    """An inclusive port range; a single port has ``first == last``."""

    first: int
    last: int

    def contains(self, port: int) -> bool:
        return self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"


@dataclass(frozen=True)
class NamedPort:
    """A port given by name, resolved on the destination endpoint's named ports."""

    name: str

    def __str__(self) -> str:
        return self.name


Port = PortRange | NamedPort


@dataclass(frozen=True)
class ContainerPort:
    """A named port of an endpoint (a pod's container port, a host endpoint's ``spec.ports``)."""

    name: str
    protocol: int | str
    port: int


# --------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class ServiceAccountMatch:
    """``serviceAccounts`` of an EntityRule: names and a selector over service-account labels (ANDed)."""

    names: tuple[str, ...] = ()
    selector: Any = None  # Selector | None


@dataclass(frozen=True)
class EntityRule:
    """The source or destination of a Calico rule. Every field that is set must match."""

    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    selector: Any = None  # Selector | None
    not_selector: Any = None
    namespace_selector: Any = None
    ports: tuple[Port, ...] = ()
    not_ports: tuple[Port, ...] = ()
    service_accounts: ServiceAccountMatch | None = None
    services: tuple[tuple[str, str | None], ...] = ()

    @property
    def has_selector_fields(self) -> bool:
        """True when Calico ANDs the namespace clause onto this entity (rules.go)."""
        return (
            self.selector is not None
            or self.not_selector is not None
            or self.service_accounts is not None
            or self.namespace_selector is not None
        )

    @property
    def is_empty(self) -> bool:
        return self == _EMPTY_ENTITY


_EMPTY_ENTITY = EntityRule()


@dataclass(frozen=True)
class Rule:
    """One rule of a Calico policy (Kubernetes rules are converted to these, as Calico does)."""

    action: str  # Allow | Deny | Log | Pass
    protocol: int | str | None = None
    not_protocol: int | str | None = None
    source: EntityRule = _EMPTY_ENTITY
    destination: EntityRule = _EMPTY_ENTITY
    ip_version: int | None = None
    has_icmp: bool = False  # icmp / notICMP criteria (not evaluated: flows carry no ICMP type)
    has_http: bool = False  # application-layer criteria (not evaluated offline)
    name: str | None = None  # the rule's name (cluster policy kinds keep it as rule metadata)


# --------------------------------------------------------------------------------------------
# Policies, tiers and other resources

STAGED_COUNTERPART: dict[str, str] = {
    "StagedNetworkPolicy": "NetworkPolicy",
    "StagedGlobalNetworkPolicy": "GlobalNetworkPolicy",
    "StagedKubernetesNetworkPolicy": "KubernetesNetworkPolicy",
}
NAMESPACED_KINDS = frozenset(
    {"NetworkPolicy", "KubernetesNetworkPolicy", "StagedNetworkPolicy", "StagedKubernetesNetworkPolicy"}
)
#: The cluster-scoped Kubernetes policy kinds (``policy.networking.k8s.io``): the guardrails
#: platform teams set for every namespace, and the tiers Calico puts them in.
CLUSTER_POLICY_KINDS = frozenset({"ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy"})
KUBE_ADMIN_TIER = "kube-admin"
KUBE_BASELINE_TIER = "kube-baseline"
ANP_TIER = "adminnetworkpolicy"
BANP_TIER = "baselineadminnetworkpolicy"
#: Tiers that hold cluster guardrails, and whether each is the Admin or the Baseline layer.
GUARDRAIL_TIERS: dict[str, str] = {
    KUBE_ADMIN_TIER: "Admin",
    ANP_TIER: "Admin",
    KUBE_BASELINE_TIER: "Baseline",
    BANP_TIER: "Baseline",
}


@dataclass(frozen=True)
class Policy:
    """A policy as Calico evaluates it.

    ``kind`` is the flow-log kind (``KubernetesNetworkPolicy`` for ``networking.k8s.io/v1``
    NetworkPolicy, ``NetworkPolicy`` for the Calico one, ``Staged*`` ...). ``order`` is ``inf``
    when the manifest has none. ``types`` holds ``Ingress`` and/or ``Egress`` after defaulting.
    """

    kind: str
    name: str
    namespace: str | None
    tier: str
    order: float
    selector: Any  # Selector
    types: tuple[str, ...]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    namespace_selector: Any = None  # GlobalNetworkPolicy only
    service_account_selector: Any = None
    staged_action: str | None = None  # Set | Delete | Learn | Ignore for staged kinds
    do_not_track: bool = False
    pre_dnat: bool = False
    apply_on_forward: bool = False
    origin: str = ""  # "file, document N" for messages
    notes: tuple[str, ...] = ()  # what the conversion changed (cluster policy kinds: fail-closed rules)

    @property
    def staged(self) -> bool:
        return self.kind.startswith("Staged")

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def counterpart_key(self) -> tuple[str, str | None, str] | None:
        """The enforced policy a staged policy stands in for."""
        kind = STAGED_COUNTERPART.get(self.kind)
        return None if kind is None else (kind, self.namespace, self.name)

    @property
    def sort_key(self) -> tuple[float, str]:
        # policy_sorter.go PolKVLess: order (nil = +inf), then "<name>/<namespace>/<kind>".
        return (self.order, f"{self.name}/{self.namespace or ''}/{self.kind}")

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == "Ingress" else self.egress

    def hit(self, index: int, action: str, rule_index: int) -> PolicyHit:
        return PolicyHit(index, self.tier, self.kind, self.namespace, self.name, action, rule_index)

    @property
    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


@dataclass(frozen=True)
class Tier:
    """A tier: ``order`` None sorts last; ``default_action`` is Deny or Pass."""

    name: str
    order: float | None
    default_action: str = "Deny"

    @property
    def sort_key(self) -> tuple[float, str]:
        return (math.inf if self.order is None else self.order, self.name)


BUILTIN_TIERS: tuple[Tier, ...] = (
    Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER, "Deny"),
    Tier(KUBE_ADMIN_TIER, 1000.0, "Pass"),
    Tier(KUBE_BASELINE_TIER, 10_000_000.0, "Pass"),
    Tier(ANP_TIER, 1000.0, "Pass"),
    Tier(BANP_TIER, 10_000_000.0, "Pass"),
)


@dataclass(frozen=True)
class NetworkSet:
    """A NetworkSet (namespaced) or GlobalNetworkSet (``namespace`` None): labelled CIDRs that rule
    selectors can select."""

    name: str
    namespace: str | None
    labels: FrozenLabels
    nets: tuple[IPNetwork, ...]

    def contains(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.nets)


@dataclass(frozen=True)
class HostEndpoint:
    """A Calico HostEndpoint: selected by GlobalNetworkPolicies through its labels."""

    name: str
    node: str | None
    interface_name: str | None
    expected_ips: tuple[str, ...]
    labels: FrozenLabels
    profiles: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()


@dataclass(frozen=True)
class PolicySet:
    """Everything loaded from a set of manifests. ``notes`` tells what was skipped or replaced."""

    policies: tuple[Policy, ...] = ()
    tiers: tuple[Tier, ...] = ()
    network_sets: tuple[NetworkSet, ...] = ()
    host_endpoints: tuple[HostEndpoint, ...] = ()
    notes: tuple[str, ...] = ()

    def merged(self, other: PolicySet) -> PolicySet:
        """This set with ``other`` applied on top: same (kind, namespace, name) is replaced."""
        pol = {p.key: p for p in self.policies}
        pol.update({p.key: p for p in other.policies})
        tiers = {t.name: t for t in self.tiers}
        tiers.update({t.name: t for t in other.tiers})
        sets = {(s.namespace, s.name): s for s in self.network_sets}
        sets.update({(s.namespace, s.name): s for s in other.network_sets})
        heps = {h.name: h for h in self.host_endpoints}
        heps.update({h.name: h for h in other.host_endpoints})
        return PolicySet(
            tuple(sorted(pol.values(), key=_policy_identity)),
            tuple(sorted(tiers.values(), key=lambda t: t.name)),
            tuple(sorted(sets.values(), key=lambda s: (s.namespace or "", s.name))),
            tuple(sorted(heps.values(), key=lambda h: h.name)),
            self.notes + other.notes,
        )

    def find(self, kind: str, namespace: str | None, name: str) -> Policy | None:
        for p in self.policies:
            if p.key == (kind, namespace, name):
                return p
        return None

    @property
    def enforced(self) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if not p.staged)

    @property
    def staged(self) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if p.staged)


def _policy_identity(p: Policy) -> tuple[str, str, str]:
    return (p.kind, p.namespace or "", p.name)


# --------------------------------------------------------------------------------------------
# Endpoints and flow keys


def _freeze_ports(value: Any) -> tuple[ContainerPort, ...] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        out = []
        for name, spec in value.items():
            if isinstance(spec, ContainerPort):
                out.append(spec)
            elif isinstance(spec, int):
                out.append(ContainerPort(str(name), 6, spec))
            else:
                proto, port = spec
                out.append(ContainerPort(str(name), normalize_protocol(proto) or 6, int(port)))
        return tuple(sorted(out, key=lambda c: (c.name, str(c.protocol), c.port)))
    ports: list[ContainerPort] = []
    for item in value:
        if isinstance(item, ContainerPort):
            ports.append(item)
        elif isinstance(item, Mapping):  # a Kubernetes container port: name, containerPort, protocol
            number = item.get("containerPort", item.get("port"))
            ports.append(
                ContainerPort(
                    str(item["name"]), normalize_protocol(item.get("protocol") or "TCP") or 6, int(number)
                )
            )
        else:
            name, proto, number = item
            ports.append(ContainerPort(str(name), normalize_protocol(proto) or 6, int(number)))
    return tuple(sorted(ports, key=lambda c: (c.name, str(c.protocol), c.port)))


_KIND_ALIASES = {
    "wep": "wep",
    "pod": "wep",
    "workload": "wep",
    "workloadendpoint": "wep",
    "hep": "hep",
    "host": "hep",
    "hostendpoint": "hep",
    "ns": "ns",
    "networkset": "ns",
    "globalnetworkset": "ns",
    "net": "net",
    "external": "net",
}


@dataclass(frozen=True)
class Endpoint:
    """One side of a flow.

    ``kind`` is Calico's endpoint type: ``wep`` (pod), ``hep`` (host endpoint), ``ns`` (network
    set) or ``net`` (an address with no known endpoint). ``labels`` are the endpoint's own labels
    (Calico's implicit ``projectcalico.org/*`` labels are added by the evaluator).
    ``named_ports`` is None when unknown (no inventory), ``()`` when the endpoint has none; a
    mapping ``name -> (protocol, port)`` is accepted. ``namespace_labels`` and
    ``service_account_labels`` are None when unknown; the evaluator fills them from the inventory.
    ``labels_known`` is False when the flow record did not log labels.
    """

    kind: str
    namespace: str | None = None
    name: str | None = None
    labels: Mapping[str, str] = field(default_factory=FrozenLabels)
    ip: str | None = None
    service_account: str | None = None
    named_ports: tuple[ContainerPort, ...] | None = None
    namespace_labels: Mapping[str, str] | None = None
    service_account_labels: Mapping[str, str] | None = None
    labels_known: bool = True

    def __post_init__(self) -> None:
        kind = _KIND_ALIASES.get(str(self.kind).lower(), self.kind)
        if kind not in ("wep", "hep", "ns", "net"):
            raise ValueError(f"endpoint kind {self.kind!r}: use wep, hep, ns or net")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "labels", freeze_labels(self.labels))
        object.__setattr__(self, "named_ports", _freeze_ports(self.named_ports))
        if self.namespace_labels is not None:
            object.__setattr__(self, "namespace_labels", freeze_labels(self.namespace_labels))
        if self.service_account_labels is not None:
            object.__setattr__(self, "service_account_labels", freeze_labels(self.service_account_labels))
        if self.namespace in ("", "-"):
            object.__setattr__(self, "namespace", None)
        if self.ip in ("", "-"):
            object.__setattr__(self, "ip", None)

    def __hash__(self) -> int:
        # Endpoints are memo keys for every flow replayed: hash the fields once.
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(
                (
                    self.kind,
                    self.namespace,
                    self.name,
                    self.labels,
                    self.ip,
                    self.service_account,
                    self.named_ports,
                    self.namespace_labels,
                    self.service_account_labels,
                    self.labels_known,
                )
            )
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        # String hashes differ between processes: never carry the cached one across a pickle.
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def is_policy_endpoint(self) -> bool:
        """Pods and host endpoints have policy; network sets and plain addresses do not."""
        return self.kind in ("wep", "hep")

    @property
    def display(self) -> str:
        if self.kind == "net":
            if self.ip:
                return self.ip
            if self.name in ("pvt", "pub"):
                return f"a {'private' if self.name == 'pvt' else 'public'} address (masked)"
            return "an address outside the cluster"
        ns = f"{self.namespace}/" if self.namespace else ""
        name = self.name or self.ip or "?"
        return f"{ns}{name}"


@dataclass(frozen=True)
class FlowKey:
    """What decides a flow's verdict: reporter side, both endpoints, protocol and port."""

    reporter: str  # src | dst
    source: Endpoint
    dest: Endpoint
    proto: str | int | None
    dest_port: int | None


def profile_hit(index: int, profile: str, action: str = "allow") -> PolicyHit:
    return PolicyHit(index, PROFILE_TIER, "Profile", None, profile, action, 0)
