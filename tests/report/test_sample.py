"""The sample cluster's report: golden Markdown and JSON, and the findings its README promises."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from flowlens.ingest import ingest
from flowlens.report import generate, resolve_window
from flowlens.sample import DEFAULT_MODEL, SampleOptions, load_model, render_inventory, write_sample
from flowlens.store import Store

GOLDEN = Path(__file__).parent / "golden"
POLICIES = Path(DEFAULT_MODEL).parent / "policies"
START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    model = load_model(DEFAULT_MODEL)
    write_sample(model, root / "logs", SampleOptions(start=START, days=0.25))
    ingest(Store(root / "store"), [str(root / "logs" / "enterprise")])
    (root / "inventory.yaml").write_text(render_inventory(model), encoding="utf-8")
    window = resolve_window(now=START, since="6h", until="2026-11-24T06:00:00Z")
    out = generate(
        Store(root / "store"),
        window,
        root / "reports",
        policies=(POLICIES,),
        inventory=(root / "inventory.yaml",),
    )
    return out.folder


def test_the_sample_unexpected_categories_match_the_unexpected_allowed_query(sample_report: Path) -> None:
    from flowlens.engine import connect
    from tests.report.helpers import category_totals

    doc = json.loads((sample_report / "report.json").read_text())
    window = doc["window"]
    store = sample_report.parent.parent / "store"
    with connect(store, since=window["start"], until=window["end"]) as engine:
        reference = category_totals(engine.run("unexpected-allowed", {}).to_pylist())
    ours = {
        u["category"]: (u["flows"], u["records"], u["connections"], u["bytes"])
        for u in doc["unexpected_allowed"]
    }
    assert ours == reference


@pytest.mark.parametrize("name", ["report.md", "report.json"])
def test_the_sample_report_matches_the_golden_files(sample_report: Path, name: str) -> None:
    text = (sample_report / name).read_text(encoding="utf-8")
    path = GOLDEN / f"sample-{name}"
    if os.environ.get("FLOWLENS_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_the_sample_report_finds_what_the_sample_readme_promises(sample_report: Path) -> None:
    doc = json.loads((sample_report / "report.json").read_text())
    namespaces = {n["namespace"]: n for n in doc["namespaces"]}
    # staging has no policy at all: everything it allows is allowed by the profile.
    assert namespaces["staging"]["ingress"]["default_deny"] == "absent"
    assert namespaces["staging"]["ingress"]["policy_default_deny_share"] == 0.0
    assert namespaces["staging"]["egress"]["connection_coverage"] == 0.0
    # payments is default-deny both ways.
    assert namespaces["payments"]["ingress"]["default_deny"] == "enforced"
    assert namespaces["payments"]["egress"]["policy_default_deny_share"] == 1.0
    denied = {(f["source"], f["dest"], f["dest_port"]) for f in doc["denied"]["top_flows"]}
    prometheus = next(w for w in doc["workloads"] if w["name"].startswith("prometheus"))
    assert (
        prometheus["namespace"] + "/" + prometheus["name"],
        "production/backend-84c6d5f7b9-*",
        9090,
    ) in denied
    assert doc["summary"]["host_endpoints"] == 3
    assert doc["summary"]["internet_ingress_workloads"] >= 1
