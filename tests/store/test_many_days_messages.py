"""Messages that scale: a run over 450 date partitions says so in one line, not 450 dates.

One ingest of a log whose records cover 450 days (two a day), then each command that speaks of
partitions (ingest, compact, prune, status, verify, repair) on that store: every line it writes
is short, and the days are counted with the first and last, never listed. (``verify`` prints
one line per problem on stdout by contract, for scripts; ``repair`` lists ten of each kind.)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli

DAYS = 450
FIRST = dt.date(2025, 1, 1)
LAST = FIRST + dt.timedelta(days=DAYS - 1)
TIMES = re.compile(rb'^\{"start_time":\d+,"end_time":\d+,')
#: A line longer than this lists days; a counted range is far shorter.
LONGEST = 240
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _spread(target: Path, second: int) -> Path:
    """Two records a day for DAYS days, from the sample's Felix lines (``second``: the second
    of the minute they start at, so that two logs hold different records)."""
    lines = (ROOT / "sample_logs" / "enterprise" / "worker-1" / "flows.log").read_bytes().splitlines()
    start = int(dt.datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=dt.UTC).timestamp())
    with open(target, "wb") as out:
        for i in range(DAYS * 2):
            at = start + (i // 2) * 86_400 + 3_600 + (i % 2) * 300 + second
            head = b'{"start_time":%d,"end_time":%d,' % (at, at + 300)
            out.write(TIMES.sub(head, lines[i % len(lines)], count=1) + b"\n")
    return target


def _assert_counted(text: str) -> None:
    """Every line short, and at most three dates on any (the first and last of a range, and a
    cutoff such as prune's), never a list of them."""
    for line in text.splitlines():
        assert len(line) <= LONGEST, line[:300]
        assert len(DATE.findall(line)) <= 3, line[:300]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("logs")
    return _spread(folder / "a.log", 0), _spread(folder / "b.log", 20)


@pytest.fixture(scope="module")
def year_store(tmp_path_factory: pytest.TempPathFactory, logs: tuple[Path, Path]) -> Path:
    store = tmp_path_factory.mktemp("store") / "s"
    result = run_cli("ingest", "--store", store, logs[0])
    assert result.code == 0, result
    return store


def _copy(store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "s"
    shutil.copytree(store, copy)
    return copy


def test_ingest_counts_the_partitions_it_touched(tmp_path: Path, logs: tuple[Path, Path]) -> None:
    result = run_cli("ingest", "--store", tmp_path / "s", logs[0])
    assert result.code == 0, result
    assert f"partitions touched: {DAYS}: {FIRST} … {LAST}" in result.stderr
    _assert_counted(result.stderr + result.stdout)


def test_status_gives_the_range_of_partitions(year_store: Path) -> None:
    result = run_cli("status", "--store", year_store)
    assert result.code == 0, result
    assert f"partitions:   {DAYS} ({FIRST} .. {LAST})" in result.stdout
    _assert_counted(result.stdout + result.stderr)


def test_verify_of_an_intact_store_is_one_line(year_store: Path) -> None:
    result = run_cli("verify", "--store", year_store)
    assert result.code == 0, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "is intact" in result.stderr
    _assert_counted(result.stderr)


def test_compact_counts_the_days_it_compacted(
    tmp_path: Path, year_store: Path, logs: tuple[Path, Path]
) -> None:
    store = _copy(year_store, tmp_path)
    assert run_cli("ingest", "--store", store, logs[1]).code == 0  # a second file in every day
    result = run_cli("compact", "--store", store)
    assert result.code == 0, result
    assert f"compacted {DAYS} day(s) ({FIRST} .. {LAST})" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    _assert_counted(result.stderr + result.stdout)


def test_prune_counts_the_partitions_it_removed(tmp_path: Path, year_store: Path) -> None:
    store = _copy(year_store, tmp_path)
    result = run_cli("prune", "--store", store, "--older-than", "1d")
    assert result.code == 0, result
    assert f"pruned {DAYS} partition(s)" in result.stderr and f"({FIRST} .. {LAST})" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    _assert_counted(result.stderr + result.stdout)


def test_repair_of_a_lost_manifest_is_one_line(tmp_path: Path, year_store: Path) -> None:
    store = _copy(year_store, tmp_path)
    (store / "manifest.json").unlink()
    result = run_cli("repair", "--store", store)
    assert result.code == 0, result
    assert "rebuilt the manifest" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    _assert_counted(result.stderr + result.stdout)
    assert run_cli("verify", "--store", store, "--quick").code == 0


def test_repair_of_files_lost_on_every_day_lists_a_few_and_counts_the_rest(
    tmp_path: Path, year_store: Path
) -> None:
    store = _copy(year_store, tmp_path)
    lost = sorted((store / "flows").glob("date=*/*.parquet"))
    assert len(lost) == DAYS
    for path in lost:
        path.unlink()
    result = run_cli("repair", "--store", store)
    assert result.code == 0, result
    lines = result.stderr.splitlines()
    assert sum(line.startswith("repair: missing: ") for line in lines) == 10
    assert f"repair: … and {DAYS - 10} more 'missing' file(s) (--json lists every one)" in lines
    assert len(lines) < 20
    _assert_counted(result.stderr + result.stdout)


def test_repair_json_lists_every_lost_file(tmp_path: Path, year_store: Path) -> None:
    store = _copy(year_store, tmp_path)
    for path in sorted((store / "flows").glob("date=*/*.parquet")):
        path.unlink()
    result = run_cli("repair", "--store", store, "--json")
    assert result.code == 0, result
    actions = json.loads(result.stdout)["actions"]
    assert sum(action.startswith("missing: ") for action in actions) == DAYS
