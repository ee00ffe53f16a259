"""flowlens.store.compact: a day's small files become one, written as ingest writes them, and no
query's answer changes; a reader open meanwhile keeps reading what it started with."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowlens.store.compact as compact_module
import flowlens.store.parquet as parquet_rules
from flowlens.engine import connect, load_queries
from flowlens.ingest import ingest
from flowlens.store import Store, check, describe, open_writer
from flowlens.store.compact import compact
from flowlens.store.layout import Snapshot
from flowlens.store.lifecycle import compaction_plan
from flowlens.store.summaries import SORT_KEYS, summarise_store
from flowlens.suggest import load_reports
from flowlens.suggest.activity import load_activity
from tests.engine.test_summary import ROW, _row
from tests.factories import write_store
from tests.store.helpers import log_lines, seen, valid, write_log

NAMESPACES = ["shop", "data"]


def _compact_all(store: Store) -> None:
    with open_writer(store) as writer:
        compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))


def _every_answer(root: Path) -> dict[str, Any]:
    """Every shipped query's rows (helper queries over coverage_facts too), as sorted lists."""
    answers: dict[str, Any] = {}
    with connect(root) as engine:
        facts = engine.run("coverage-facts")
        for name, spec in load_queries().items():
            if name == "suggest-activity":  # over the sides suggest makes of its reports
                answers[name] = load_activity(engine, load_reports(engine, NAMESPACES), NAMESPACES, ())
                continue
            params = {"namespaces": NAMESPACES} if name == "suggest-edges" else {}
            if spec.requires:
                with engine.temporary_table("coverage_facts", facts):
                    rows = engine.run(name, params).to_pylist()
            else:
                rows = engine.run(name, params).to_pylist()
            answers[name] = sorted(rows, key=repr)
        answers["rows"] = engine.sql("SELECT count(*) AS n FROM flows").to_pylist()
    return answers


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.lists(ROW, min_size=0, max_size=12), min_size=2, max_size=5))
def test_every_shipped_query_answers_the_same_before_and_after_compaction(
    tmp_path_factory: pytest.TempPathFactory, parts: list[list[dict[str, Any]]]
) -> None:
    root = tmp_path_factory.mktemp("store")
    for i, specs in enumerate(parts):  # one small file per part and day, as small ingests write them
        write_store(root, [_row(s) for s in specs], name=f"part-{i}")
    summarise_store(Store(root))
    before = _every_answer(root)
    _compact_all(Store(root))
    days = {p.parent.name for p in Store(root).flow_files()}
    assert len(Store(root).flow_files()) == len(days)
    assert _every_answer(root) == before
    assert not check(Store(root), deep=True).problems


def test_compaction_merges_a_days_small_files_and_their_summaries_into_one_each(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(120)
    for part in range(4):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 30 : (part + 1) * 30]))])
    assert len(store.flow_files()) == 5  # the first log reaches into the second day
    with open_writer(store) as writer:
        result = compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))
    assert result.line() == "compacted 2 day(s) (2023-02-03 .. 2023-02-04): 5 flows file(s) into 2, 120 rows"
    assert len(store.flow_files()) == 2
    assert len(Store(store.root).snapshot().summaries()) == 2
    assert len(list((store.root / "summary").rglob("*.parquet"))) == 2  # the old ones deleted
    assert seen(store) == valid(lines)
    with connect(store) as a, connect(store, summaries=False) as b:
        query = "SELECT sum(records) AS n, sum(bytes) AS b FROM flow_summary"
        assert a.sql(query).to_pylist() == b.sql(query).to_pylist()


def test_a_compacted_file_keeps_the_row_group_and_encoding_rules_of_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compact_module, "MIXED_ROWS", 10)
    monkeypatch.setattr(compact_module, "ROWS_PER_ROW_GROUP", 16)
    monkeypatch.setattr(compact_module, "BATCH_ROWS", 7)
    store = Store(tmp_path / "store")
    lines = log_lines(90, denied_every=3)  # 30 denied, 60 allowed
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 30 : (part + 1) * 30]))])
    _compact_all(store)
    for path in store.flow_files():
        meta = pq.ParquetFile(path).metadata
        groups = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(meta.schema.names.index("action")).statistics
            groups.append((stats.min, stats.max, meta.row_group(i).num_rows))
        assert all(lo == hi for lo, hi, _ in groups), groups  # denied rows never share a row group
        assert all(n <= 16 for _, _, n in groups)
        for kind in {lo for lo, _, _ in groups}:  # full row groups, but the last of each kind
            assert [n for lo, _, n in groups if lo == kind][:-1] == [16] * (
                sum(lo == kind for lo, _, _ in groups) - 1
            )
        chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
        assert sorted(c.path_in_schema for c in chunks) == sorted(
            parquet_rules.DICTIONARY_COLUMNS + list(parquet_rules.PLAIN_COLUMNS)
        )
        for chunk in chunks:
            if chunk.path_in_schema in parquet_rules.PLAIN_COLUMNS:
                assert "RLE_DICTIONARY" not in set(chunk.encodings)
    assert seen(store) == valid(lines)


def test_a_day_of_few_rows_is_one_row_group_with_the_denied_rows_last(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(30, denied_every=4)
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 10 : (part + 1) * 10]))])
    _compact_all(store)
    (first, *_) = store.flow_files()
    table = pq.read_table(first)
    assert pq.ParquetFile(first).metadata.num_row_groups == 1
    actions = table["action"].to_pylist()
    assert actions == sorted(actions)  # allow ... deny


def test_the_compacted_summary_holds_its_denied_rows_in_a_row_group_of_their_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(30, denied_every=4)
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 10 : (part + 1) * 10]))])
    before = _every_answer(store.root)
    _compact_all(store)
    (summary,) = store.snapshot().summaries().values()
    meta = pq.ParquetFile(summary).metadata
    column = meta.schema.names.index("action")
    stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
    assert [(s.min, s.max) for s in stats] == [("allow", "allow"), ("deny", "deny")]
    table = pq.read_table(summary)
    assert sum(table["records"].to_pylist()) == len(valid(lines))
    for group in range(meta.num_row_groups):  # each row group in SORT_KEYS order
        rows = pq.ParquetFile(summary).read_row_group(group).select(list(SORT_KEYS)).to_pylist()
        keys = [tuple((v is None, v) for v in row.values()) for row in rows]
        assert keys == sorted(keys)
    assert _every_answer(store.root) == before
    with connect(store.root) as engine:
        denied = sum(engine.run("denied")["records"].to_pylist())
        records = engine.sql("SELECT count(*) AS n FROM flows WHERE action = 'deny'")["n"].to_pylist()
    assert records == [denied] and denied > 0


def test_a_reader_open_during_compaction_keeps_its_files_until_it_closes(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(60)
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 20 : (part + 1) * 20]))])
    old = store.flow_files()
    reader = connect(store)
    _compact_all(store)
    assert all(p.exists() for p in old)  # retired, not deleted: the reader may still open them
    assert sorted(reader.sql("SELECT bytes_in FROM flows")["bytes_in"].to_pylist()) == valid(lines)
    reader.close()
    assert ("retired", False) in [(p.code, p.blocking) for p in check(store).problems]
    write_log(tmp_path / "more.log", log_lines(3, start=900))
    ingest(store, [str(tmp_path / "more.log")])  # the next writer deletes them
    assert not any(p.exists() for p in old)
    assert not check(store).problems


def test_ingest_compacts_a_closed_day_with_too_many_files_and_leaves_the_open_day(tmp_path: Path) -> None:
    from flowlens.ingest import IngestOptions
    from flowlens.store.lifecycle import Lifecycle

    store = Store(tmp_path / "store")
    lines = log_lines(36)  # 2023-02-03 23:00 .. 23:55: the first day only
    options = IngestOptions(lifecycle=Lifecycle(compact_files=3))
    noon = dt.datetime(2023, 2, 4, 0, 30, tzinfo=dt.UTC)  # the day ended 30 minutes ago: still open
    notes: list[str] = []
    for part in range(6):
        log = write_log(tmp_path / f"n{part}.log", lines[part * 6 : (part + 1) * 6])
        notes += ingest(store, [str(log)], options, now=noon).maintenance
    assert notes == [] and len(store.flow_files()) == 6
    later = noon + dt.timedelta(hours=1)
    summary = ingest(store, [str(write_log(tmp_path / "x.log", log_lines(3, start=300)))], options, now=later)
    assert summary.maintenance == ["compacted 1 day(s) (2023-02-03): 6 flows file(s) into 1, 36 rows"]
    assert len([p for p in store.flow_files() if "2023-02-03" in str(p)]) == 1
    assert seen(store) == sorted(valid(lines) + valid(log_lines(3, start=300)))


def test_status_says_what_compaction_would_gain(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(60)
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 20 : (part + 1) * 20]))])
    gain = describe(store).compaction
    assert gain is not None
    assert (gain.files, gain.small_files, gain.days, gain.files_after) == (4, 4, 2, 2)
    _compact_all(store)
    gain = describe(store).compaction
    assert gain is not None and (gain.files, gain.days, gain.files_after) == (2, 0, 2)
