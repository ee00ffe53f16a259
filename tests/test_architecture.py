"""Module boundaries the architecture promises: the library never loads the CLI framework."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import flowlens

ROOT = Path(__file__).resolve().parents[1]


def _library_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(flowlens.__path__, "flowlens."):
        if info.name.startswith("flowlens.cli") or info.name == "flowlens.__main__":
            continue
        names.append(info.name)
    return sorted(names)


def test_every_library_module_imports_without_loading_typer():
    modules = _library_modules()
    assert "flowlens.ingest" in modules and "flowlens.store" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'typer' not in sys.modules, name\n"
        "    assert 'rich' not in sys.modules, name\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_library_code_neither_prints_nor_exits_nor_reads_the_environment():
    offenders = []
    for path in sorted((ROOT / "flowlens").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("flowlens/cli/") or rel == "flowlens/__main__.py":
            continue
        text = path.read_text()
        for needle in ("print(", "sys.exit(", "os.environ", "os.getenv(", "shell=True", "os.system("):
            if needle in text:
                offenders.append(f"{rel}: {needle}")
    assert offenders == []


def test_yaml_is_only_ever_loaded_safely():
    offenders = []
    for path in sorted((ROOT / "flowlens").rglob("*.py")):
        text = path.read_text()
        for needle in (
            "yaml.load(",
            "yaml.unsafe_load",
            "yaml.full_load",
            "Loader=yaml.Loader",
            "yaml.UnsafeLoader",
        ):
            if needle in text:
                offenders.append(f"{path.name}: {needle}")
    assert offenders == []


def test_the_config_knows_every_input_format():
    from flowlens.config import FORMAT_NAMES
    from flowlens.formats import FORMAT_NAMES as PARSERS

    assert FORMAT_NAMES == PARSERS
