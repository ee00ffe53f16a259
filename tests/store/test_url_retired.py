"""The files a commit of the URL writer retires (:mod:`flowlens.store.hadoop_commit`): kept for a
grace with the time they were retired, then deleted by a later writer; never a file the manifest
lists. Run over a local folder (the URL writer works through any StoreFiles) to be fast; the same
over ``viewfs://`` is in tests/ingest/test_spark_url_maintenance.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowlens.store.hadoop_commit as hadoop_commit
from flowlens.ingest import ingest
from flowlens.store import Store, check
from flowlens.store.compact import compact
from flowlens.store.hadoop_commit import RETIRED_SINCE, open_url_writer
from flowlens.store.layout import Snapshot
from flowlens.store.lifecycle import compaction_plan
from tests.store.helpers import log_lines, seen, valid, write_log


def _three_small_files(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store")
    lines = log_lines(18)
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 6 : (part + 1) * 6]))])
    store.lock_path.unlink()  # (the local writers' flock file)
    return store


def test_compacted_files_wait_for_the_grace_then_the_next_writer_deletes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _three_small_files(tmp_path)
    old = store.flow_files() + list(store.snapshot().summaries().values())
    with open_url_writer(store) as writer:
        result = compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))
    assert (result.files_before, result.files_after) == (3, 1)
    manifest = store.read_manifest()
    rels = sorted(p.relative_to(store.root).as_posix() for p in old)
    assert sorted(manifest["retired"]) == rels and sorted(manifest[RETIRED_SINCE]) == rels
    with open_url_writer(store) as writer:  # within the grace: kept
        assert writer.recovered == []
    assert all(p.exists() for p in old)
    monkeypatch.setattr(hadoop_commit, "RETIRED_GRACE", 0.0)
    with open_url_writer(store) as writer:
        assert writer.recovered == ["deleted 6 file(s) retired more than 0 seconds ago"]
    assert not any(p.exists() for p in old)
    assert seen(store) == valid(log_lines(18))
    assert not check(store, deep=True).problems


def test_a_retired_file_the_manifest_still_lists_is_never_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _three_small_files(tmp_path)
    manifest = store.read_manifest()
    listed = sorted(manifest["files"])[0]
    manifest["retired"] = [listed]
    manifest[RETIRED_SINCE] = {listed: "2020-01-01T00:00:00+00:00"}
    store.manifest_path.write_text(json.dumps(manifest))
    monkeypatch.setattr(hadoop_commit, "RETIRED_GRACE", 0.0)
    with open_url_writer(store) as writer:
        assert writer.delete_retired() == []
    assert (store.root / listed).exists()
