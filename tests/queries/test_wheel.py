"""The query files ship inside the wheel: an installed flowlens lists and runs every query."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from flowlens.engine import load_queries
from tests.helpers import QUESTION_QUERIES

REPO = Path(__file__).resolve().parents[2]

# Runs inside the wheel's own virtual environment, where tests/ is not importable: it drives the
# CLI as tests.helpers.run_cli does, through flowlens.cli.main and its exit code.
CHECK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import flowlens
    from flowlens.cli import main

    venv = Path(sys.argv[1]).resolve()
    assert Path(flowlens.__file__).resolve().is_relative_to(venv), flowlens.__file__
    store = Path(sys.argv[2])
    for name in sys.argv[3:]:
        sys.argv = ["flowlens", "query", name, "--store", str(store), "--format", "jsonl"]
        try:
            main()
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise SystemExit(f"flowlens query {name} failed with {exit_.code}")
        print(f"ran {name}", file=sys.stderr)
    """
)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _setuptools_can_build() -> bool:
    # pyproject.toml's `license = "Apache-2.0"` (PEP 639) needs setuptools >= 77; building offline
    # (--no-build-isolation) uses the setuptools of this environment.
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.mark.slow
@pytest.mark.skipif(not _setuptools_can_build(), reason="building the wheel offline needs setuptools >= 77")
def test_a_wheel_installed_in_a_fresh_venv_lists_and_runs_every_query(tmp_path: Path) -> None:
    # Build from a copy, so the build leaves nothing in the working tree others use.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copy(REPO / "README.md", src)
    shutil.copytree(REPO / "flowlens", src / "flowlens", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ".",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
        ],
        src,
    )
    (wheel,) = wheels.glob("flowlens-*.whl")

    # A fresh venv without flowlens; the dependencies come from this environment's site-packages,
    # added as a plain path (its .pth files, including the editable flowlens finder, are not run).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path
        ).stdout.strip()
    )
    (purelib / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        tmp_path,
    )

    shipped = sorted(p.name for p in (purelib / "flowlens" / "queries").glob("*.sql"))
    assert shipped == sorted(f"{name}.sql" for name in load_queries())

    listing = _run([str(venv / "bin" / "flowlens"), "queries", "--format", "csv"], tmp_path).stdout
    listed = [line.split(",")[0] for line in listing.splitlines()[1:]]
    for name in QUESTION_QUERIES:
        assert name in listed

    store = tmp_path / "empty-store"
    (store / "flows").mkdir(parents=True)
    standalone = [
        name
        for name, spec in load_queries().items()
        if not any(p.required for p in spec.params) and not name.startswith("coverage-")
    ]
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    result = _run([str(python), str(script), str(venv), str(store), *standalone], tmp_path)
    assert result.stdout == ""  # every query is empty on an empty store
    assert result.stderr.count("ran ") == len(standalone) >= 7
