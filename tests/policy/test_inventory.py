"""The cluster inventory, and what the evaluator says when it has none."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from flowlens.errors import PolicyError
from flowlens.policy import Endpoint, Evaluator, FlowKey, load_inventory
from flowlens.policy.model import ContainerPort
from tests.policy.helpers import policies

KUBECTL_OUTPUT = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"env": "prod"}}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "web", "namespace": "prod", "labels": {"role": "fe"}},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-7d4f8c9b5-x2x4k",
                "generateName": "web-7d4f8c9b5-",
                "namespace": "prod",
                "labels": {"app": "web"},
            },
            "spec": {
                "serviceAccountName": "web",
                "nodeName": "node-1",
                "containers": [
                    {"name": "c", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}]}
                ],
            },
            "status": {
                "podIP": "10.0.0.5",
                "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                "phase": "Running",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db-0", "namespace": "other", "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "db"}]},
            "status": {"podIP": "10.0.0.6"},
        },
    ],
}


def test_kubectl_list_output_gives_namespace_pod_and_service_account_facts(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(KUBECTL_OUTPUT))
    inv = load_inventory([path])
    assert inv.namespace_labels("prod") == {"env": "prod", "kubernetes.io/metadata.name": "prod"}
    assert inv.service_account_labels("prod", "web") == {"role": "fe"}
    pod = inv.pod("prod", "web-7d4f8c9b5-x2x4k")
    assert pod is not None
    assert pod.ips == ("10.0.0.5", "fd00::5")
    assert pod.service_account == "web" and pod.node == "node-1"
    assert pod.named_ports == (ContainerPort("http", 6, 8080),)
    assert pod.name_aggr == "web-7d4f8c9b5-*"
    assert inv.pod_by_ip("fd00::5") is pod
    assert inv.find_pods("prod", "web-7d4f8c9b5-*") == [pod]
    assert inv.find_pods("prod", "web") == [pod]
    db = inv.pod("other", "db-0")
    assert db is not None and db.service_account == "default"
    assert any("namespace other" in n for n in inv.notes)


def test_the_inventory_decides_namespace_labels_and_named_ports_for_aggregated_flow_endpoints(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(KUBECTL_OUTPUT))
    inv = load_inventory(path)
    ps = policies(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {env: prod}}}], ports: [{port: http}]}]
"""
    )
    client = Endpoint("wep", "prod", "client-*", {"app": "client"})
    web = Endpoint("wep", "prod", "web-7d4f8c9b5-*", {"app": "web"})
    with_inv = Evaluator(ps, inv).evaluate(FlowKey("dst", client, web, "tcp", 8080))
    assert (with_inv.action, with_inv.notes) == ("allow", ())
    without = Evaluator(ps).evaluate(FlowKey("dst", client, web, "tcp", 8080))
    assert without.action == "deny"
    assert any("could not be decided" in n and "give --inventory" in n for n in without.notes)


def test_without_inventory_namespace_selectors_by_name_are_still_decided() -> None:
    ps = policies(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: prod}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: dev}}}]}]
"""
    )
    ev = Evaluator(ps)
    dst = Endpoint("wep", "prod", "web-*", {"app": "web"})
    ok = ev.evaluate(FlowKey("dst", Endpoint("wep", "dev", "c-*", {}), dst, "tcp", 80))
    no = ev.evaluate(FlowKey("dst", Endpoint("wep", "ops", "c-*", {}), dst, "tcp", 80))
    assert (ok.action, ok.notes) == ("allow", ())
    assert (no.action, no.notes) == ("deny", ())


def test_an_undecidable_deny_rule_is_treated_as_matching_and_said_so() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-team-a}
spec:
  selector: all()
  ingress:
  - {action: Deny, source: {namespaceSelector: team == 'a'}}
  - {action: Allow}
"""
    )
    ev = Evaluator(ps)
    d = ev.evaluate(
        FlowKey("dst", Endpoint("wep", "x", "c-*", {}), Endpoint("wep", "y", "s-*", {}), "tcp", 80)
    )
    assert d.action == "deny"
    assert d.enforced_hits == ("0|default|gnp:deny-team-a|deny|0",)
    assert any("labels of namespace x are not known" in n and "treated as matching" in n for n in d.notes)


def test_an_undecidable_service_account_rule_without_inventory_is_reported() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: sa, namespace: y}
spec:
  ingress: [{action: Allow, source: {serviceAccounts: {names: [api]}}}]
"""
    )
    d = Evaluator(ps).evaluate(
        FlowKey("dst", Endpoint("wep", "y", "c-*", {}), Endpoint("wep", "y", "s-*", {}), "tcp", 80)
    )
    assert d.action == "deny"
    assert any("service account of y/c-*" in n for n in d.notes)


def test_a_masked_external_address_cannot_be_matched_against_nets() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: n, namespace: y}
spec:
  egress: [{action: Allow, destination: {nets: [1.2.3.0/24]}}]
"""
    )
    d = Evaluator(ps).evaluate(
        FlowKey("src", Endpoint("wep", "y", "c-*", {}), Endpoint("net", None, "pub"), "tcp", 443)
    )
    assert d.action == "deny"
    assert any("IP of" in n and "not known" in n for n in d.notes)


def test_a_masked_public_address_is_decided_against_private_only_nets() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: n, namespace: y}
spec:
  egress:
  - {action: Deny, destination: {nets: [10.0.0.0/8]}}
  - {action: Allow, destination: {notNets: [192.168.0.0/16]}}
"""
    )
    d = Evaluator(ps).evaluate(
        FlowKey("src", Endpoint("wep", "y", "c-*", {}), Endpoint("net", None, "pub"), "tcp", 443)
    )
    assert (d.action, d.enforced_hits, d.undecided) == ("allow", ("0|default|np:y/n|allow|1",), False)


def test_an_undecided_key_offers_the_permissive_alternative() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: n, namespace: y}
spec:
  egress:
  - {action: Deny, protocol: TCP, destination: {nets: [169.254.169.254/32]}}
  - {action: Allow}
"""
    )
    d = Evaluator(ps).evaluate(
        FlowKey("src", Endpoint("wep", "y", "c-*", {}), Endpoint("net", None, "pub"), "tcp", 80)
    )
    assert (d.action, d.enforced_hits) == ("deny", ("0|default|np:y/n|deny|0",))
    assert d.undecided
    assert (d.alternative_action, [h.hit for h in d.alternative_enforced]) == (
        "allow",
        ["0|default|np:y/n|allow|1"],
    )


def test_host_endpoint_expected_ips_stand_in_for_a_masked_address() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node1-eth0, labels: {host: "true"}}
spec: {node: node1, expectedIPs: [10.1.0.5], profiles: [projectcalico-default-allow]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: meta}
spec:
  selector: all()
  egress: [{action: Deny, destination: {nets: [169.254.169.254/32]}}, {action: Allow}]
  ingress: [{action: Allow, source: {nets: [10.0.0.0/8]}}]
"""
    )
    ev = Evaluator(ps)
    node = Endpoint("hep", None, "node1", {})  # flow logs name host endpoints by hostname
    d = ev.evaluate(FlowKey("src", Endpoint("wep", "y", "c-*", {}), node, "tcp", 10250))
    assert (d.action, d.undecided) == ("allow", False)
    d = ev.evaluate(FlowKey("dst", node, Endpoint("wep", "y", "c-*", {}), "tcp", 80))
    assert (d.action, d.undecided) == ("allow", False)


def test_endpoint_kinds_accept_common_aliases_and_reject_unknown_ones() -> None:
    import pytest

    assert Endpoint("pod", "a", "b").kind == "wep"
    assert Endpoint("external", ip="1.2.3.4").kind == "net"
    with pytest.raises(ValueError, match="endpoint kind"):
        Endpoint("service")


def test_an_empty_rule_selector_means_not_set_rather_than_all() -> None:
    ps = policies(
        """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec:
  selector: all()
  ingress: [{action: Allow, source: {selector: ""}}]
"""
    )
    assert ps.policies[0].ingress[0].source.selector is None
    d = Evaluator(ps).evaluate(
        FlowKey("dst", Endpoint("net", ip="8.8.8.8"), Endpoint("wep", "y", "s", {}), "tcp", 80)
    )
    assert d.action == "allow"


def test_namespace_labels_given_on_an_endpoint_always_include_the_name_label() -> None:
    ps = policies(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-y, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]}]
"""
    )
    src = Endpoint("wep", "y", None, {}, "1.2.3.4", namespace_labels={"ns": "y"})
    dst = Endpoint("wep", "x", None, {"pod": "a"}, "1.2.3.5", namespace_labels={"ns": "x"})
    d = Evaluator(ps).evaluate(FlowKey("dst", src, dst, "tcp", 80))
    assert (d.action, d.notes) == ("allow", ())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda pod: pod["status"].update(podIP="10.0.0.300"), "status.podIP: not an IP address"),
        (lambda pod: pod["status"].update(podIPs=[{"ip": "fd00::zz"}]), r"status.podIPs\[0\].ip: not an IP"),
        (
            lambda pod: pod["spec"]["containers"][0]["ports"][0].update(containerPort=70000),
            r"spec.containers\[0\].ports\[0\].containerPort: out of range: 70000",
        ),
        (
            lambda pod: pod["spec"]["containers"][0]["ports"][0].update(containerPort=0),
            r"spec.containers\[0\].ports\[0\].containerPort: out of range: 0",
        ),
    ],
)
def test_a_pod_ip_or_port_out_of_range_is_refused_with_the_field_named(tmp_path: Path, change, field) -> None:
    doc = copy.deepcopy(KUBECTL_OUTPUT)
    pod = next(item for item in doc["items"] if item["kind"] == "Pod" and item["spec"].get("containers"))
    change(pod)
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(PolicyError, match=field) as info:
        load_inventory([path])
    assert "inv.yaml: document 1" in str(info.value)
