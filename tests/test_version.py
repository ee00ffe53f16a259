"""`flowlens version`: flowlens' version, and those of Python, DuckDB and pyarrow it runs with."""

from __future__ import annotations

import json
import platform
import tomllib
from pathlib import Path

import duckdb
import pyarrow

import flowlens
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_version_prints_one_line_per_component_name_first() -> None:
    result = run_cli("version")
    assert result.code == 0, result
    assert result.stdout.splitlines() == [
        f"flowlens {flowlens.__version__}",
        f"python {platform.python_version()}",
        f"duckdb {duckdb.__version__}",
        f"pyarrow {pyarrow.__version__}",
    ]


def test_version_json_is_one_object_with_the_same_versions() -> None:
    result = run_cli("version", "--json")
    assert result.code == 0, result
    assert json.loads(result.stdout) == {
        "flowlens": flowlens.__version__,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
    }


def test_the_version_is_written_in_one_place_and_pyproject_reads_it_from_there() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "flowlens.__version__"}
