"""The issue's case on the sample cluster: one pod of staging/frontend port-scans staging/backend
(205 ports, one 120-byte connection each, within four minutes), injected as Calico Enterprise
records into a store built from the sample. The suggestion holds the scan back and admits only
the port the frontend really uses; golden YAML in both flavors, and the command's summary."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flowlens.cli import app
from flowlens.errors import FlowlensError
from flowlens.ingest import ingest
from flowlens.policy.inventory import load_inventory
from flowlens.store import Store
from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.proof import prove
from flowlens.suggest.validate import validate_objects
from tests.suggest.conftest import SAMPLE_START
from tests.suggest.helpers import observed_of
from tests.suggest.helpers.probes import find_record, scan_records, write_log

GOLDEN = Path(__file__).parent / "golden"
SCAN_PORTS = range(8081, 8286)
ISSUE_LINE = (
    "held back: app=frontend (staging) -> app=backend (staging): 205 ports in 5 min, 1 connection each, "
    "120 bytes per connection: looks like a port scan"
)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, sample_logs: tuple[Path, Path]) -> tuple[Path, Path]:
    logs, inventory = sample_logs
    root = tmp_path_factory.mktemp("scanned")
    template = find_record(
        logs / "enterprise",
        source_namespace="staging",
        source_name_aggr="frontend-6f9b8d7c5b-*",
        dest_name_aggr="backend-7c5d9f8b6d-*",
        reporter="dst",
    )
    start = SAMPLE_START + dt.timedelta(hours=2, seconds=20)
    records = scan_records(template, SCAN_PORTS, start, seconds=230, connection_bytes=(80, 40))
    assert len(records) == 2 * 205 and len({r["start_time"] for r in records}) == 1
    write_log(records, root / "scan" / "flows.log")
    ingest(Store(root / "store"), [str(logs / "enterprise"), str(root / "scan")])
    return root / "store", inventory


@pytest.mark.parametrize("flavor", ["kubernetes", "calico"])
def test_the_scanned_staging_namespace_renders_to_the_golden_yaml(
    scanned: tuple[Path, Path], flavor: str
) -> None:
    store, inventory = scanned
    reports, activity = observed_of(store, ["staging"])
    s = suggest(
        reports, SuggestOptions(("staging",), flavor=flavor), load_inventory([inventory]), activity=activity
    )
    text = s.stream()
    path = GOLDEN / f"sample-staging-scan-{flavor}.yaml"
    if os.environ.get("FLOWLENS_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    assert ISSUE_LINE in text
    docs = list(yaml.safe_load_all(text))
    assert validate_objects(docs) == []
    assert "8081" not in yaml.safe_dump_all(docs)  # no scanned port in any rule


def test_the_scan_is_held_back_and_the_proof_lists_it_as_would_be_denied(scanned: tuple[Path, Path]) -> None:
    store, inventory = scanned
    reports, activity = observed_of(store, ["staging"])
    options = SuggestOptions(("staging",))
    inv = load_inventory([inventory])
    s = suggest(reports, options, inv, activity=activity)
    assert s.plan.screening is not None
    [group] = s.plan.screening.held_back
    assert (group.kind, len(group.edges), group.connections) == ("port-scan", 205, 205)
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(s.stream())}
    assert docs["flowlens.backend"]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    result = prove(reports, options, suggestion=s, inventory=inv)
    assert result.broken == ()
    assert len(result.expected) == 410 and {e.reason for e in result.expected} == {"held back: port-scan"}
    admitted = suggest(
        reports,
        SuggestOptions(("staging",), screen=s.plan.options.screen.__class__(admit=(group.token,))),
        inv,
        activity=activity,
    )
    ports = yaml.safe_load_all(admitted.stream())
    backend = next(d for d in ports if d["metadata"]["name"] == "flowlens.backend")
    assert backend["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080, "endPort": 8285}]


def test_the_command_exits_0_and_summarises_the_held_back_scan(
    scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    store, inventory = scanned
    result = CliRunner().invoke(
        app,
        [
            "suggest",
            "--store",
            str(store),
            "-n",
            "staging",
            "--inventory",
            str(inventory),
            "--summary-json",
            str(tmp_path / "summary.json"),
        ],
    )
    code = result.exception.exit_code if isinstance(result.exception, FlowlensError) else result.exit_code
    assert code == 0, result.stderr
    assert f"    {ISSUE_LINE}" in result.stderr
    assert "      admit: staging/app=frontend->staging/app=backend@tcp/8081-8285" in result.stderr
    assert (
        "    would be denied: staging/frontend-6f9b8d7c5b-* -> staging/backend-7c5d9f8b6d-* tcp/8081-8285 "
        "(egress+ingress): 205 connections (held back: port-scan)"
    ) in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] is True
    [held] = summary["held_back"]
    assert held["class"] == "port-scan" and len(held["edges"]) == 205
    assert held["admit"] == "staging/app=frontend->staging/app=backend@tcp/8081-8285"
    assert {e["intervals"] for e in held["edges"]} == {1}
    assert len(summary["proof"]["would_be_denied"]) == 410
