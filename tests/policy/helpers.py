"""Small builders for policy tests: manifests from YAML text, pods and namespaces, connections."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from flowlens.policy import Connection, Endpoint, Evaluator, Inventory, policies_from_objects
from flowlens.policy.inventory import Namespace, Pod, ServiceAccount
from flowlens.policy.model import ContainerPort, PolicySet, freeze_labels, normalize_protocol

#: A Kubernetes NetworkPolicy with a numeric, a named and a ranged UDP port.
K8S_WEB = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - ports: [{port: 80}, {port: http}, {protocol: UDP, port: 5000, endPort: 5010}]
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def policies(text: str) -> PolicySet:
    return policies_from_objects([d for d in yaml.safe_load_all(text) if d is not None])


def pod(
    ns: str,
    name: str,
    labels: Mapping[str, str] | None = None,
    ip: str = "10.0.0.1",
    *,
    sa: str = "default",
    ports: Mapping[str, tuple[str, int]] | None = None,
) -> Pod:
    named = tuple(
        ContainerPort(n, normalize_protocol(proto) or 6, port) for n, (proto, port) in (ports or {}).items()
    )
    return Pod(ns, name, freeze_labels(labels or {}), (ip,), sa, "node-1", named)


def cluster(
    pods: list[Pod],
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    service_accounts: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
) -> Inventory:
    ns_labels = dict(namespaces or {})
    for p in pods:
        ns_labels.setdefault(p.namespace, {})
    nss = tuple(
        Namespace(n, freeze_labels({**labels, "kubernetes.io/metadata.name": n}))
        for n, labels in ns_labels.items()
    )
    sas = tuple(
        ServiceAccount(ns, n, freeze_labels(labels)) for (ns, n), labels in (service_accounts or {}).items()
    )
    return Inventory(nss, sas, tuple(pods))


class World:
    """A policy set plus a cluster: ``w.allowed('a/x', 'b/y', 80)``."""

    def __init__(self, policy_text: str, inventory: Inventory) -> None:
        self.policy_set = policies(policy_text)
        self.inventory = inventory
        self.ev = Evaluator(self.policy_set, inventory)

    def ep(self, ref: str) -> Endpoint:
        return self.ev.endpoint(ref)

    def connection(self, src: str, dst: str, port: int = 80, proto: str = "tcp") -> Connection:
        return self.ev.connection(self.ep(src), self.ep(dst), proto, port)

    def allowed(self, src: str, dst: str, port: int = 80, proto: str = "tcp") -> bool:
        return self.connection(src, dst, port, proto).action == "allow"

    def ingress_trace(self, src: str, dst: str, port: int = 80, proto: str = "tcp") -> list[str]:
        return [h.hit for h in self.connection(src, dst, port, proto).ingress.enforced]

    def egress_trace(self, src: str, dst: str, port: int = 80, proto: str = "tcp") -> list[str]:
        return [h.hit for h in self.connection(src, dst, port, proto).egress.enforced]
