"""What the engine tests share: a query file whose header declares every kind of parameter, and a
report's JSON without the times it was made at (to compare the engines' reports), and the sample
cluster's report made by either engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import run_cli

HEADER = """\
-- name: {name}
-- description: Flows of one namespace.
-- Longer text,
-- on two lines.
-- param: namespace VARCHAR = NULL  -- only this namespace
-- param: min_bytes BIGINT = 0  -- at least this many bytes
-- param: label VARCHAR = 'it''s'  -- a quoted default
-- param: port INTEGER  -- required
SELECT $namespace AS ns, $min_bytes AS b, $label AS l, $port AS p -- $not_a_param
"""


def without_times(value: Any) -> Any:
    """A report's JSON without the times it was generated at (the rest is the same on every run)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if "generated" not in k}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def sample_report_json(store: str | Path, engine: str, reports: Path) -> Any:
    """The JSON report of the sample cluster's two days from ``store`` on ``engine``, written under
    ``reports``, without its times."""
    result = run_cli(
        "report",
        "--store",
        store,
        "--reports",
        reports,
        "--since",
        "2026-11-24",
        "--until",
        "2026-11-26",
        "--format",
        "json",
        "--engine",
        engine,
    )
    assert result.code == 0, str(result)
    (path,) = reports.rglob("report.json")
    return without_times(json.loads(path.read_text()))


def explain_sample_args(repo: Path) -> list[str | Path]:
    """``flowlens explain`` of a connection of the sample cluster (an outside address to the
    production database), with the sample's policies and inventory: the arguments after the
    command name's ``explain``, before ``--store`` and ``-f``."""
    return [
        "explain",
        "--from",
        "10.0.0.99",
        "--to",
        "production/postgres",
        "--port",
        "5432",
        "--policies",
        repo / "sample_logs" / "policies",
        "--inventory",
        repo / "sample_logs" / "inventory.yaml",
    ]
