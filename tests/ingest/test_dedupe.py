"""Line-granularity dedupe: a copy that diverges from, or stops short of, what is stored adds only
what is new (multiset: a record stored k times and read m times adds max(0, m - k))."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_C


def _lines(n: int, start: int = 0) -> list[str]:
    base = json.loads(EXAMPLE_C)
    out = []
    for i in range(start, start + n):
        doc = dict(base)
        doc["start_time"] = 1675468688 + 300 * (i // 50)
        doc["end_time"] = doc["start_time"] + 300
        doc["bytes_in"] = i
        out.append(json.dumps(doc))
    return out


def _write(path: Path, lines: list[str], *, tail: str = "") -> Path:
    path.write_text("".join(line + "\n" for line in lines) + tail)
    return path


def _bytes_in(store) -> list[int]:
    return [r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f ORDER BY bytes_in")]


def _edited(line: str, bytes_in: int) -> str:
    doc = json.loads(line)
    doc["bytes_in"] = bytes_in
    return json.dumps(doc)


def test_a_prefix_copy_ending_between_two_checkpoints_adds_nothing(tmp_path, store, run):
    lines = _lines(100)
    log = _write(tmp_path / "flows.log", lines[:50])
    run(log)
    _write(log, lines)  # the file grew: checkpoints at 50 and 100 lines
    run(log)
    copy = _write(tmp_path / "copy.log", lines[:75])
    summary = run(copy)
    assert summary.total("rows") == 0
    assert summary.total("already_stored") == 25
    assert summary.total("skipped") == 75
    assert summary.balanced
    assert _bytes_in(store) == list(range(100))


def test_a_copy_with_one_line_edited_in_the_middle_adds_only_that_line(tmp_path, store, run):
    lines = _lines(100)
    run(_write(tmp_path / "flows.log", lines))
    edited = list(lines)
    edited[50] = _edited(lines[50], 10_000)
    summary = run(_write(tmp_path / "edited.log", edited))
    assert summary.total("rows") == 1
    assert summary.total("already_stored") == 99
    assert summary.balanced
    assert _bytes_in(store) == [*range(100), 10_000]
