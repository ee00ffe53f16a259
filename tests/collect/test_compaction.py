"""The live collector keeps its store compact on its own: the real push receiver over HTTP on
127.0.0.1 commits one file per micro-batch, and between commits compacts a closed day that holds
too many small files, as ``flowlens ingest`` does after a run; answers do not change."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from flowlens.collect.committer import CollectOptions, Committer
from flowlens.engine import connect
from flowlens.sample import SampleOptions, iter_lines, load_model
from flowlens.store import Store, open_writer
from flowlens.store.lifecycle import Lifecycle
from tests.collect.conftest import stored_rows
from tests.collect.helpers.push import Sender, Served, lines_body

COMMITS = 10
COMPACT_FILES = 4


@pytest.fixture(scope="module")
def closed_day_windows() -> list[list[str]]:
    """Goldmane emitter windows of the sample cluster on a day that closed two days ago."""
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
    options = SampleOptions(start=day, days=1 / 24, formats=("goldmane",))
    by_start: dict[int, list[str]] = {}
    for _, line in iter_lines(load_model(), options, "goldmane"):
        by_start.setdefault(json.loads(line)["start_time"], []).append(line)
    return [by_start[k] for k in sorted(by_start)][:COMMITS]


def feed(store: Store, windows: list[list[str]], lifecycle: Lifecycle) -> None:
    served = Served(store, collect=CollectOptions(lock_wait=10.0, lifecycle=lifecycle, maintain_every=0))
    try:
        sender = Sender(served.port)
        for window in windows:
            assert sender.post_until_ok(lines_body(window))["status"] == "committed"
    finally:
        served.close()


def answers(store: Store) -> dict[str, pa.Table]:
    with connect(store) as engine:
        return {name: engine.run(name) for name in ("denied", "unexpected-allowed", "top-talkers")}


def test_a_closed_day_with_too_many_files_is_compacted_between_commits_and_answers_are_unchanged(
    tmp_path: Path, closed_day_windows: list[list[str]]
) -> None:
    assert len(closed_day_windows) == COMMITS
    kept = Store(tmp_path / "kept")
    feed(kept, closed_day_windows, Lifecycle(compact_files=0))  # 0: never compact
    compacted = Store(tmp_path / "compacted")
    feed(compacted, closed_day_windows, Lifecycle(compact_files=COMPACT_FILES))

    assert len(kept.flow_files()) == COMMITS  # one file per micro-batch
    # compacted after the 5th commit (5 files > 4) and the 9th: the 10th commit's file and one
    assert len(compacted.flow_files()) == 2
    assert stored_rows(compacted) == stored_rows(kept)
    assert answers(compacted) == answers(kept)
    assert any(table.num_rows for table in answers(kept).values())


def test_the_collector_checks_at_most_every_maintain_every_seconds_and_skips_a_locked_store(
    tmp_path: Path, closed_day_windows: list[list[str]]
) -> None:
    store = Store(tmp_path / "store")
    feed(store, closed_day_windows[:6], Lifecycle(compact_files=0))
    assert len(store.flow_files()) == 6
    committer = Committer(
        store, "later", CollectOptions(lifecycle=Lifecycle(compact_files=COMPACT_FILES), maintain_every=3600)
    )
    try:
        with open_writer(store):  # a cron ingest holds the store: it maintains it itself
            assert committer.maintain() == []
        assert len(store.flow_files()) == 6
        notes = committer.maintain()
        assert len(notes) == 1 and notes[0].startswith("compacted 1 day(s)")
        assert len(store.flow_files()) == 1
        assert committer.maintain() == []  # checked less than an hour ago: nothing done
    finally:
        committer.close()
