"""The README's main-job command, end to end, on the bundled sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_every_capability_on_the_sample_and_says_where_outputs_went(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowlens",
            "demo",
            "--sample",
            str(ROOT / "sample_logs"),
            "--store",
            str(tmp_path / "store"),
            "--reports",
            str(tmp_path / "reports"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    err = result.stderr
    # every capability ran, in order
    for command in (
        "ingest",
        "status",
        "query denied",
        "query unexpected-allowed",
        "suggest",
        "simulate",
        "report",
    ):
        assert f"$ flowlens {command}" in err
    assert "0 quarantined" in err
    assert "no observed allowed connection becomes denied" in err
    assert "0 newly denied, 0 newly allowed" in err
    # the outputs are where the demo says they are
    suggested = tmp_path / "reports" / "demo" / "suggested" / "production.yaml"
    assert suggested.is_file() and "kind: NetworkPolicy" in suggested.read_text()
    latest = tmp_path / "reports" / "latest"
    assert (latest / "report.html").is_file()
    report = json.loads((latest / "report.json").read_text())
    assert report["schema"] == "flowlens.report"
    assert report["summary"]["records"] == 38485
    assert 0 <= report["summary"]["score"] <= 100
    assert str(tmp_path / "reports" / "demo" / "suggested") in err
    # stdout carries the query results: denied flows name the policy that denied them
    assert "knp:production/allow-frontend-to-backend" in result.stdout
    assert "default-allow" in result.stdout
