"""Manifest documents (flowlens.policy.manifests.documents): files, folders, YAML and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowlens.errors import PolicyError
from flowlens.policy import load_policies
from tests.policy.helpers import K8S_WEB as K8S
from tests.policy.helpers import write


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


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "kind: NetworkPolicy\nmetadata: [unclosed\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml: invalid YAML at line"):
        load_policies(path)


def test_a_missing_path_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        load_policies(tmp_path / "nope")
