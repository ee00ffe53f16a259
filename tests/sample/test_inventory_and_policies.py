"""The inventory (kubectl's v1 List) and the policies in force: valid, complete, and consistent
with the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlens.policy import load_inventory, load_policies
from flowlens.sample import inventory_objects, render_inventory
from flowlens.sample.model import ClusterModel

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "sample_logs" / "policies"


def _docs() -> list[dict[str, Any]]:
    return [d for f in sorted(POLICIES.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def test_the_inventory_is_a_v1_list_of_namespaces_then_pods_then_service_accounts(
    model: ClusterModel,
) -> None:
    inv = inventory_objects(model)
    assert (inv["apiVersion"], inv["kind"]) == ("v1", "List")
    kinds = [item["kind"] for item in inv["items"]]
    assert kinds == sorted(kinds, key=["Namespace", "Pod", "ServiceAccount"].index)
    namespaces = {i["metadata"]["name"]: i for i in inv["items"] if i["kind"] == "Namespace"}
    assert {"default", "kube-system", "kube-public", "kube-node-lease", "production"} <= set(namespaces)
    for name, ns in namespaces.items():
        assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == name
    accounts = {
        (i["metadata"]["namespace"], i["metadata"]["name"])
        for i in inv["items"]
        if i["kind"] == "ServiceAccount"
    }
    assert all((ns, "default") in accounts for ns in namespaces)
    assert ("payments", "payments-worker") in accounts


def test_inventory_pods_have_the_details_controllers_add(model: ClusterModel) -> None:
    pods = [i for i in inventory_objects(model)["items"] if i["kind"] == "Pod"]
    assert len(pods) == len(model.pods)
    frontend = next(p for p in pods if p["metadata"]["name"].startswith("frontend-7d4f8c9b5d-"))
    meta, spec, status = frontend["metadata"], frontend["spec"], frontend["status"]
    assert meta["generateName"] == "frontend-7d4f8c9b5d-"
    assert meta["labels"]["pod-template-hash"] == "7d4f8c9b5d"
    assert meta["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert meta["ownerReferences"][0]["name"] == "frontend-7d4f8c9b5d"
    assert spec["serviceAccountName"] == "frontend" and spec["nodeName"].startswith("worker-")
    assert {"containerPort": 8080, "name": "http", "protocol": "TCP"} in spec["containers"][0]["ports"]
    assert status["phase"] == "Running" and status["podIP"] == status["podIPs"][0]["ip"]


def test_every_inventory_object_is_valid_kubernetes(model: ClusterModel) -> None:
    from flowlens.suggest.validate import validate_object

    problems = [p for item in inventory_objects(model)["items"] for p in validate_object(item)]
    assert problems == []


def test_the_checked_in_inventory_is_what_the_model_renders(model: ClusterModel) -> None:
    assert (REPO / "sample_logs" / "inventory.yaml").read_text() == render_inventory(model)


def test_the_policy_engine_reads_the_inventory(model: ClusterModel) -> None:
    inv = load_inventory(REPO / "sample_logs" / "inventory.yaml")
    assert len(inv.pods) == len(model.pods)
    backend = model.workload("production/backend").pods[0]
    found = inv.pod_by_ip(backend.ip)
    assert found is not None and found.name == backend.name and found.service_account == "backend"
    labels = inv.namespace_labels("payments")
    assert labels is not None and labels["compliance"] == "pci"


def test_every_policy_manifest_is_valid_against_its_schema() -> None:
    from flowlens.suggest.validate import validate_object

    docs = _docs()
    for doc in docs:
        if doc["kind"] == "HostEndpoint":  # no vendored schema: check the fields Calico defines
            assert set(doc["spec"]) <= {"node", "interfaceName", "expectedIPs", "profiles", "ports"}
            continue
        assert validate_object(doc) == [], doc["metadata"]["name"]


def test_the_policies_hold_every_construct_the_story_needs() -> None:
    docs = _docs()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    assert {t["metadata"]["name"] for t in by_kind["Tier"]} == {"security", "platform"}
    assert any(g["metadata"]["name"] == "security.baseline" for g in by_kind["GlobalNetworkPolicy"])
    assert any(g["spec"].get("selector") == "has(kubernetes-host)" for g in by_kind["GlobalNetworkPolicy"])
    assert len(by_kind["HostEndpoint"]) == 3
    k8s = [d for d in by_kind["NetworkPolicy"] if d["apiVersion"] == "networking.k8s.io/v1"]
    calico = [d for d in by_kind["NetworkPolicy"] if d["apiVersion"] == "projectcalico.org/v3"]
    names = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in k8s}
    assert {
        ("payments", "default-deny"),
        ("payments", "allow-dns"),
        ("production", "allow-frontend-to-backend"),
    } <= names
    restrict = next(d for d in calico if d["metadata"]["name"] == "restrict-database")
    assert restrict["spec"]["order"] == 100 and restrict["spec"]["ingress"][0]["action"] == "Deny"
    assert any(
        "serviceAccounts" in rule.get("source", {}) for d in calico for rule in d["spec"].get("ingress", [])
    )
    assert [d["metadata"]["name"] for d in by_kind["StagedNetworkPolicy"]] == ["restrict-egress"]
    # The cluster guardrails: one Admin and one Baseline ClusterNetworkPolicy.
    assert sorted((d["spec"]["tier"], d["metadata"]["name"]) for d in by_kind["ClusterNetworkPolicy"]) == [
        ("Admin", "protect-kube-system"),
        ("Baseline", "environment-isolation"),
    ]


def test_the_policies_leave_the_gaps_of_a_real_cluster() -> None:
    docs = _docs()
    namespaced = {d["metadata"].get("namespace") for d in docs}
    assert "staging" not in namespaced  # a namespace with no policy at all
    broad = next(d for d in docs if d["metadata"]["name"] == "allow-ingress")
    assert broad["spec"]["ingress"] == [{}]  # a broad rule


def test_the_policy_engine_loads_the_policies_and_host_endpoints_match_the_model(model: ClusterModel) -> None:
    ps = load_policies(POLICIES)
    assert len(ps.policies) == 15
    heps = {h.name: h for h in ps.host_endpoints}
    for node in model.nodes:
        hep = heps[node.host_endpoint]
        assert dict(hep.labels) == node.hep_labels
        assert hep.expected_ips == (node.ip,)


@pytest.mark.parametrize("namespace", ["staging"])
def test_a_namespace_without_policy_is_allowed_by_its_profile(model: ClusterModel, namespace: str) -> None:
    # Only the cluster baseline selects its pods: what it does not match passes on to the profile.
    traces = [t for c in model.connections if c.source.startswith(namespace + "/") for t in c.expect.values()]
    assert traces
    assert any(
        t.enforced[-2:]
        == (
            "1|kube-baseline|kcnp:environment-isolation|pass|-1",
            f"2|__PROFILE__|pro:kns.{namespace}|allow|0",
        )
        for t in traces
    )
