"""flowlens.store.lifecycle: retention removes old partitions (and says so in one line), and a
source ingested before still adds nothing after pruning."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flowlens.errors import UsageError
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store, check, open_writer
from flowlens.store.lifecycle import Lifecycle, parse_age, prune
from tests.store.helpers import log_lines, quarantined, seen, valid, write_log

# log_lines(120): 2023-02-03 23:00 .. 2023-02-04 08:55, every third line starts 5 minutes later.
SECOND_DAY = 36  # lines[36:] start on 2023-02-04
LATER = dt.datetime(2023, 2, 5, 12, tzinfo=dt.UTC)


def test_prune_removes_the_old_partitions_and_says_what_in_one_line(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(120)
    log = write_log(tmp_path / "flows.log", lines)
    ingest(store, [str(log)], now=dt.datetime(2023, 2, 3, 23, 59, tzinfo=dt.UTC))
    old_files = [p for p in store.flow_files() if "2023-02-03" in str(p)]
    with open_writer(store) as writer:
        result = prune(writer, 1, LATER)
    assert result.line() == (
        "pruned 1 partition(s) older than 2023-02-04 (2023-02-03 .. 2023-02-03): 36 rows in 1 flows file(s), "
        "and 0 quarantine file(s) (0 line(s)) of ingests before it; lineage checkpoints kept"
    )
    assert seen(store) == valid(lines[SECOND_DAY:])
    assert not any(p.exists() for p in old_files)
    assert not check(store, deep=True).problems
    again = ingest(store, [str(log)])
    assert again.total("rows") == 0 and again.total("skipped") == len(lines)
    assert seen(store) == valid(lines[SECOND_DAY:])


def test_prune_with_nothing_old_enough_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [str(write_log(tmp_path / "flows.log", log_lines(30)))])
    generation = store.snapshot().generation
    with open_writer(store) as writer:
        result = prune(writer, 3650, LATER)
    assert result.line() == "pruned nothing: no partition older than 2013-02-07"
    assert store.snapshot().generation == generation


def test_quarantine_files_of_ingests_older_than_the_retention_are_pruned_too(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    old = write_log(tmp_path / "old.log", log_lines(30, bad_every=5))
    ingest(store, [str(old)], now=dt.datetime(2023, 2, 1, tzinfo=dt.UTC))
    new = write_log(tmp_path / "new.log", log_lines(30, start=300, bad_every=5))
    ingest(store, [str(new)], now=dt.datetime(2023, 2, 5, tzinfo=dt.UTC))
    with open_writer(store) as writer:
        result = prune(writer, 2, LATER)
    assert (result.quarantine_files, result.quarantined) == (1, 6)
    assert {name for name, _ in quarantined(store)} == {"new.log"}


def test_ingest_applies_the_retention_of_its_options_after_its_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(120)
    options = IngestOptions(lifecycle=Lifecycle(retention_days=1))
    summary = ingest(store, [str(write_log(tmp_path / "flows.log", lines))], options, now=LATER)
    assert [note.split(":")[0] for note in summary.maintenance] == [
        "pruned 1 partition(s) older than 2023-02-04 (2023-02-03 .. 2023-02-03)"
    ]
    assert seen(store) == valid(lines[SECOND_DAY:])


@pytest.mark.parametrize(("text", "days"), [("90d", 90), ("12w", 84), ("7", 7), (" 2 D ", 2)])
def test_an_age_is_days_or_weeks(text: str, days: int) -> None:
    assert parse_age(text) == days


@pytest.mark.parametrize("text", ["0d", "-3d", "3m", "forever", ""])
def test_a_bad_age_is_a_usage_error_naming_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--older-than"):
        parse_age(text)
