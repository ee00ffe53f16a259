"""flowlens.store.journal: one entry per commit, a full one every so often, and a replay that
rebuilds exactly the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowlens.store.commit as commit
from flowlens.ingest import ingest
from flowlens.store import Store
from flowlens.store.journal import JournalError, list_entries, replay
from flowlens.store.repair import repair
from tests.store.helpers import log_lines, seen, valid, write_log


def test_the_journal_replays_to_the_manifest_after_every_commit_and_stays_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "CHECKPOINT_EVERY", 4)
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    lines = log_lines(100, bad_every=9)
    for run in range(1, 11):
        write_log(log, lines[: 10 * run])
        ingest(store, [str(log)])
        manifest = json.loads(store.manifest_path.read_text())
        assert replay(store.journal_dir) == manifest
        entries = list_entries(store.journal_dir)
        assert entries[-1].generation == manifest["generation"]
        assert len(entries) <= 4 and entries[0].full
    assert [(e.generation, e.full) for e in list_entries(store.journal_dir)] == [
        (8, True),
        (9, False),
        (10, False),
    ]


def test_a_missing_entry_stops_the_replay_and_repair_keeps_what_it_can_prove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "CHECKPOINT_EVERY", 100)
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    lines = log_lines(90)
    backup = b""
    for run in range(1, 4):
        write_log(log, lines[: 30 * run])
        ingest(store, [str(log)])
        if run == 1:
            backup = store.manifest_path.read_bytes()
    middle = [e for e in list_entries(store.journal_dir) if e.generation == 2]
    middle[0].path.unlink()
    with pytest.raises(JournalError, match="entry 2 is missing"):
        replay(store.journal_dir)
    store.manifest_path.write_bytes(backup)  # and the manifest is an old copy
    result = repair(store)
    assert any("the journal cannot rebuild it" in a for a in result.actions)
    assert any("kept the stale manifest" in a for a in result.actions)
    assert not result.after.damaged
    ingest(store, [str(log)])
    assert seen(store) == valid(lines)
