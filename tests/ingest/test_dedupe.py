"""Line-granularity dedupe: a copy that diverges from, or stops short of, what is stored adds only
what is new (multiset: a record stored k times and read m times adds max(0, m - k))."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flowlens.errors import StrictModeError
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store, describe, render_status
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_C, GOLDMANE_EXAMPLE, WHISKER_ITEM
from tests.ingest.helpers.numbered import numbered_lines as _lines
from tests.ingest.helpers.numbered import stored_numbers as _bytes_in
from tests.ingest.helpers.numbered import write_lines as _write


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


def test_a_copy_with_a_line_inserted_and_one_deleted_adds_only_the_inserted_one(tmp_path, store, run):
    lines = _lines(60)
    run(_write(tmp_path / "flows.log", lines))
    copy = [*lines[:20], *_lines(1, start=900), *lines[20:40], *lines[41:]]
    summary = run(_write(tmp_path / "copy.log", copy))
    assert (summary.total("rows"), summary.total("already_stored")) == (1, 59)
    assert summary.balanced
    assert _bytes_in(store) == [*range(60), 900]


def test_a_copy_with_its_lines_reordered_adds_nothing(tmp_path, store, run):
    lines = _lines(60)
    run(_write(tmp_path / "flows.log", lines))
    summary = run(_write(tmp_path / "shuffled.log", [lines[0], *reversed(lines[1:])]))
    assert summary.total("rows") == 0
    assert summary.total("skipped") == summary.total("already_stored") == 60
    assert _bytes_in(store) == list(range(60))


def test_a_copy_cut_mid_line_adds_nothing_and_its_cut_line_waits(tmp_path, store, run):
    lines = _lines(60)
    log = _write(tmp_path / "flows.log", lines)
    run(log)
    cut = tmp_path / "cut.log"
    cut.write_bytes(log.read_bytes()[: len(log.read_bytes()) * 2 // 3])
    summary = run(cut)
    assert summary.total("rows") == 0
    assert summary.total("pending_bytes") > 0
    assert summary.balanced
    assert _bytes_in(store) == list(range(60))


def test_a_line_the_log_repeats_keeps_its_repeats(tmp_path, store, run):
    lines = _lines(30)
    run(_write(tmp_path / "flows.log", [*lines, lines[5]]))  # line 5 logged twice
    # A copy with line 5 three times and one line edited: one more line 5, and the edited line.
    copy = [*lines[:10], _edited(lines[10], 700), *lines[11:], lines[5], lines[5]]
    summary = run(_write(tmp_path / "copy.log", copy))
    assert summary.total("rows") == 2
    assert summary.total("already_stored") == 30
    assert summary.balanced
    assert _bytes_in(store) == sorted([*range(30), 5, 5, 700])


def test_a_copy_ingested_in_the_same_run_as_its_original_adds_only_what_is_new(tmp_path, store, run):
    lines = _lines(80)
    original = _write(tmp_path / "a.log", lines)
    copy = _write(tmp_path / "b.log", [*lines[:40], _edited(lines[40], 5_000), *lines[41:]])
    summary = run(original, copy)
    assert summary.total("rows") == 81
    assert summary.total("already_stored") == 79
    assert summary.balanced
    assert _bytes_in(store) == sorted([*range(80), 5_000])


def test_a_checked_copy_read_again_adds_nothing_and_is_not_checked_again(tmp_path, store, run, monkeypatch):
    import flowlens.ingest.dedupe as dedupe

    lines = _lines(60)
    run(_write(tmp_path / "flows.log", lines))
    copy = _write(tmp_path / "copy.log", [*lines[:30], _edited(lines[30], 3_000), *lines[31:]])
    checks = []
    real = dedupe.only_new
    monkeypatch.setattr(
        dedupe, "only_new", lambda held, *a, **kw: checks.append(held) or real(held, *a, **kw)
    )
    first = run(copy)
    again = run(copy)
    assert first.total("rows") == 1 and len(checks) == 1
    assert again.total("rows") == 0
    assert again.total("skipped") == 60 and again.total("already_stored") == 0
    assert len(checks) == 1  # resumed at the end of its own lineage: nothing to check
    assert not list(store.staging_dir.iterdir())  # the rows held for the check are gone
    assert _bytes_in(store) == sorted([*range(60), 3_000])


def test_the_original_growing_after_a_checked_copy_continues_without_a_check(
    tmp_path, store, run, monkeypatch
):
    import flowlens.ingest.dedupe as dedupe

    lines = _lines(90)
    log = _write(tmp_path / "flows.log", lines[:60])
    run(log)
    run(_write(tmp_path / "copy.log", lines[:45]))  # a prefix: checked, nothing new
    calls = []
    monkeypatch.setattr(dedupe, "only_new", lambda *a, **kw: calls.append(1) or [])
    _write(log, lines)
    summary = run(log)
    assert summary.total("rows") == 30 and summary.total("skipped") == 60
    assert calls == []
    assert _bytes_in(store) == list(range(90))


def test_a_copy_whose_first_line_was_edited_adds_only_that_line(tmp_path, store, run):
    lines = _lines(20)
    run(_write(tmp_path / "flows.log", lines))
    copy = _write(tmp_path / "copy.log", [_edited(lines[0], 800), *lines[1:]])
    summary = run(copy)
    assert summary.total("rows") == 1
    assert summary.total("already_stored") == 19
    again = run(copy)
    assert again.total("rows") == 0 and again.total("already_stored") == 0 and again.total("skipped") == 20
    assert _bytes_in(store) == sorted([*range(20), 800])


def test_a_copy_with_a_line_inserted_before_its_first_adds_only_that_line(tmp_path, store, run):
    lines = _lines(20)
    run(_write(tmp_path / "flows.log", lines))
    summary = run(_write(tmp_path / "copy.log", [*_lines(1, start=900), *lines]))
    assert (summary.total("rows"), summary.total("already_stored")) == (1, 20)


def test_new_files_and_a_rotation_are_not_checked(tmp_path, store, run, monkeypatch):
    import flowlens.ingest.dedupe as dedupe

    calls = []
    monkeypatch.setattr(dedupe, "only_new", lambda *a, **kw: calls.append(1) or [])
    log = _write(tmp_path / "flows.log", _lines(40))
    run(log)
    rotated = tmp_path / "flows.log.1"
    log.rename(rotated)
    _write(rotated, _lines(50))  # written to until it was rotated
    _write(log, _lines(30, start=50))  # the new flows.log
    summary = run(tmp_path)
    assert summary.total("rows") == 40 and summary.total("skipped") == 40
    assert calls == []
    assert _bytes_in(store) == list(range(80))


def test_strict_mode_checks_a_copy_against_this_runs_rows_without_committing_before_the_end(
    tmp_path, store, run
):
    lines = _lines(60)
    _write(tmp_path / "old.log", lines[:30])
    run(tmp_path / "old.log")
    grown = _write(tmp_path / "old.log", lines)  # a checkpoint at 30 and one at 60 lines below
    new = _write(tmp_path / "new.log", _lines(10, start=500))
    copy = _write(tmp_path / "copy.log", [*lines[:45], "{not json"])
    with pytest.raises(StrictModeError):  # the copy is checked after new.log was staged
        run(grown, new, copy, strict=True)
    assert _bytes_in(store) == list(range(30))  # nothing of the strict run was written
    _write(copy, [*lines[:45], _edited(lines[45], 9_000)])
    summary = run(grown, new, copy, strict=True)
    # the copy resumes at old.log's first checkpoint (30 lines); its next 15 were staged by this run
    assert (summary.total("rows"), summary.total("already_stored")) == (30 + 10 + 1, 15)
    assert summary.balanced
    assert _bytes_in(store) == sorted([*range(60), *range(500, 510), 9_000])


def test_strict_mode_stops_at_a_bad_line_of_a_checked_copy_and_writes_nothing(tmp_path, store, run):
    lines = _lines(40)
    run(_write(tmp_path / "flows.log", lines))
    copy = _write(tmp_path / "copy.log", [*lines[:20], "{not json", _edited(lines[20], 4_000), *lines[21:]])
    with pytest.raises(StrictModeError):
        run(copy, strict=True)
    assert _bytes_in(store) == list(range(40))
    summary = run(copy)
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)
    assert summary.balanced
    assert _bytes_in(store) == sorted([*range(40), 4_000])


def test_the_summary_json_and_status_show_the_lines_already_stored(tmp_path, store, run):
    lines = _lines(30)
    run(_write(tmp_path / "flows.log", lines))
    summary = run(_write(tmp_path / "copy.log", [*lines[:10], _edited(lines[10], 6_000), *lines[11:]]))
    data = summary.as_dict()
    assert data["already_stored"] == 29
    assert data["per_file"][0]["already_stored"] == 29
    assert (
        data["lines_read"]
        == data["rows"] + data["quarantined"] + data["skipped_already_ingested"] + data["ignored"]
    )
    status = describe(store)
    assert status.as_dict()["last_ingest"]["already_stored"] == 29
    assert "(29 already stored)" in render_status(status)


# --- any copy, any line-based format ----------------------------------------------------------

BASES = {
    "enterprise": json.loads(EXAMPLE_C),
    "goldmane": json.loads(GOLDMANE_EXAMPLE),
    "whisker": WHISKER_ITEM,
}


def _record(fmt: str, marker: int) -> str:
    """A record of ``fmt`` told apart by ``marker`` (its bytes_in), over three days."""
    doc = {**BASES[fmt], "bytes_in": marker}
    if fmt != "whisker":
        doc["start_time"] = BASES[fmt]["start_time"] + 86_400 * (marker % 3)
        doc["end_time"] = doc["start_time"] + 300
    return json.dumps(doc)


EDITS = st.lists(
    st.tuples(st.sampled_from(["edit", "insert", "delete", "duplicate", "swap"]), st.integers(0, 10_000)),
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fmt=st.sampled_from(sorted(BASES)),
    original=st.lists(st.integers(0, 40), min_size=1, max_size=40),
    split=st.integers(0, 40),
    edits=EDITS,
    cut=st.floats(0.0, 1.0),
)
def test_any_copy_adds_exactly_the_records_it_has_more_of_than_the_store(
    tmp_path_factory, fmt, original, split, edits, cut
):
    root = tmp_path_factory.mktemp("copy")
    store = Store(root / "store")
    log = root / "flows.log"
    # The original, ingested in two steps (a checkpoint in the middle), may repeat a record.
    steps = sorted({min(split, len(original)), len(original)} - {0})
    for upto in steps:
        log.write_text("".join(_record(fmt, m) + "\n" for m in original[:upto]))
        ingest(store, [str(log)], IngestOptions(format=fmt))
    copy = list(original)
    fresh = 1_000
    for op, at in edits:
        i = at % (len(copy) + 1)
        if op == "insert" or not copy:
            copy.insert(i, fresh)
            fresh += 1
        elif op == "edit":
            copy[i % len(copy)] = fresh
            fresh += 1
        elif op == "delete":
            del copy[i % len(copy)]
        elif op == "duplicate":
            copy.insert(i, copy[i % len(copy)])
        elif len(copy) > 1:
            j = i % (len(copy) - 1)
            copy[j], copy[j + 1] = copy[j + 1], copy[j]
    data = "".join(_record(fmt, m) + "\n" for m in copy).encode()
    data = data[: int(len(data) * cut)]
    whole = copy[: data.count(b"\n")]  # the cut line waits for the rest of it
    (root / "copy.log").write_bytes(data)
    # A copy is told from a new file by its first line, or by one of its first 8 lines being one
    # of the first 8 the original's lineage started with (documented in docs/ingest.md).
    known = bool(whole) and (
        whole[0] == original[0] or not set(whole[:8]).isdisjoint(original[: steps[0]][:8])
    )
    stored = Counter(original)
    # Known limit (docs/ingest.md): a copy resumes after the longest prefix it shares with a
    # checkpoint of the original, and its later records are compared with the whole store, the
    # prefix's own records included; a record the copy repeats from that prefix is then taken for
    # stored. Shown by the strict xfail test below; left out here.
    resumed = max((s for s in steps if s <= len(whole) and whole[:s] == original[:s]), default=0)
    assume(not set(whole[:resumed]) & set(whole[resumed:]))
    if data:
        summary = ingest(store, [str(root / "copy.log")], IngestOptions(format=fmt))
        assert summary.balanced
        (fs,) = summary.files
        assert fs.lines_read == len(whole)
        if known:
            assert fs.rows == sum(max(0, n - stored[m]) for m, n in Counter(whole).items())
        else:
            assert fs.rows == len(whole)
    expected = stored | Counter(whole) if known else stored + Counter(whole)
    assert Counter(_markers(store)) == expected


@pytest.mark.xfail(
    strict=True,
    reason="known limit: a copy's records are compared with the whole store, the records of the "
    "checkpoint prefix it resumed after included, so a repeat of a prefix record is taken for stored",
)
def test_a_copy_repeating_a_record_of_the_prefix_it_resumed_after_keeps_the_repeat(tmp_path, store, run):
    log = tmp_path / "flows.log"
    for upto in (1, 2):  # checkpoints after record 0 and after record 1
        log.write_text("".join(_record("enterprise", m) + "\n" for m in (0, 1)[:upto]))
        run(log)
    copy = tmp_path / "copy.log"
    copy.write_text("".join(_record("enterprise", m) + "\n" for m in (0, 0, 1)))
    summary = run(copy)
    assert summary.total("rows") == 1  # the repeated record 0
    assert Counter(_markers(store)) == Counter({0: 2, 1: 1})


def _markers(store: Store) -> list[int]:
    return [r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f")]


# --- crash safety -------------------------------------------------------------------------------

_KILLED_WHILE_CHECKING = """
import sys, time
from pathlib import Path
import flowlens.ingest.dedupe as dedupe
from flowlens.ingest import ingest
from flowlens.store import Store

def stuck(*args, **kwargs):
    print("checking", flush=True)
    time.sleep(600)

dedupe.only_new = stuck
ingest(Store(Path(sys.argv[1])), sys.argv[2:])
"""


@pytest.mark.slow
def test_a_run_killed_while_checking_a_copy_leaves_what_it_committed_and_the_rerun_adds_the_rest_once(
    tmp_path, store, run
):
    lines = _lines(60)
    run(_write(tmp_path / "flows.log", lines))
    other = _write(tmp_path / "other.log", _lines(10, start=200))  # new: committed before the check
    copy = _write(tmp_path / "copy.log", [*lines[:30], _edited(lines[30], 9_000), *lines[31:]])
    script = tmp_path / "kill_me.py"
    script.write_text(_KILLED_WHILE_CHECKING)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store.root), str(other), str(copy)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"checking\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _bytes_in(store) == sorted([*range(60), *range(200, 210)])
    summary = run(other, copy)
    assert (summary.files[0].skipped, summary.files[0].rows) == (10, 0)
    assert (summary.files[1].rows, summary.files[1].already_stored) == (1, 59)
    assert summary.balanced
    assert _bytes_in(store) == sorted([*range(60), *range(200, 210), 9_000])
    assert not list(store.staging_dir.iterdir())


def test_a_commit_that_fails_after_a_check_leaves_the_store_as_it_was_and_the_rerun_is_exact(
    tmp_path, store, run, monkeypatch
):
    import flowlens.ingest.writer as writer

    lines = _lines(40)
    run(_write(tmp_path / "flows.log", lines))
    copy = _write(tmp_path / "copy.log", [*lines[:20], _edited(lines[20], 7_000), *lines[21:]])

    def fail(self, manifest, spans=()):
        raise KeyboardInterrupt  # the process dies before the commit is decided

    with monkeypatch.context() as patch:
        patch.setattr(writer.StagedCommit, "commit", fail)
        with pytest.raises(KeyboardInterrupt):
            run(copy)
    assert _bytes_in(store) == list(range(40))
    summary = run(copy)
    assert (summary.total("rows"), summary.total("already_stored")) == (1, 39)
    assert _bytes_in(store) == sorted([*range(40), 7_000])


def test_a_store_whose_files_lack_a_column_is_compared_as_having_no_value_there(tmp_path, store, run):
    """Files written by an older flowlens may lack a column that the rows read now have (here
    ``es_id`` in every stored file): their rows have no value there, as the flows view reads them."""
    import duckdb
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from flowlens.ingest.dedupe import only_new

    run(_write(tmp_path / "flows.log", _lines(5)))
    (stored,) = store.flow_files()
    table = pq.read_table(stored)
    assert pc.all(pc.is_null(table["es_id"])).as_py()  # (flows.log records carry no document id)
    old = tmp_path / "old.parquet"
    pq.write_table(table.drop_columns(["es_id"]), old)
    numbers = table["bytes_in"].to_pylist()
    changed = table.set_column(
        table.schema.get_field_index("bytes_in"),
        "bytes_in",
        pa.array([*numbers[:4], 7_000], table.schema.field("bytes_in").type),
    )
    held = tmp_path / "held.parquet"
    pq.write_table(changed, held)
    with duckdb.connect() as con:
        assert only_new(held, [old], con).tolist() == [4]


def test_a_checked_copy_and_a_new_file_of_the_same_day_are_written_together(tmp_path, store, run):
    """The rows kept from a checked copy and the next source's rows of the same day are written
    into one file: their tables (rows and deciding hits) must have the same columns in one order."""
    lines = _lines(40)
    run(_write(tmp_path / "flows.log", lines))
    copy = _write(tmp_path / "copy.log", [*lines[:20], _edited(lines[20], 6_000), *lines[21:]])
    new = _write(tmp_path / "new.log", _lines(10, start=300))  # the same 5-minute windows and day
    summary = run(copy, new)
    assert (summary.total("rows"), summary.total("already_stored")) == (11, 39)
    assert summary.balanced
    assert _bytes_in(store) == sorted([*range(40), 6_000, *range(300, 310)])


def test_a_copy_read_in_many_batches_with_their_own_labels_adds_only_its_edited_line(
    tmp_path, store, run, monkeypatch
):
    """The rows held for the check come back a batch at a time, each with the dictionaries of
    its label and trace strings (a read across two batches would mix two dictionaries)."""
    import flowlens.ingest.parse as parse
    import flowlens.ingest.sources as sources

    monkeypatch.setattr(sources, "BLOCK_BYTES", 2000)
    monkeypatch.setattr(parse, "BATCH_BYTES", 8000)
    lines = []
    for i, line in enumerate(_lines(300)):
        doc = json.loads(line)
        doc["source_labels"] = {"labels": [f"app=a{i // 20}", f"run=r{i}"]}
        lines.append(json.dumps(doc))
    run(_write(tmp_path / "flows.log", lines))
    edited = list(lines)
    edited[250] = _edited(lines[250], 10_000)
    summary = run(_write(tmp_path / "edited.log", edited))
    assert summary.total("rows") == 1 and summary.total("already_stored") == 299 and summary.balanced
    assert _bytes_in(store) == sorted([*range(300), 10_000])
