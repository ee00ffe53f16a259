"""One exit-code table (flowlens/errors.py): the error classes, --help and the docs all come from it."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import flowlens
import flowlens.cli
from flowlens.cli import gendocs
from flowlens.errors import (
    EXIT_CODES,
    INTERRUPTED,
    CheckFailed,
    FlowlensError,
    InputError,
    PolicyError,
    QueryError,
    SelectorError,
    StoreError,
    StoreLockedError,
    StrictModeError,
    UsageError,
    exit_code,
    exit_codes_help,
    exit_codes_markdown,
)
from tests.helpers import ROOT, run_cli


def _words(text: str) -> str:
    return " ".join(text.split())


def _all_error_classes() -> set[type[FlowlensError]]:
    for info in pkgutil.walk_packages(flowlens.__path__, "flowlens."):
        if info.name != "flowlens.__main__":
            importlib.import_module(info.name)
    found: set[type[FlowlensError]] = set()
    todo: list[type[FlowlensError]] = [FlowlensError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_the_docs_page_is_generated_from_the_table() -> None:
    page = (ROOT / "docs" / "exit-codes.md").read_text(encoding="utf-8")
    assert page == exit_codes_markdown(), "run: python -m flowlens.cli.gendocs"
    for entry in EXIT_CODES:
        assert f"| {entry.code} | {entry.meaning} |" in page


def test_flowlens_help_lists_the_table() -> None:
    result = run_cli("--help")
    assert result.code == 0, result
    assert _words(exit_codes_help()) in _words(result.stdout)
    for entry in EXIT_CODES:
        assert f"{entry.code} {_words(entry.summary)}" in _words(result.stdout)


def test_every_error_class_exits_with_a_code_of_the_table() -> None:
    codes = {entry.code for entry in EXIT_CODES}
    for cls in _all_error_classes():
        assert cls.exit_code in codes, f"{cls.__module__}.{cls.__name__}: add its code to EXIT_CODES"


def test_each_error_has_the_code_its_row_names() -> None:
    assert [e.code for e in EXIT_CODES] == sorted(e.code for e in EXIT_CODES)
    assert len({e.name for e in EXIT_CODES}) == len(EXIT_CODES)
    expected = {
        FlowlensError: "error",
        UsageError: "usage",
        InputError: "input",
        StrictModeError: "input",
        StoreError: "store",
        StoreLockedError: "store",
        QueryError: "query",
        PolicyError: "policy",
        SelectorError: "policy",
        CheckFailed: "check-failed",
    }
    for cls, name in expected.items():
        assert cls.exit_code == exit_code(name), cls
    assert (exit_code("ok"), exit_code("usage"), INTERRUPTED) == (0, 2, 130)


def test_the_table_says_what_ends_with_code_6_and_10() -> None:
    by_code = {e.code: e for e in EXIT_CODES}
    assert "selector" in by_code[6].summary and "inventory" in by_code[6].summary
    for gate in ("simulate --fail-on", "suggest", "report --fail-under"):
        assert gate in by_code[10].summary
    assert "--validate" in by_code[10].meaning and "--check" in by_code[10].meaning


def test_gendocs_check_fails_on_a_stale_page_and_writing_fixes_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "exit-codes.md").write_text("| 6 | invalid policy or inventory |\n", encoding="utf-8")
    assert gendocs.main(["--docs", str(docs), "--check"]) == 1
    assert gendocs.main(["--docs", str(docs)]) == 0
    assert (docs / "exit-codes.md").read_text(encoding="utf-8") == exit_codes_markdown()
    assert gendocs.main(["--docs", str(docs), "--check"]) == 0
    assert gendocs.stale_pages(ROOT / "docs") == []


@pytest.mark.parametrize(
    ("error", "code"),
    [(UsageError("x"), 2), (StoreLockedError("x"), 4), (SelectorError("x"), 6), (CheckFailed("x"), 10)],
)
def test_the_error_boundary_exits_with_the_class_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch, error: FlowlensError, code: int
) -> None:
    def fail() -> None:
        raise error

    monkeypatch.setattr(flowlens.cli, "app", fail)
    result = run_cli("anything")
    assert (result.code, result.stderr, result.stdout) == (code, "flowlens: error: x\n", "")


def test_ctrl_c_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(flowlens.cli, "app", interrupted)
    result = run_cli("ingest", "-")
    assert (result.code, result.stderr) == (130, "flowlens: interrupted\n")


def test_no_other_file_writes_an_exit_code_table() -> None:
    written = re.compile(r"exit codes?:?\s*\|?\s*0\b", re.IGNORECASE)
    for path in [*ROOT.joinpath("flowlens").rglob("*.py"), ROOT / "README.md"]:
        if path.name == "errors.py":
            continue
        assert not written.search(path.read_text(encoding="utf-8")), path
