"""The cluster inventory: namespaces, pods and service accounts, as policy evaluation needs them.

Owns :func:`load_inventory`, which reads the output of
``kubectl get namespaces,pods,serviceaccounts -A -o yaml`` (a ``v1`` ``List``; several files, YAML
or JSON), and :class:`Inventory`, which answers: the labels of a namespace (with the immutable
``kubernetes.io/metadata.name``), the labels of a service account, and the pods (labels, IPs,
service account, node, named container ports) by name, by IP, by aggregated name
(``frontend-7d4f8c9b5-*``) or by ``app`` label. :meth:`Inventory.endpoint` turns a pod into the
:class:`~flowlens.policy.model.Endpoint` the evaluator takes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlens.errors import PolicyError
from flowlens.policy.manifests import manifest_files, read_documents
from flowlens.policy.manifests.documents import bounded
from flowlens.policy.model import ContainerPort, Endpoint, FrozenLabels, freeze_labels, normalize_protocol

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
APP_LABELS = ("app", "app.kubernetes.io/name", "k8s-app", "name")


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: FrozenLabels


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str
    labels: FrozenLabels


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: FrozenLabels
    ips: tuple[str, ...]
    service_account: str
    node: str | None
    named_ports: tuple[ContainerPort, ...]
    generate_name: str | None = None
    host_network: bool = False
    phase: str | None = None
    #: every (protocol, port) a container declares, named or not (``suggest`` holds back probes of
    #: ports nothing declares); sidecars started as init containers (restartPolicy Always) included
    declared_ports: tuple[tuple[int | str, int], ...] = ()

    @property
    def name_aggr(self) -> str:
        """Calico's aggregated name: ``generateName`` + ``*``, or the pod name."""
        return f"{self.generate_name}*" if self.generate_name else self.name


@dataclass(frozen=True)
class Inventory:
    """Namespaces, service accounts and pods of one cluster, sorted by name."""

    namespaces: tuple[Namespace, ...] = ()
    service_accounts: tuple[ServiceAccount, ...] = ()
    pods: tuple[Pod, ...] = ()
    notes: tuple[str, ...] = ()
    _ns: dict[str, Namespace] = field(init=False, repr=False, compare=False)
    _sa: dict[tuple[str, str], ServiceAccount] = field(init=False, repr=False, compare=False)
    _pods: dict[tuple[str, str], Pod] = field(init=False, repr=False, compare=False)
    _by_ip: dict[str, Pod] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ns", {n.name: n for n in self.namespaces})
        object.__setattr__(self, "_sa", {(s.namespace, s.name): s for s in self.service_accounts})
        object.__setattr__(self, "_pods", {(p.namespace, p.name): p for p in self.pods})
        by_ip: dict[str, Pod] = {}
        for pod in self.pods:
            if pod.host_network or pod.phase in ("Succeeded", "Failed"):
                continue  # host-network pods are not Calico workloads; finished pods free their IP
            for ip in pod.ips:
                by_ip.setdefault(ip, pod)
        object.__setattr__(self, "_by_ip", by_ip)

    def namespace_labels(self, namespace: str) -> FrozenLabels | None:
        """The namespace's labels (with ``kubernetes.io/metadata.name``), or None when unknown."""
        ns = self._ns.get(namespace)
        return None if ns is None else ns.labels

    def service_account_labels(self, namespace: str, name: str) -> FrozenLabels | None:
        sa = self._sa.get((namespace, name))
        return None if sa is None else sa.labels

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self._ns

    def pod(self, namespace: str, name: str) -> Pod | None:
        return self._pods.get((namespace, name))

    def pod_by_ip(self, ip: str) -> Pod | None:
        return self._by_ip.get(ip)

    def find_pods(self, namespace: str | None, workload: str) -> list[Pod]:
        """Pods for a workload name, trying in turn: the pod name, the aggregated name
        (``frontend-7d4f8c9b5-*``, the ``*`` optional), an app label (``app``,
        ``app.kubernetes.io/name``, ``k8s-app``, ``name``), then a name prefix (``frontend``)."""
        pods = [p for p in self.pods if namespace is None or p.namespace == namespace]
        prefix = workload.rstrip("*")
        tests = (
            lambda p: p.name == workload,
            lambda p: p.name_aggr in (workload, prefix + "*"),
            lambda p: any(p.labels.get(k) == workload for k in APP_LABELS),
            lambda p: bool(prefix) and p.name.startswith(prefix + ("" if prefix.endswith("-") else "-")),
            lambda p: bool(prefix) and p.name.startswith(prefix),
        )
        for test in tests:
            found = [p for p in pods if test(p)]
            if found:
                return found
        return []

    def logged_pods(self, namespace: str, name: str) -> list[Pod]:
        """The pods a flow log's endpoint name stands for: :meth:`find_pods`, kept to the pods of
        that aggregated name unless the name is one (``frontend-7d4f8c9b5-*``)."""
        return [p for p in self.find_pods(namespace, name) if p.name_aggr == name or name.endswith("*")]

    def endpoint(self, pod: Pod) -> Endpoint:
        """The endpoint for a pod, with everything the inventory knows about it."""
        return Endpoint(
            kind="wep",
            namespace=pod.namespace,
            name=pod.name,
            labels=pod.labels,
            ip=pod.ips[0] if pod.ips else None,
            service_account=pod.service_account,
            named_ports=pod.named_ports,
            namespace_labels=self.namespace_labels(pod.namespace),
            service_account_labels=self.service_account_labels(pod.namespace, pod.service_account),
        )


def load_inventory(paths: Iterable[str | Path] | str | Path) -> Inventory:
    """Read ``kubectl get namespaces,pods,serviceaccounts -A -o yaml`` output (one or more files).

    Other kinds in the lists are ignored; a later object with the same name replaces an earlier
    one. Raises :class:`PolicyError` with file, document and item for malformed objects.
    """
    namespaces: dict[str, Namespace] = {}
    sas: dict[tuple[str, str], ServiceAccount] = {}
    pods: dict[tuple[str, str], Pod] = {}
    notes: list[str] = []
    for path in manifest_files(paths):
        for index, doc in enumerate(read_documents(path), start=1):
            if doc is None:
                continue
            for where, obj in _objects(doc, f"{path}: document {index}"):
                try:
                    _add(obj, namespaces, sas, pods)
                except _Bad as exc:
                    raise PolicyError(f"{where}: {bounded(str(exc))}") from None
    # Pods may come without their namespace object (e.g. `kubectl get pods` only): the namespace
    # still carries its immutable name label, but other labels are unknown.
    for pod in pods.values():
        if pod.namespace not in namespaces:
            notes.append(
                f"namespace {pod.namespace} of pod {pod.name} is not in the inventory; its labels are unknown"
            )
    return Inventory(
        namespaces=tuple(sorted(namespaces.values(), key=lambda n: n.name)),
        service_accounts=tuple(sorted(sas.values(), key=lambda s: (s.namespace, s.name))),
        pods=tuple(sorted(pods.values(), key=lambda p: (p.namespace, p.name))),
        notes=tuple(sorted(set(notes))),
    )


class _Bad(Exception):
    pass


def _objects(doc: Any, where: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{where}: expected a Kubernetes object or List")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise PolicyError(f"{where}: items: expected a list")
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise PolicyError(f"{where}: items[{i}]: expected an object")
            yield f"{where}: items[{i}]", item
    else:
        yield where, doc


def _meta(obj: Mapping[str, Any]) -> tuple[str, str | None, dict[str, str]]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise _Bad("metadata: expected a mapping")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise _Bad("metadata.name: required")
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise _Bad("metadata.namespace: expected a string")
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise _Bad("metadata.labels: expected a mapping")
    return name, namespace, {str(k): "" if v is None else str(v) for k, v in labels.items()}


def _add(
    obj: Mapping[str, Any],
    namespaces: dict[str, Namespace],
    sas: dict[tuple[str, str], ServiceAccount],
    pods: dict[tuple[str, str], Pod],
) -> None:
    kind = obj.get("kind")
    if kind == "Namespace":
        name, _, labels = _meta(obj)
        labels.setdefault(NAMESPACE_NAME_LABEL, name)  # rulebook K15: always present since Kubernetes 1.21
        namespaces[name] = Namespace(name, freeze_labels(labels))
    elif kind == "ServiceAccount":
        name, ns, labels = _meta(obj)
        sas[(ns or "default", name)] = ServiceAccount(ns or "default", name, freeze_labels(labels))
    elif kind == "Pod":
        pod = _pod(obj)
        pods[(pod.namespace, pod.name)] = pod


def _ip(text: str, path: str) -> str:
    """``text`` if it is an IPv4 or IPv6 address (as Kubernetes writes it), else _Bad at ``path``."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise _Bad(f"{path}: not an IP address: {text[:60]!r}") from None
    return text


def _pod(obj: Mapping[str, Any]) -> Pod:
    name, ns, labels = _meta(obj)
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not isinstance(spec, Mapping) or not isinstance(status, Mapping):
        raise _Bad("spec and status must be mappings")
    ips: list[str] = []
    for i, entry in enumerate(status.get("podIPs") or []):
        ip = entry.get("ip") if isinstance(entry, Mapping) else None
        if isinstance(ip, str) and ip and _ip(ip, f"status.podIPs[{i}].ip") not in ips:
            ips.append(_ip(ip, f"status.podIPs[{i}].ip"))
    pod_ip = status.get("podIP")
    if isinstance(pod_ip, str) and pod_ip and _ip(pod_ip, "status.podIP") not in ips:
        ips.insert(0, _ip(pod_ip, "status.podIP"))
    ports: list[ContainerPort] = []
    declared: set[tuple[int | str, int]] = set()
    for field_name in ("containers", "initContainers"):
        for ci, container in enumerate(spec.get(field_name) or []):
            if not isinstance(container, Mapping):
                raise _Bad(f"spec.{field_name}[{ci}]: expected a mapping")
            if field_name == "initContainers" and container.get("restartPolicy") != "Always":
                continue  # an init container that runs to completion listens on nothing afterwards
            for pi, port in enumerate(container.get("ports") or []):
                if not isinstance(port, Mapping):
                    raise _Bad(f"spec.{field_name}[{ci}].ports[{pi}]: expected a mapping")
                pname = port.get("name")
                number = port.get("containerPort")
                if not isinstance(number, int) or isinstance(number, bool):
                    if not pname:
                        continue  # an unnamed port no rule can refer to: nothing to check it for
                    raise _Bad(f"spec.{field_name}[{ci}].ports[{pi}].containerPort: expected a number")
                if not 1 <= number <= 65535:
                    raise _Bad(
                        f"spec.{field_name}[{ci}].ports[{pi}].containerPort: out of range: {number} "
                        "(expected 1..65535)"
                    )
                proto = normalize_protocol(port.get("protocol") or "TCP")
                declared.add((proto if proto is not None else 6, number))
                if pname and field_name == "containers":  # the named ports policies resolve
                    ports.append(ContainerPort(str(pname), proto if proto is not None else 6, number))
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    return Pod(
        namespace=ns or "default",
        name=name,
        labels=freeze_labels(labels),
        ips=tuple(ips),
        service_account=str(sa),
        node=spec.get("nodeName"),
        named_ports=tuple(sorted(ports, key=lambda c: (c.name, str(c.protocol), c.port))),
        generate_name=meta.get("generateName") or None,
        host_network=bool(spec.get("hostNetwork")),
        phase=status.get("phase"),
        declared_ports=tuple(sorted(declared, key=lambda d: (str(d[0]), d[1]))),
    )
