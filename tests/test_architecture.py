"""Module boundaries the architecture promises: the library never loads the CLI framework, and no
two flowlens modules import each other."""

from __future__ import annotations

import ast
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


def _python(code: str) -> str:
    """What ``code`` prints when run by a fresh interpreter (which must succeed)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


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
    assert _python(code) == "ok"


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


def test_the_config_knows_every_engine():
    from flowlens.config import ENGINE_NAMES
    from flowlens.engine import ENGINES

    assert ENGINE_NAMES == ENGINES


def _import_graph(root: Path, package: str = "flowlens") -> dict[str, set[str]]:
    """Each module of ``package`` (its source under ``root/package``) and the modules of the same
    package it imports: every ``import`` statement counts, at the top of the module, inside a
    function or under ``if TYPE_CHECKING``, since each of them ties the two modules together."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path

    def known(name: str) -> str | None:
        """The module ``name`` names, or the nearest package holding it (``a.b.C`` -> ``a.b``)."""
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the package ``here``, ``level - 1`` steps up
                    base = here.split(".")[: len(here.split(".")) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                # ``from a.b import c`` imports the module ``a.b.c`` when there is one, else a name of ``a.b``
                targets.update(known(f"{source}.{alias.name}") for alias in node.names)
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) for each group of modules that import each other."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            visit(node)

    def path_back(group: list[str]) -> list[str]:
        """A shortest way from the group's first module back to itself, inside the group."""
        start, members = group[0], set(group)
        came_from: dict[str, str] = {}
        frontier = [start]
        while frontier:
            following = []
            for node in frontier:
                for nxt in sorted(graph[node] & members):
                    if nxt == start:
                        path = [node]
                        while path[-1] != start:
                            path.append(came_from[path[-1]])
                        return [*reversed(path), start]
                    if nxt not in came_from:
                        came_from[nxt] = node
                        following.append(nxt)
            frontier = following
        raise AssertionError(f"no way back to {start} inside {group}")

    return sorted(path_back(group) for group in groups)


def test_no_two_flowlens_modules_import_each_other():
    """No import cycle among flowlens modules, counting imports inside functions and under
    ``if TYPE_CHECKING``: an import hidden in a function is still a dependency, and the cycle it
    hides forces ``Any`` where a type belongs and ties two modules that should be understood
    one after the other.

    Importing ``a.b.c`` counts as depending on ``a.b.c`` alone, not on its packages ``a.b`` and
    ``a``, although Python runs their ``__init__`` first: a package whose ``__init__`` imports
    its own submodules (to offer their names in one place) is the usual shape of a package, not a
    cycle. What does count is a submodule that imports its own package (``from flowlens.store
    import Store`` inside ``flowlens/store/status.py``) while the package imports that submodule:
    the submodule would see a half-initialised package. Imports made by name at run time
    (``importlib.import_module``) are not seen."""
    graph = _import_graph(ROOT)
    assert "flowlens.ingest" in graph and "flowlens.store.summaries" in graph
    cycles = _cycles(graph)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_cycle_check_sees_imports_inside_functions_and_lets_a_package_import_its_modules(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg import a\n    return a\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.leaf import X\nfrom . import other\n")
    (pkg / "sub" / "leaf.py").write_text("from ..c import Y\nX = Y\n")
    (pkg / "sub" / "other.py").write_text("from pkg.sub.leaf import X\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import other\nY = 1\n"
    )
    graph = _import_graph(tmp_path, "pkg")
    assert graph["pkg.sub"] == {"pkg.sub.leaf", "pkg.sub.other"}
    assert graph["pkg.sub.leaf"] == {"pkg.c"}
    assert _cycles(graph) == [
        ["pkg.a", "pkg.b", "pkg.a"],
        ["pkg.c", "pkg.sub.other", "pkg.sub.leaf", "pkg.c"],
    ]


def test_opening_a_store_loads_neither_pyarrow_nor_numpy_nor_duckdb():
    """The command line imports the store package on every start; the heavy libraries wait for
    the commands that need them."""
    code = (
        "import sys\n"
        "import flowlens.store\n"
        "print(sorted(m for m in ('duckdb', 'numpy', 'pyarrow') if m in sys.modules))\n"
    )
    assert _python(code) == "[]"


def test_the_cli_only_parses_options_and_prints():
    # what a command computes is a library function: no SQL, no DuckDB, no walking of folders here
    offenders = []
    for path in sorted((ROOT / "flowlens" / "cli").glob("*.py")):
        text = path.read_text()
        for needle in ("duckdb", ".execute(", "read_parquet", ".rglob(", ".glob(", "os.walk(", "SELECT "):
            if needle in text:
                offenders.append(f"{path.name}: {needle}")
    assert offenders == []


def test_test_helpers_are_named_one_way():
    # tests/<area>/helpers.py for an area's helpers, tests/helpers.py for what every area shares
    # (the CLI runner, the query names), tests/factories.py for rows and stores; an area with
    # much to share makes helpers a package (tests/<area>/helpers/).
    allowed = {"__init__.py", "conftest.py", "helpers.py"}
    odd = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("*.py")
        if not path.name.startswith("test_") and path.name not in allowed and path.parent.name != "helpers"
    ]
    assert odd == ["tests/factories.py"]
