"""Golden YAML for the hand-made shop store, in both flavors; determinism of the bytes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import yaml

from flowlens.suggest import SuggestOptions, suggest
from tests.factories import write_store
from tests.suggest.helpers import make_store, run, shop_rows

GOLDEN = Path(__file__).parent / "golden"

CASES = {
    "shop-kubernetes.yaml": {"min_connections": 2},
    "shop-calico.yaml": {
        "flavor": "calico",
        "baseline": True,
        "include_denied": True,
        "max_extra_addresses": 4,
    },
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_shop_store_renders_to_the_golden_yaml(tmp_path: Path, name: str) -> None:
    text = run(make_store(tmp_path / "store"), **CASES[name]).stream()
    path = GOLDEN / name
    if os.environ.get("FLOWLENS_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_the_golden_yaml_parses_into_the_expected_kinds() -> None:
    docs = list(yaml.safe_load_all((GOLDEN / "shop-kubernetes.yaml").read_text()))
    names = [d["metadata"]["name"] for d in docs]
    assert names[:2] == ["allow-dns", "default-deny"]
    assert names[2:] == sorted(names[2:])
    assert all(n.startswith("flowlens.") for n in names[2:])
    assert {d["kind"] for d in docs} == {"NetworkPolicy"}
    calico = list(yaml.safe_load_all((GOLDEN / "shop-calico.yaml").read_text()))
    assert [d["kind"] for d in calico[:2]] == ["Tier", "GlobalNetworkPolicy"]


def test_shuffled_input_rows_give_identical_output(tmp_path: Path) -> None:
    rows = shop_rows()
    first = run(write_store(tmp_path / "a", rows), flavor="calico", include_denied=True).stream()
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    # split over several files too, so that the scan order differs
    store = tmp_path / "b"
    write_store(store, shuffled[: len(shuffled) // 2], name="part-0")
    write_store(store, shuffled[len(shuffled) // 2 :], name="part-1")
    assert run(store, flavor="calico", include_denied=True).stream() == first


def test_the_same_reports_give_the_same_bytes_twice(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store")
    assert run(store).stream() == run(store).stream()


def test_no_reports_still_give_default_deny_and_dns() -> None:
    s = suggest([], SuggestOptions(namespaces=("empty",)))
    docs = list(yaml.safe_load_all(s.stream()))
    assert [d["metadata"]["name"] for d in docs] == ["allow-dns", "default-deny"]
