"""Loading manifests: files, folders, multi-document YAML, Lists, API defaults and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flowlens.errors import PolicyError
from flowlens.policy import load_policies
from flowlens.policy.model import NamedPort, PortRange

K8S = """
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


def test_a_folder_is_read_recursively_with_yaml_yml_and_json_files(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", K8S)
    write(
        tmp_path / "sub" / "b.yml",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec: {selector: all()}\n",
    )
    write(
        tmp_path / "sub" / "deeper" / "c.json",
        json.dumps(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Tier",
                "metadata": {"name": "t"},
                "spec": {"order": 5},
            }
        ),
    )
    write(tmp_path / "notes.txt", "not a manifest")
    ps = load_policies([tmp_path])
    assert sorted(p.name for p in ps.policies) == ["g", "web"]
    assert [t.name for t in ps.tiers] == ["t"]


def test_multi_document_yaml_and_kind_list_are_read(tmp_path: Path) -> None:
    lst = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": "n1", "namespace": "a"},
                "spec": {},
            },
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": "n2", "namespace": "a"},
                "spec": {},
            },
        ],
    }
    import yaml

    path = write(tmp_path / "p.yaml", K8S + "---\n" + yaml.safe_dump(lst))
    ps = load_policies(path)
    assert sorted((p.kind, p.name) for p in ps.policies) == [
        ("KubernetesNetworkPolicy", "web"),
        ("NetworkPolicy", "n1"),
        ("NetworkPolicy", "n2"),
    ]


def test_unknown_kinds_are_skipped_with_a_note(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n" + K8S
    )
    ps = load_policies(path)
    assert len(ps.policies) == 1
    assert any("skipped Deployment web" in n and "document 1" in n for n in ps.notes)


def test_a_later_manifest_with_the_same_kind_namespace_and_name_replaces_the_earlier(tmp_path: Path) -> None:
    write(tmp_path / "1.yaml", K8S)
    write(tmp_path / "2.yaml", K8S.replace("port: 80}", "port: 81}"))
    ps = load_policies(tmp_path)
    assert len(ps.policies) == 1
    assert ps.policies[0].ingress[0].destination.ports[0] == PortRange(81, 81)
    assert any("replaces an earlier manifest" in n for n in ps.notes)


def test_kubernetes_defaults_tcp_order_1000_tier_default_and_ports(tmp_path: Path) -> None:
    ps = load_policies(write(tmp_path / "p.yaml", K8S))
    p = ps.policies[0]
    assert (p.kind, p.tier, p.order, p.types) == ("KubernetesNetworkPolicy", "default", 1000.0, ("Ingress",))
    tcp, udp = p.ingress
    assert tcp.protocol == 6 and tcp.destination.ports == (PortRange(80, 80), NamedPort("http"))
    assert udp.protocol == 17 and udp.destination.ports == (PortRange(5000, 5010),)
    assert str(p.selector) == '(projectcalico.org/orchestrator == "k8s" && app == "web")'


def test_calico_defaults_tier_default_order_infinite_and_selector_all(tmp_path: Path) -> None:
    ps = load_policies(
        write(
            tmp_path / "p.yaml",
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: n}\nspec: {}\n",
        )
    )
    p = ps.policies[0]
    assert (p.namespace, p.tier, p.types, str(p.selector)) == ("default", "default", ("Ingress",), "all()")
    assert math.isinf(p.order)


def test_a_policy_in_an_undefined_tier_gets_a_last_tier_with_a_note(tmp_path: Path) -> None:
    ps = load_policies(
        write(
            tmp_path / "p.yaml",
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: s.x}\nspec: {tier: s}\n",
        )
    )
    assert [(t.name, t.order, t.default_action) for t in ps.tiers] == [("s", None, "Deny")]
    assert any("tier 's'" in n for n in ps.notes)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: n}\nspec:\n  ingress: [{action: Allow}, {action: Maybe}]\n",
            "document 1: spec.ingress[1].action",
        ),
        (
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: n}\nspec:\n  ingress: [{action: Allow, source: {selector: 'a ==='}}]\n",
            "document 1: spec.ingress[0].source.selector",
        ),
        (
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: n}\nspec:\n  ingress: [{action: Allow, destination: {ports: [80]}}]\n",
            "spec.ingress[0].protocol",
        ),
        (
            "---\n"
            + K8S
            + "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.300/8}}]}]\n",
            "document 2: spec.egress[0].to[0].ipBlock.cidr",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  ingress: [{ports: [{port: http, endPort: 90}]}]\n",
            "spec.ingress[0].ports[0].endPort",
        ),
        (
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: GlobalNetworkPolicy\n  metadata: {}\n",
            "document 1: items[0].metadata.name",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {matchExpressions: [{key: a, operator: Near}]}\n",
            "spec.podSelector.matchExpressions[0].operator",
        ),
    ],
)
def test_an_invalid_manifest_names_the_file_the_document_and_the_field_path(
    tmp_path: Path, text: str, where: str
) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(PolicyError) as info:
        load_policies(path)
    assert str(path) in str(info.value)
    assert where in str(info.value)


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "kind: NetworkPolicy\nmetadata: [unclosed\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml: invalid YAML at line"):
        load_policies(path)


def test_a_missing_path_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        load_policies(tmp_path / "nope")


def test_network_sets_host_endpoints_and_staged_actions_load(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml",
        """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: g, labels: {a: b}}
spec: {nets: [1.2.3.4/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: n, namespace: x}
spec: {nets: [10.0.0.0/8]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: h}
spec: {node: n1, expectedIPs: [192.168.0.1], ports: [{name: ssh, port: 22, protocol: TCP}]}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: s}
spec: {stagedAction: delete}
""",
    )
    ps = load_policies(path)
    assert [(s.namespace, s.name, str(s.nets[0])) for s in ps.network_sets] == [
        (None, "g", "1.2.3.0/24"),
        ("x", "n", "10.0.0.0/8"),
    ]
    assert ps.host_endpoints[0].ports[0].port == 22
    assert ps.policies[0].staged_action == "Delete" and ps.policies[0].staged
