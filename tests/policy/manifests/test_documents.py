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


# --- bounds: manifests are untrusted input ------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_an_alias_bomb_is_refused_with_a_short_message(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 800  # 9**9 = 387 million strings once expanded
    write(tmp_path / "bomb.yaml", ALIAS_BOMB)
    with pytest.raises(PolicyError, match="aliases expand to more than 10 times") as info:
        load_policies(tmp_path / "bomb.yaml")
    assert len(str(info.value)) < 400 and "bomb.yaml" in str(info.value)


def test_aliases_that_repeat_a_few_values_still_load(tmp_path: Path) -> None:
    write(
        tmp_path / "p.yaml",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g, labels: &l {a: b}}\n"
        "spec: {selector: all(), ingress: [{action: Allow, source: {selector: has(a)}}], x: *l, y: *l}\n",
    )
    assert load_policies(tmp_path / "p.yaml").policies


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.yaml", "a: " + "[" * 10_000 + "]" * 10_000 + "\n"),
        ("deep-block.yaml", "".join(" " * i + "k:\n" for i in range(300))),
        ("deep.json", "[" * 100_000 + "]" * 100_000),
    ],
)
def test_a_manifest_nested_deeper_than_the_limit_is_a_policy_error_not_a_traceback(
    tmp_path: Path, name: str, text: str
) -> None:
    write(tmp_path / name, text)
    with pytest.raises(PolicyError, match="nested"):
        load_policies(tmp_path / name)


def test_nesting_within_the_limit_still_loads(tmp_path: Path) -> None:
    write(tmp_path / "ok.yaml", "a: " + "[" * 99 + "]" * 99 + "\n")
    assert load_policies(tmp_path / "ok.yaml").policies == ()


def test_a_manifest_file_larger_than_the_limit_is_refused_unread(tmp_path: Path, monkeypatch) -> None:
    from flowlens.policy.manifests import documents

    monkeypatch.setattr(documents, "MAX_MANIFEST_BYTES", 1000)
    write(tmp_path / "big.yaml", K8S + "#" + "x" * 2000 + "\n")
    with pytest.raises(PolicyError, match="larger than 1,000 bytes"):
        load_policies(tmp_path / "big.yaml")


def test_a_huge_value_in_a_field_error_is_quoted_short(tmp_path: Path) -> None:
    write(
        tmp_path / "p.yaml",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n"
        f"metadata: {{name: g}}\nspec: {{selector: all(), order: [{', '.join(['x' * 100] * 1000)}]}}\n",
    )
    with pytest.raises(PolicyError, match=r"spec\.order") as info:
        load_policies(tmp_path / "p.yaml")
    assert len(str(info.value)) < 700
