"""Exactly once: the same content never lands twice, whatever its name, and nothing is missed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash

from flowlens.errors import StoreLockedError, StrictModeError
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import open_writer
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_C
from tests.ingest.helpers.numbered import numbered_lines as _lines
from tests.ingest.helpers.numbered import stored_numbers as _bytes_in
from tests.ingest.helpers.numbered import write_lines as _write


def test_ingesting_the_same_file_twice_adds_nothing(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", _lines(120))
    first = run(log)
    second = run(log)
    assert first.total("rows") == 120
    assert second.total("rows") == 0
    assert second.total("skipped") == 120
    assert second.balanced
    assert _bytes_in(store) == list(range(120))


def test_a_rotated_and_gzipped_file_is_not_ingested_twice(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", _lines(100))
    run(log)
    # Felix keeps writing, then the file is rotated and compressed under another name.
    rotated = tmp_path / "flows.log.1.gz"
    rotated.write_bytes(gzip.compress(("".join(line + "\n" for line in _lines(130))).encode()))
    log.unlink()
    summary = run(rotated)
    assert summary.total("rows") == 30
    assert summary.total("skipped") == 100
    assert _bytes_in(store) == list(range(130))


def test_the_same_content_under_another_name_adds_nothing(tmp_path, store, run):
    a = _write(tmp_path / "a.log", _lines(40))
    b = tmp_path / "copy-of-a.log"
    b.write_bytes(a.read_bytes())
    run(a)
    summary = run(b)
    assert summary.total("rows") == 0 and summary.total("skipped") == 40


def test_a_growing_file_continues_where_the_last_run_stopped_and_a_partial_line_waits(tmp_path, store, run):
    lines = _lines(60)
    log = tmp_path / "flows.log"
    half = lines[30][: len(lines[30]) // 2]
    _write(log, lines[:30], partial=half)
    first = run(log)
    assert first.total("rows") == 30
    assert first.total("pending_bytes") == len(half)
    assert first.total("quarantined") == 0
    _write(log, lines)  # the partial line was completed and more lines followed
    second = run(log)
    assert second.total("rows") == 30
    assert second.total("skipped") == 30
    assert second.balanced
    assert _bytes_in(store) == list(range(60))
    assert [
        r["source_line"] for r in rows_of(store, "SELECT source_line FROM f ORDER BY source_line")
    ] == list(range(1, 61))


def test_checkpoints_of_an_older_flowlens_still_resume_a_growing_file(tmp_path, store, run):
    """Checkpoints used to carry a BLAKE2b of the bytes read; they now carry an XXH3-128. A store
    written before keeps resuming, and the next checkpoint is written with the new hash."""
    lines = _lines(40)
    log = _write(tmp_path / "flows.log", lines[:25])
    run(log)
    manifest = json.loads(store.manifest_path.read_text())
    (lineage,) = manifest["sources"]
    for cp in lineage["checkpoints"]:
        assert set(cp) == {"bytes", "lines", "xxh3_128"}
        prefix = log.read_bytes()[: cp["bytes"]]
        assert cp["xxh3_128"] == xxhash.xxh3_128(prefix).hexdigest()
        del cp["xxh3_128"]
        cp["blake2b"] = hashlib.blake2b(prefix, digest_size=32).hexdigest()
    store.manifest_path.write_text(json.dumps(manifest))
    _write(log, lines)
    summary = run(log)
    assert (summary.total("rows"), summary.total("skipped")) == (15, 25)
    assert _bytes_in(store) == list(range(40))
    newest = json.loads(store.manifest_path.read_text())["sources"][0]["checkpoints"][-1]
    assert newest["xxh3_128"] == xxhash.xxh3_128(log.read_bytes()).hexdigest()


def test_a_checkpoint_whose_bytes_changed_is_not_resumed(tmp_path, store, run):
    lines = _lines(20)
    log = _write(tmp_path / "flows.log", lines)
    run(log)
    _write(log, [lines[0], *_lines(19, start=500)])  # the same first line, other bytes after it
    summary = run(log)
    # Read again from its first line: only its first record, stored already, is not stored again.
    assert summary.total("rows") == 19
    assert summary.total("skipped") == summary.total("already_stored") == 1
    assert _bytes_in(store) == [*range(20), *range(500, 519)]


def test_two_files_sharing_a_first_line_but_not_content_are_both_ingested(tmp_path, store, run):
    lines = _lines(10)
    a = _write(tmp_path / "a.log", lines)
    b = _write(tmp_path / "b.log", [lines[0], *_lines(5, start=100)])
    run(a)
    summary = run(b)
    assert summary.total("rows") == 5  # the shared first record is stored already
    assert summary.total("already_stored") == 1
    assert _bytes_in(store) == [*range(10), *range(100, 105)]


def test_standard_input_is_read_and_deduplicated(tmp_path, store):
    data = "".join(line + "\n" for line in _lines(25)).encode()
    s1 = ingest(store, ["-"], IngestOptions(), stdin=io.BytesIO(data))
    s2 = ingest(store, ["-"], IngestOptions(), stdin=io.BytesIO(gzip.compress(data)))
    assert (s1.total("rows"), s2.total("rows"), s2.total("skipped")) == (25, 0, 25)


def test_strict_mode_fails_on_a_bad_line_and_writes_nothing(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", [*_lines(10), "{not json"])
    with pytest.raises(StrictModeError, match=r"flows.log:11: invalid JSON"):
        run(log, strict=True)
    assert store.flow_files() == []
    assert not store.manifest_path.exists() or json.loads(store.manifest_path.read_text())["sources"] == []
    # and a normal run afterwards still ingests everything
    summary = run(log)
    assert (summary.total("rows"), summary.total("quarantined")) == (10, 1)


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", _lines(5))
    with open_writer(store), pytest.raises(StoreLockedError, match="is being written by flowlens pid"):
        run(log)


_KILL_SCRIPT = """
import sys
from pathlib import Path
import flowlens.ingest.sources, flowlens.ingest.writer
from flowlens.ingest import ingest
from flowlens.ingest.pipeline import Ingester
from flowlens.store import Store
flowlens.ingest.sources.BLOCK_BYTES = 4096      # many small blocks
flowlens.ingest.writer.ROWS_PER_ROW_GROUP = 64
orig = Ingester._process
def slow(self, *a, **k):
    n = orig(self, *a, **k)
    print("progress", flush=True)
    import time; time.sleep(0.05)
    return n
Ingester._process = slow
ingest(Store(Path(sys.argv[1])), [sys.argv[2]])
"""


@pytest.mark.slow
def test_a_killed_ingest_leaves_a_consistent_store_and_the_next_run_completes_it(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", _lines(150))
    script = tmp_path / "kill_me.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store.root), str(log)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    for _ in range(5):  # let it get well into the file
        assert proc.stdout.readline().startswith(b"progress")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The store reads consistently: nothing of the unfinished ingest is visible.
    assert rows_of(store) == []
    summary = run(log)
    assert summary.total("rows") == 150
    assert any("discarded unfinished commit" in line for line in summary.recovered)
    assert _bytes_in(store) == list(range(150))
    assert not list(store.staging_dir.iterdir())


def test_a_commit_interrupted_after_it_was_decided_is_finished_by_the_next_writer(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", _lines(30))
    import flowlens.store.commit as commit

    real_apply = commit.apply_commit
    calls = {"n": 0}

    def crash_after_first_move(store, stage, plan):
        calls["n"] += 1
        src_rel, dst_rel = plan["moves"][0]
        (store.root / dst_rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / src_rel, store.root / dst_rel)
        raise KeyboardInterrupt  # the process dies between two steps of the commit

    commit.apply_commit = crash_after_first_move
    try:
        with pytest.raises(KeyboardInterrupt):
            run(log)
    finally:
        commit.apply_commit = real_apply
    assert calls["n"] == 1
    # The next writer finishes the decided commit, and the file is then known: nothing doubles.
    summary = run(log)
    assert any("finished interrupted commit" in line for line in summary.recovered)
    assert summary.total("rows") == 0 and summary.total("skipped") == 30
    assert _bytes_in(store) == list(range(30))


def test_a_second_ingest_running_at_the_same_time_fails_cleanly(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", _lines(40))
    script = tmp_path / "slow.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store.root), str(log)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"progress")
    other = _write(tmp_path / "other.log", _lines(3, start=1000))
    with pytest.raises(StoreLockedError):
        run(other)
    proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    time.sleep(0)
    assert len(_bytes_in(store)) == 40


@pytest.mark.parametrize("kind", ["whisker.json", "export.json.gz"])
def test_a_whole_document_is_read_once_per_run_and_once_stored(tmp_path, store, monkeypatch, kind):
    """A whole document is opened and decompressed once per run: its format, its checkpoint
    and its records all come from the one read (it was read three times: head, checkpoint,
    records)."""
    from flowlens.ingest import sources
    from tests.ingest.helpers import WHISKER_ITEM

    if kind == "whisker.json":
        items = [{**WHISKER_ITEM, "start_time": f"2026-01-01T00:{i:02d}:00Z"} for i in range(5)]
        data = json.dumps({"total": {"totalPages": 1, "totalItems": 5}, "items": items}).encode()
    else:
        hits = [
            {"_id": str(i), "_index": "flows", "_source": {**json.loads(EXAMPLE_C), "bytes_in": i}}
            for i in range(5)
        ]
        data = gzip.compress(json.dumps({"took": 1, "hits": {"hits": hits}}).encode())
    path = tmp_path / kind
    path.write_bytes(data)
    opened: list[str] = []
    real_open = sources.Source.open

    def counting_open(self):
        opened.append(self.path)
        return real_open(self)

    monkeypatch.setattr(sources.Source, "open", counting_open)
    first = ingest(store, [str(path)])
    assert (first.total("rows"), len(opened)) == (5, 1)
    again = ingest(store, [str(path)])
    assert (again.total("rows"), again.total("skipped"), len(opened)) == (0, 5, 2)
