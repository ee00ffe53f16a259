"""Loading manifests (flowlens.policy.manifests.load): Lists, dispatch by kind, replacements,
notes, and errors that name the file, the document and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlens.errors import PolicyError
from flowlens.policy import load_policies, policies_from_objects
from flowlens.policy.model import PortRange
from tests.policy.helpers import K8S_WEB as K8S
from tests.policy.helpers import write


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


@pytest.mark.parametrize("kind", [["NetworkPolicy"], {"a": 1}, 5])
def test_a_kind_that_is_not_a_string_is_skipped_with_a_note(kind: object) -> None:
    ps = policies_from_objects(
        [{"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": {"name": "x"}}]
    )
    assert ps.policies == ()
    assert ps.notes == (
        f"<objects>, document 1: skipped {kind} x (projectcalico.org/v3): not a policy resource flowlens evaluates",
    )
