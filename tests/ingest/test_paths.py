"""Which files an ingest reads: folders and globs, links and loops, and paths that yield nothing."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from flowlens.errors import InputError
from flowlens.ingest import ingest
from flowlens.ingest.paths import find_sources, match_glob
from flowlens.store import Store
from tests.ingest import helpers


def _tree(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "flows.log").write_text("x\n")
    (root / "a" / "b" / "flows.log.1.gz").write_bytes(b"x")
    (root / "a" / ".hidden.log").write_text("x\n")
    (root / "a" / "README.md").write_text("x\n")
    return root


@pytest.mark.parametrize(
    "pattern",
    ["a/*", "a/**", "a/**/*.log*", "**/flows.log", "a/*/flows.log*", "a/[fb]*", "a/?", "a/.h*"],
)
def test_globs_match_what_python_globs_match_when_there_is_no_link(tmp_path, monkeypatch, pattern):
    monkeypatch.chdir(_tree(tmp_path))
    assert match_glob(pattern) == sorted(glob.glob(pattern, recursive=True))


def test_a_glob_through_a_link_loop_ends_and_finds_each_file(tmp_path):
    root = _tree(tmp_path)
    os.symlink("..", root / "a" / "b" / "up")  # b/up -> a: a loop
    os.symlink(str(root / "a"), root / "a" / "again")  # and a second way into a
    found = match_glob(str(root / "**" / "flows.log"))
    assert str(root / "a" / "flows.log") in found
    assert len(found) <= 3  # each real folder entered once per pattern: no endless path


def test_a_folder_with_a_link_loop_is_walked_once(tmp_path):
    root = _tree(tmp_path)
    os.symlink("..", root / "a" / "b" / "up")
    found = find_sources([str(root / "a")])
    names = sorted(Path(p).name for p, _ in found.files)
    assert names == ["flows.log", "flows.log.1.gz"]
    assert found.problems == []
    assert [Path(p).name for p in found.passed] == ["README.md"]


def test_a_linked_folder_inside_a_folder_is_read(tmp_path):
    logs = tmp_path / "elsewhere"
    logs.mkdir()
    (logs / "flows.log").write_text("x\n")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(str(logs), root / "node-1")
    found = find_sources([str(root)])
    assert [p for p, _ in found.files] == [str(root / "node-1" / "flows.log")]


def test_paths_that_yield_nothing_are_problems_of_their_own(tmp_path):
    real = tmp_path / "flows.log"
    real.write_text("x\n")
    found = find_sources([str(tmp_path / "missing.log"), str(tmp_path / "*.gz"), str(real)])
    assert found.files == [(str(real), None)]
    assert found.problems == [
        (str(tmp_path / "missing.log"), "no such file or directory"),
        (str(tmp_path / "*.gz"), "no file matches this pattern"),
    ]


def test_a_missing_path_does_not_stop_the_others_and_is_reported(tmp_path):
    log = tmp_path / "flows.log"
    log.write_text(helpers.EXAMPLE_C + "\n")
    summary = ingest(Store(tmp_path / "store"), [str(tmp_path / "gone.log"), str(log)])
    assert summary.total("rows") == 1
    assert summary.errors == [f"{tmp_path / 'gone.log'}: no such file or directory"]


def test_when_no_path_yields_a_file_the_run_stops_with_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        ingest(Store(tmp_path / "store"), [str(tmp_path / "gone.log")])
