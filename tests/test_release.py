"""The release: `python -m build` makes a wheel and an sdist that `twine check` accepts, and the wheel,
installed with its dependencies into a fresh virtual environment, runs the main commands from an
empty folder, as a new user would after `pip install flowlens`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import flowlens

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ("pyproject.toml", "README.md", "LICENSE")


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, built from a copy of the release's files (the checkout stays clean)."""
    tmp = tmp_path_factory.mktemp("release")
    src = tmp / "src"
    src.mkdir()
    for name in RELEASED:
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "flowlens", src / "flowlens", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(src)], tmp)
    return out


@pytest.mark.slow
def test_build_makes_a_wheel_and_an_sdist_of_this_version_that_twine_accepts(dist: Path) -> None:
    version = flowlens.__version__
    assert sorted(p.name for p in dist.iterdir()) == [
        f"flowlens-{version}-py3-none-any.whl",
        f"flowlens-{version}.tar.gz",
    ]
    result = _run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))], dist
    )
    assert result.stdout.count("PASSED") == 2

    with zipfile.ZipFile(dist / f"flowlens-{version}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"flowlens-{version}.dist-info/METADATA").decode()
    for shipped in (
        "flowlens/queries/denied.sql",
        "flowlens/sample/cluster.yaml",
        "flowlens/report/schema.json",
        "flowlens/py.typed",
        f"flowlens-{version}.dist-info/licenses/LICENSE",
        f"flowlens-{version}.dist-info/entry_points.txt",
    ):
        assert shipped in names, shipped
    assert f"Version: {version}\n" in metadata
    assert "License-Expression: Apache-2.0\n" in metadata
    assert "Requires-Python: >=3.11\n" in metadata

    with tarfile.open(dist / f"flowlens-{version}.tar.gz") as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "flowlens/__init__.py",
        "flowlens/queries/denied.sql",
    } <= members


@pytest.mark.slow
def test_the_wheel_in_a_fresh_venv_runs_the_main_commands_from_an_empty_folder(
    dist: Path, tmp_path: Path
) -> None:
    version = flowlens.__version__
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    # the dependencies come from the package index, as for any user (pip's cache makes it quick)
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            str(dist / f"flowlens-{version}-py3-none-any.whl"),
        ],
        tmp_path,
    )
    flowlens_bin = str(venv / "bin" / "flowlens")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWLENS_", "PYTHON"))}
    env["TMPDIR"] = str(tmp_path / "tmp")

    def flowlens_cmd(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([flowlens_bin, *args], empty, env)

    where = flowlens_cmd("version", "--json")
    assert json.loads(where.stdout)["flowlens"] == version
    located = _run(
        [str(venv / "bin" / "python"), "-c", "import flowlens; print(flowlens.__file__)"], empty, env
    ).stdout
    assert Path(located.strip()).is_relative_to(venv)

    demo = flowlens_cmd("demo")
    (sample,) = (tmp_path / "tmp").glob("flowlens-demo-*")
    assert (
        f"generated the sample cluster (38139 Calico Enterprise flow records, 2026-11-24 00:00 to 2026-11-26 00:00 UTC) into {sample}"
        in demo.stderr
    )
    assert "flowlens demo: done." in demo.stderr

    ingest = flowlens_cmd("ingest", str(sample / "enterprise"), "--store", "store")
    assert "38,139 rows stored + 0 quarantined" in ingest.stderr
    window = ["--since", "2026-11-24", "--until", "2026-11-26"]
    denied = flowlens_cmd("query", "denied", *window, "--store", "store", "--format", "jsonl", "--limit", "5")
    rows = [json.loads(line) for line in denied.stdout.splitlines()]
    assert len(rows) == 5 and all(row for row in rows)
    report = flowlens_cmd(
        "report",
        *window,
        "--store",
        "store",
        "--reports",
        "reports",
        "--policies",
        str(sample / "policies"),
        "--inventory",
        str(sample / "inventory.yaml"),
        "--format",
        "json",
    )
    folder = Path(report.stdout.strip())
    summary = json.loads((empty / folder / "report.json").read_text())["summary"]
    assert summary["records"] == 38139
    assert sorted(p.name for p in empty.iterdir()) == [".flowlens", "reports", "store"]
