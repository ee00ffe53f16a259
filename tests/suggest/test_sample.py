"""The sample cluster's production namespace: golden YAML, schema validity, and the proof against
the sample's own policies in force and inventory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from flowlens.ingest import ingest
from flowlens.policy.inventory import load_inventory
from flowlens.sample import DEFAULT_MODEL
from flowlens.store import Store
from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.proof import prove
from flowlens.suggest.validate import validate_objects
from tests.suggest.helpers import observed_of, reports_of

GOLDEN = Path(__file__).parent / "golden"
POLICIES = Path(DEFAULT_MODEL).parent / "policies"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, sample_logs: tuple[Path, Path]) -> tuple[Path, Path]:
    logs, inventory = sample_logs
    root = tmp_path_factory.mktemp("sample")
    ingest(Store(root / "store"), [str(logs / "enterprise")])
    return root / "store", inventory


@pytest.mark.parametrize("flavor", ["kubernetes", "calico"])
def test_the_production_namespace_renders_to_the_golden_yaml(sample: tuple[Path, Path], flavor: str) -> None:
    store, _ = sample
    reports, activity = observed_of(store, ["production"])
    text = suggest(reports, SuggestOptions(("production",), flavor=flavor), activity=activity).stream()
    path = GOLDEN / f"sample-production-{flavor}.yaml"
    if os.environ.get("FLOWLENS_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    assert validate_objects(list(yaml.safe_load_all(text))) == []


@pytest.mark.parametrize("flavor", ["kubernetes", "calico"])
@pytest.mark.parametrize("replace", [False, True])
def test_the_production_suggestion_breaks_no_observed_connection(
    sample: tuple[Path, Path], flavor: str, replace: bool
) -> None:
    store, inventory = sample
    reports = reports_of(store, ["production"])
    options = SuggestOptions(("production",), flavor=flavor)
    result = prove(
        reports,
        options,
        suggestion=suggest(reports, options),
        policies=[POLICIES],
        inventory=[inventory],
        replace=replace,
    )
    assert result.broken == ()
    assert result.replayed > 10
    assert result.pairs_open_after < result.pairs_open_before


def test_calico_peers_carry_the_service_account_the_inventory_knows(sample: tuple[Path, Path]) -> None:
    store, inventory_path = sample
    inventory = load_inventory([inventory_path])
    reports = reports_of(store, ["production"])
    options = SuggestOptions(("production",), flavor="calico")
    suggestion = suggest(reports, options, inventory)
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(suggestion.stream())}
    egress = docs["flowlens.frontend"]["spec"]["egress"]
    to_backend = next(r for r in egress if r["destination"].get("selector") == "app == 'backend'")
    backend_sa = {
        p.service_account
        for p in inventory.pods
        if p.labels.get("app") == "backend" and p.namespace == "production"
    }
    assert to_backend["destination"]["serviceAccounts"] == {"names": sorted(backend_sa)}
    assert validate_objects(list(docs.values())) == []
    result = prove(reports, options, suggestion=suggestion, policies=[POLICIES], inventory=inventory)
    assert result.broken == ()
