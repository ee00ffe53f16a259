"""The sample cluster model: a YAML description of nodes, namespaces, workloads, Services,
external addresses and the connections between them, loaded into frozen dataclasses.

Pods are expanded here (names, IPs, nodes, labels) so that the inventory, the traffic and the
flow records all see exactly the same pods.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flowlens.errors import InputError

#: The model shipped with flowlens (``sample_logs/cluster.yaml`` is a link to it).
DEFAULT_MODEL = Path(__file__).with_name("cluster.yaml")

# The alphabet Kubernetes uses for generated name suffixes (no vowels, no 0/1/3).
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

SCHEDULES = ("daily", "office", "flat", "nightly", "rare")


@dataclass(frozen=True)
class Node:
    name: str
    ip: str
    pod_cidr: str
    labels: Mapping[str, str]
    host_endpoint: str

    @property
    def hep_labels(self) -> dict[str, str]:
        """Labels of the node's HostEndpoint (see policies/05-host-endpoints.yaml)."""
        return {"kubernetes-host": "", "kubernetes.io/hostname": self.name, **self.labels}


@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str  # TCP | UDP | SCTP


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    generate_name: str | None
    workload: str
    kind: str  # Deployment | StatefulSet | Pod
    owner: str | None  # ReplicaSet or StatefulSet name
    node: str
    ip: str
    labels: Mapping[str, str]
    service_account: str
    ports: tuple[ContainerPort, ...]

    @property
    def aggregated_name(self) -> str:
        """Calico's ``*_name_aggr``: the generateName plus ``*``, or the pod name."""
        return f"{self.generate_name}*" if self.generate_name else self.name


@dataclass(frozen=True)
class Workload:
    namespace: str
    name: str
    kind: str
    replicas: int
    hash: str
    service_account: str
    labels: Mapping[str, str]
    ports: tuple[ContainerPort, ...]
    pods: tuple[Pod, ...]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    protocol: str


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    type: str
    cluster_ip: str
    selector: Mapping[str, str]
    ports: tuple[ServicePort, ...]

    def port_for(self, target_port: int, proto: str) -> ServicePort | None:
        for p in self.ports:
            if p.target_port == target_port and p.protocol.lower() == proto:
                return p
        return None


@dataclass(frozen=True)
class External:
    name: str
    networks: tuple[str, ...]
    domains: tuple[str, ...]
    addresses: tuple[str, ...]  # every address the generator may use (bounded)


@dataclass(frozen=True)
class Trace:
    """A declared policy trace (modern hit strings)."""

    enforced: tuple[str, ...]
    pending: tuple[str, ...]


@dataclass(frozen=True)
class Connection:
    id: str
    source: str
    dest: str
    service: str | None
    ports: tuple[int, ...]
    proto: str
    rate: float
    persistent: int
    scan: float
    bytes_out: int
    bytes_in: int
    schedule: str
    expect: Mapping[str, Trace]  # reporter -> trace
    exclude: tuple[str, ...] = ()  # endpoint references left out of the source


@dataclass(frozen=True)
class ClusterModel:
    cluster: str
    path: Path | None
    policies_dir: Path | None
    pod_cidr: str
    service_cidr: str
    nodes: tuple[Node, ...]
    namespaces: Mapping[str, Mapping[str, str]]
    workloads: tuple[Workload, ...]
    services: tuple[Service, ...]
    externals: Mapping[str, External]
    connections: tuple[Connection, ...]
    _by_ref: Mapping[str, Workload] = field(default_factory=dict, repr=False, compare=False)

    def workload(self, ref: str) -> Workload:
        try:
            return self._by_ref[ref]
        except KeyError:
            raise InputError(
                f"unknown workload {ref!r}: use <namespace>/<workload> from 'workloads'"
            ) from None

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InputError(f"unknown node {name!r}: add it to 'nodes'")

    def service(self, ref: str) -> Service:
        ns, _, name = ref.partition("/")
        for s in self.services:
            if s.namespace == ns and s.name == name:
                return s
        raise InputError(f"unknown service {ref!r}: add it to 'services'")

    @property
    def pods(self) -> tuple[Pod, ...]:
        return tuple(p for w in self.workloads for p in w.pods)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """Namespace labels as the API server stores them (with kubernetes.io/metadata.name)."""
        return {"kubernetes.io/metadata.name": namespace, **self.namespaces[namespace]}


def _suffix(seed: str, length: int = 5) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_K8S_ALPHABET[b % len(_K8S_ALPHABET)] for b in digest[:length])


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what} must be a mapping of strings, not {type(value).__name__}")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _need(doc: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in doc:
        raise InputError(f"{what} lacks '{key}': add it to the cluster model")
    return doc[key]


def _ports(items: Any, what: str) -> tuple[ContainerPort, ...]:
    out = []
    for p in items or ():
        out.append(
            ContainerPort(
                name=str(p.get("name", "")),
                port=int(_need(p, "containerPort", what)),
                protocol=str(p.get("protocol", "TCP")).upper(),
            )
        )
    return tuple(out)


def _expand_addresses(networks: tuple[str, ...], what: str) -> tuple[str, ...]:
    out: list[str] = []
    for net in networks:
        try:
            network = ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise InputError(f"{what}: {exc}") from None
        if network.num_addresses == 1:
            out.append(str(network.network_address))
        else:
            # hosts only, and at most 4096 per network: enough variety, bounded memory
            for i, host in enumerate(network.hosts()):
                if i >= 4096:
                    break
                out.append(str(host))
    return tuple(out)


def _trace(doc: Any, what: str) -> Trace:
    if not isinstance(doc, Mapping) or "enforced" not in doc:
        raise InputError(f"{what} must have an 'enforced' list of policy hits")
    enforced = tuple(str(h) for h in doc["enforced"])
    pending = tuple(str(h) for h in doc.get("pending", enforced))
    return Trace(enforced, pending)


def _workloads(doc: Mapping[str, Any], nodes: tuple[Node, ...]) -> tuple[Workload, ...]:
    worker_names = [n.name for n in nodes if "node-role.kubernetes.io/control-plane" not in n.labels]
    node_by_name = {n.name: n for n in nodes}
    next_host: dict[str, int] = {n.name: 10 for n in nodes}
    out = []
    for index, w in enumerate(doc.get("workloads") or ()):
        what = f"workload #{index + 1}"
        ns = str(_need(w, "namespace", what))
        name = str(_need(w, "name", what))
        what = f"workload {ns}/{name}"
        kind = str(w.get("kind", "Deployment"))
        if kind not in ("Deployment", "StatefulSet", "Pod"):
            raise InputError(f"{what}: kind must be Deployment, StatefulSet or Pod, not {kind!r}")
        replicas = 1 if kind == "Pod" else int(w.get("replicas", 1))
        hash_ = str(w.get("hash", ""))
        if kind != "Pod" and not hash_:
            raise InputError(f"{what} lacks 'hash' (pod-template-hash or controller-revision-hash)")
        sa = str(w.get("serviceAccount", "default"))
        labels = _str_map(w.get("labels"), f"{what} labels")
        ports = _ports(w.get("ports"), what)
        explicit = w.get("nodes")
        placement = [str(n) for n in (explicit or worker_names)]
        for n in placement:
            if n not in node_by_name:
                raise InputError(f"{what} is placed on unknown node {n!r}")
        extra = {int(k): _str_map(v, f"{what} pod_labels") for k, v in (w.get("pod_labels") or {}).items()}
        pods = []
        for i in range(replicas):
            # explicit placement: replica i on nodes[i]; otherwise spread over the workers
            node = node_by_name[placement[(i if explicit else index + i) % len(placement)]]
            net = ipaddress.ip_network(node.pod_cidr)
            ip = str(net.network_address + next_host[node.name])
            next_host[node.name] += 1
            pod_labels = dict(labels)
            if kind == "Deployment":
                owner = f"{name}-{hash_}"
                generate = f"{owner}-"
                pod_name = generate + _suffix(f"{ns}/{name}/{i}")
                pod_labels["pod-template-hash"] = hash_
            elif kind == "StatefulSet":
                owner = name
                generate = f"{name}-"
                pod_name = f"{name}-{i}"
                pod_labels["apps.kubernetes.io/pod-index"] = str(i)
                pod_labels["controller-revision-hash"] = hash_
                pod_labels["statefulset.kubernetes.io/pod-name"] = pod_name
            else:
                owner = None
                generate = None
                pod_name = name
            pod_labels.update(extra.get(i, {}))
            pods.append(Pod(ns, pod_name, generate, name, kind, owner, node.name, ip, pod_labels, sa, ports))
        out.append(Workload(ns, name, kind, replicas, hash_, sa, labels, ports, tuple(pods)))
    return tuple(out)


def _connections(doc: Mapping[str, Any]) -> tuple[Connection, ...]:
    out = []
    seen: set[str] = set()
    for index, c in enumerate(doc.get("connections") or ()):
        what = f"connection #{index + 1}"
        cid = str(_need(c, "id", what))
        what = f"connection {cid!r}"
        if cid in seen:
            raise InputError(f"{what} is defined twice: connection ids must be unique")
        seen.add(cid)
        ports = tuple(int(p) for p in c["ports"]) if "ports" in c else (int(_need(c, "port", what)),)
        schedule = str(c.get("schedule", "daily"))
        if schedule not in SCHEDULES:
            raise InputError(f"{what}: schedule must be one of {', '.join(SCHEDULES)}")
        b = c.get("bytes", [1000, 1000])
        expect = {str(r): _trace(t, f"{what} expect.{r}") for r, t in (c.get("expect") or {}).items()}
        for r in expect:
            if r not in ("src", "dst"):
                raise InputError(f"{what}: expect keys are 'src' and 'dst', not {r!r}")
        out.append(
            Connection(
                id=cid,
                source=str(_need(c, "from", what)),
                dest=str(_need(c, "to", what)),
                service=str(c["service"]) if c.get("service") else None,
                ports=ports,
                proto=str(c.get("proto", "tcp")).lower(),
                rate=float(c.get("rate", 0)),
                persistent=int(c.get("persistent", 0)),
                scan=float(c.get("scan", 0)),
                bytes_out=int(b[0]),
                bytes_in=int(b[1]),
                schedule=schedule,
                expect=expect,
                exclude=tuple(str(x) for x in c.get("exclude") or ()),
            )
        )
    return tuple(out)


def parse_model(doc: Any, path: Path | None = None) -> ClusterModel:
    """Build the model from a parsed YAML document."""
    if not isinstance(doc, Mapping):
        raise InputError("the cluster model must be a YAML mapping (see sample_logs/cluster.yaml)")
    nodes = tuple(
        Node(
            name=str(_need(n, "name", "node")),
            ip=str(_need(n, "ip", "node")),
            pod_cidr=str(_need(n, "pod_cidr", "node")),
            labels=_str_map(n.get("labels"), "node labels"),
            host_endpoint=str(n.get("host_endpoint", f"{n['name']}-eth0")),
        )
        for n in doc.get("nodes") or ()
    )
    if not nodes:
        raise InputError("the cluster model has no nodes: add at least one under 'nodes'")
    namespaces = {
        str(k): _str_map(v, f"namespace {k} labels") for k, v in (doc.get("namespaces") or {}).items()
    }
    workloads = _workloads(doc, nodes)
    for w in workloads:
        if w.namespace not in namespaces:
            raise InputError(
                f"workload {w.ref} is in namespace {w.namespace!r}, which is not under 'namespaces'"
            )
    services = []
    for s in doc.get("services") or ():
        ports = tuple(
            ServicePort(
                name=str(p.get("name", "")),
                port=int(p["port"]),
                target_port=int(p.get("targetPort", p["port"])),
                protocol=str(p.get("protocol", "TCP")).upper(),
            )
            for p in s.get("ports") or ()
        )
        services.append(
            Service(
                namespace=str(s["namespace"]),
                name=str(s["name"]),
                type=str(s.get("type", "ClusterIP")),
                cluster_ip=str(s["clusterIP"]),
                selector=_str_map(s.get("selector"), "service selector"),
                ports=ports,
            )
        )
    externals = {}
    for name, e in (doc.get("externals") or {}).items():
        nets = tuple(str(x) for x in (e or {}).get("ips") or ())
        externals[str(name)] = External(
            name=str(name),
            networks=nets,
            domains=tuple(str(d) for d in (e or {}).get("domains") or ()),
            addresses=_expand_addresses(nets, f"external {name}"),
        )
    policies = doc.get("policies")
    policies_dir = None
    if policies and path is not None:
        policies_dir = (path.parent / str(policies)).resolve()
    network = doc.get("network") or {}
    model = ClusterModel(
        cluster=str(doc.get("cluster", "default")),
        path=path,
        policies_dir=policies_dir,
        pod_cidr=str(network.get("pod_cidr", "10.244.0.0/16")),
        service_cidr=str(network.get("service_cidr", "10.96.0.0/12")),
        nodes=nodes,
        namespaces=namespaces,
        workloads=workloads,
        services=tuple(services),
        externals=externals,
        connections=_connections(doc),
        _by_ref={w.ref: w for w in workloads},
    )
    _check_refs(model)
    return model


def _check_refs(model: ClusterModel) -> None:
    for c in model.connections:
        for ref in (c.source, c.dest, *c.exclude):
            resolve_ref(model, ref, c.id)
        if c.scan > 0 and not c.source.startswith("net:"):
            raise InputError(
                f"connection {c.id!r}: a scan comes from outside the cluster: 'from' must be net:<name>"
            )
        if c.service:
            model.service(c.service)


def resolve_ref(model: ClusterModel, ref: str, cid: str = "") -> tuple[str, tuple[Any, ...]]:
    """An endpoint reference -> (kind, members): ('wep', pods), ('hep', nodes) or ('net', (External,))."""
    if ref == "nodes":
        return "hep", model.nodes
    if ref.startswith("node:"):
        return "hep", (model.node(ref[5:]),)
    if ref.startswith("net:"):
        name = ref[4:]
        if name not in model.externals:
            raise InputError(f"connection {cid!r}: unknown external {name!r}: add it under 'externals'")
        return "net", (model.externals[name],)
    ns, sep, name = ref.partition("/")
    if not sep:
        raise InputError(
            f"connection {cid!r}: endpoint {ref!r} is not <namespace>/<workload>, node:<name>, nodes or net:<name>"
        )
    if name == "*":
        pods = tuple(p for w in model.workloads if w.namespace == ns for p in w.pods)
        if not pods:
            raise InputError(f"connection {cid!r}: namespace {ns!r} has no workloads")
        return "wep", pods
    return "wep", model.workload(ref).pods


def load_model(path: str | Path | None = None) -> ClusterModel:
    """Load a cluster model file (the shipped sample when ``path`` is None)."""
    p = Path(path) if path is not None else DEFAULT_MODEL
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the cluster model {p}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{p} is not valid YAML: {exc}") from None
    return parse_model(doc, p.resolve())
