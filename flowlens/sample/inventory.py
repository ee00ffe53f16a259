"""The model's inventory as Kubernetes prints it: ``kubectl get namespaces,pods,serviceaccounts -A -o yaml``.

A ``v1`` ``List`` with the details the API server and the controllers add (the namespace name
label, the ``default`` service account of every namespace, ``generateName``, owner references,
``pod-template-hash``, the service-account token volume, default tolerations, pod and host IPs),
so that the same file format works for a real cluster. Deterministic: names, UIDs and times are
derived from the model, never from the clock.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import yaml

from flowlens.sample.model import ClusterModel, Pod, Workload

_CREATED = "2026-09-01T08:00:00Z"
_POD_CREATED = "2026-11-02T09:30:00Z"
_IMAGES = {
    "coredns": "registry.k8s.io/coredns/coredns:v1.11.3",
    "ingress-nginx-controller": "registry.k8s.io/ingress-nginx/controller:v1.11.2",
    "postgres": "docker.io/library/postgres:15.4",
    "prometheus-k8s": "quay.io/prometheus/prometheus:v2.54.1",
    "grafana": "docker.io/grafana/grafana:11.2.0",
    "load-generator": "docker.io/grafana/k6:0.53.0",
    "debug-shell": "docker.io/library/busybox:1.36",
}


def _uid(*parts: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16], version=4))


def _rv(*parts: str) -> str:
    return str(100000 + int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:3], "big"))


def _image(w: Workload) -> str:
    if w.name in _IMAGES:
        return _IMAGES[w.name]
    version = w.labels.get("version", "latest")
    return f"registry.example.com/{w.namespace}/{w.name}:{version}"


def _namespace(model: ClusterModel, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "creationTimestamp": _CREATED,
            "labels": model.namespace_labels(name),
            "name": name,
            "resourceVersion": _rv("ns", name),
            "uid": _uid("ns", name),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _service_account(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "creationTimestamp": _CREATED,
            "name": name,
            "namespace": ns,
            "resourceVersion": _rv("sa", ns, name),
            "uid": _uid("sa", ns, name),
        },
    }


def _pod(model: ClusterModel, w: Workload, pod: Pod) -> dict[str, Any]:
    node = model.node(pod.node)
    token = "kube-api-access-" + hashlib.sha256(pod.name.encode()).hexdigest()[:5]
    container: dict[str, Any] = {
        "image": _image(w),
        "imagePullPolicy": "IfNotPresent",
        "name": w.name if w.kind != "Pod" else pod.name,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": token, "readOnly": True}
        ],
    }
    if pod.ports:
        container["ports"] = [
            {"containerPort": p.port, "name": p.name, "protocol": p.protocol} for p in pod.ports if p.name
        ]
    metadata: dict[str, Any] = {
        "creationTimestamp": _POD_CREATED,
        "labels": dict(pod.labels),
        "name": pod.name,
        "namespace": pod.namespace,
        "resourceVersion": _rv("pod", pod.namespace, pod.name),
        "uid": _uid("pod", pod.namespace, pod.name),
    }
    if pod.generate_name:
        metadata["generateName"] = pod.generate_name
    if pod.owner:
        kind = "ReplicaSet" if w.kind == "Deployment" else "StatefulSet"
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "blockOwnerDeletion": True,
                "controller": True,
                "kind": kind,
                "name": pod.owner,
                "uid": _uid(kind, pod.namespace, pod.owner),
            }
        ]
    spec: dict[str, Any] = {
        "containers": [container],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": pod.node,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": pod.service_account,
        "serviceAccountName": pod.service_account,
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "tolerationSeconds": 300,
            },
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "tolerationSeconds": 300,
            },
        ],
        "volumes": [
            {
                "name": token,
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                "name": "kube-root-ca.crt",
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        "path": "namespace",
                                    }
                                ]
                            }
                        },
                    ],
                },
            }
        ],
    }
    if w.kind == "StatefulSet":
        spec["hostname"] = pod.name
        spec["subdomain"] = w.name
    started = "2026-11-02T09:30:05Z"
    status = {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": started, "status": "True", "type": t}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "containerStatuses": [
            {
                "containerID": "containerd://" + hashlib.sha256(("c" + pod.name).encode()).hexdigest(),
                "image": _image(w),
                "imageID": _image(w).rsplit(":", 1)[0]
                + "@sha256:"
                + hashlib.sha256(_image(w).encode()).hexdigest(),
                "lastState": {},
                "name": container["name"],
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": started}},
            }
        ],
        "hostIP": node.ip,
        "hostIPs": [{"ip": node.ip}],
        "phase": "Running",
        "podIP": pod.ip,
        "podIPs": [{"ip": pod.ip}],
        "qosClass": "BestEffort",
        "startTime": _POD_CREATED,
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def inventory_objects(model: ClusterModel) -> dict[str, Any]:
    """The ``v1`` ``List`` as a Python object."""
    items: list[dict[str, Any]] = [_namespace(model, ns) for ns in sorted(model.namespaces)]
    pods = sorted(((p.namespace, p.name), w, p) for w in model.workloads for p in w.pods)
    items += [_pod(model, w, p) for _, w, p in pods]
    sas = {(ns, "default") for ns in model.namespaces} | {
        (w.namespace, w.service_account) for w in model.workloads
    }
    items += [_service_account(ns, name) for ns, name in sorted(sas)]
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


class _KubectlDumper(yaml.SafeDumper):
    """Quotes like kubectl (go-yaml): double quotes where a string needs quoting."""

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def render_inventory(model: ClusterModel) -> str:
    """The inventory as YAML, the way ``kubectl ... -o yaml`` prints it (sorted keys)."""
    return yaml.dump(
        inventory_objects(model), Dumper=_KubectlDumper, sort_keys=True, default_flow_style=False, width=1000
    )
