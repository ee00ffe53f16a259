"""The cluster model: loading, pods as Kubernetes names them, and helpful errors."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from flowlens.errors import InputError
from flowlens.sample import DEFAULT_MODEL, load_model, parse_model
from flowlens.sample.model import ClusterModel

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_model_has_the_namespaces_workloads_and_connections_of_the_story(
    model: ClusterModel,
) -> None:
    assert {"production", "staging", "payments", "monitoring", "ingress-nginx", "kube-system"} <= set(
        model.namespaces
    )
    refs = {w.ref for w in model.workloads}
    assert {"production/frontend", "production/backend", "production/postgres", "kube-system/coredns"} <= refs
    ids = {c.id for c in model.connections}
    for needed in (
        "frontend-to-backend",
        "backend-to-postgres",
        "dns-production",
        "dns-tcp-production",
        "scrape-prod-backend",
        "internet-https",
        "backend-to-partner-api",
        "backend-to-ldap",
        "bastion-ssh",
        "apiserver-to-kubelet",
        "internet-scans",
    ):
        assert needed in ids
    assert len(model.nodes) == 3 and all(n.ip.startswith("10.0.1.") for n in model.nodes)


def test_deployment_pods_carry_realistic_labels_and_generated_names(model: ClusterModel) -> None:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    frontend = model.workload("production/frontend")
    assert frontend.replicas == 3
    for pod in frontend.pods:
        assert pod.generate_name == "frontend-7d4f8c9b5d-"
        assert re.fullmatch(rf"frontend-7d4f8c9b5d-[{alphabet}]{{5}}", pod.name)
        assert pod.aggregated_name == "frontend-7d4f8c9b5d-*"
        for key in ("app", "app.kubernetes.io/name", "tier", "version", "pod-template-hash"):
            assert key in pod.labels
        assert pod.service_account == "frontend"
    postgres = model.workload("production/postgres").pods[0]
    assert postgres.name == "postgres-0" and postgres.aggregated_name == "postgres-*"
    assert postgres.labels["statefulset.kubernetes.io/pod-name"] == "postgres-0"
    debug = model.workload("staging/debug-shell").pods[0]
    assert debug.generate_name is None and debug.aggregated_name == "debug-shell"


def test_pod_ips_are_unique_and_inside_their_nodes_pod_cidr(model: ClusterModel) -> None:
    ips = [p.ip for p in model.pods]
    assert len(ips) == len(set(ips))
    for pod in model.pods:
        node = model.node(pod.node)
        assert ipaddress.ip_address(pod.ip) in ipaddress.ip_network(node.pod_cidr)


def test_services_have_named_ports(model: ClusterModel) -> None:
    dns = model.service("kube-system/kube-dns")
    assert {(p.name, p.port, p.protocol) for p in dns.ports} >= {("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")}
    port = model.service("production/frontend").port_for(8080, "tcp")
    assert port is not None and port.name == "http"


def test_sample_logs_links_to_the_shipped_model_and_policies() -> None:
    assert (REPO / "sample_logs" / "cluster.yaml").resolve() == DEFAULT_MODEL.resolve()
    assert (REPO / "sample_logs" / "policies").resolve() == DEFAULT_MODEL.parent.joinpath(
        "policies"
    ).resolve()


def test_an_unknown_workload_reference_names_the_connection_and_the_fix() -> None:
    doc = yaml.safe_load(DEFAULT_MODEL.read_text())
    doc["connections"][0]["to"] = "production/nope"
    with pytest.raises(InputError, match=r"unknown workload 'production/nope'"):
        parse_model(doc)


def test_a_scan_from_inside_the_cluster_is_rejected() -> None:
    doc = yaml.safe_load(DEFAULT_MODEL.read_text())
    scan = next(c for c in doc["connections"] if c.get("scan"))
    scan["from"] = "staging/debug-shell"
    with pytest.raises(InputError, match=r"'internet-scans': a scan comes from outside the cluster"):
        parse_model(doc)


def test_a_model_without_nodes_is_rejected() -> None:
    with pytest.raises(InputError, match="no nodes"):
        parse_model({"namespaces": {}, "workloads": []})


def test_a_missing_model_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the cluster model"):
        load_model(tmp_path / "missing.yaml")


def test_a_users_model_resolves_its_policies_folder_relative_to_itself(tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_MODEL.read_text())
    doc["policies"] = "my-policies"
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_model(path).policies_dir == (tmp_path / "my-policies").resolve()
