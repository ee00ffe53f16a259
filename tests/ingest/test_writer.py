"""The Parquet writer: each file's writes in order, two files at once after the input ends, and
which rows share a row group."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

import flowlens.ingest.writer as writer_module
import flowlens.store.parquet as parquet_rules
from flowlens.ingest import IngestOptions, ingest, parse
from flowlens.ingest.writer import FileWriter, WriterBudget
from flowlens.store import Store, integrity
from flowlens.store.lifecycle import Lifecycle
from tests.ingest.helpers import EXAMPLE_C


def test_each_files_writes_keep_their_order_while_two_files_are_written_at_once(tmp_path, monkeypatch):
    done: list[tuple[str, int]] = []
    running = [0, 0]  # now, most at once
    lock = threading.Lock()

    def write_now(self, file, table: pa.Table) -> None:
        n = table["n"][0].as_py()
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.05 / (n + 1))  # the first writes of a day are the slowest
        with lock:
            running[0] -= 1
            done.append((file.day, n))

    monkeypatch.setattr(FileWriter, "_write_now", write_now)
    days = ("2026-01-01", "2026-01-02")
    # one day's writes after another: a free thread would start the day's next write at once
    writer = FileWriter(tmp_path, "c0")
    writer._writing.release()  # as once the input has ended
    for day in days:
        for n in range(6):
            writer._buffers[(day, "other")] = [pa.table({"n": [n]})]
            writer._flush((day, "other"))
    writer._wait()
    for day in days:
        assert [n for d, n in done if d == day] == list(range(6))
    # the days' writes taking turns, queued when the input ends: both files are written at once
    running[1] = 0
    writer = FileWriter(tmp_path, "c1")
    for n in range(6):
        for day in days:
            writer._buffers[(day, "other")] = [pa.table({"n": [n]})]
            writer._flush((day, "other"))
    writer.close()
    assert running[1] == 2


def test_only_one_write_runs_while_batches_are_parsed(tmp_path, monkeypatch):
    running = [0, 0]
    lock = threading.Lock()

    def write_now(self, file, table: pa.Table) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(FileWriter, "_write_now", write_now)
    monkeypatch.setattr(writer_module, "MAX_ROWS_QUEUED", 1000)
    writer = FileWriter(tmp_path, "c0")
    for n in range(4):
        for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
            writer._buffers[(day, "other")] = [pa.table({"n": [n]})]
            writer._flush((day, "other"))
    writer._wait()
    assert running[1] == 1


def test_a_days_few_rows_share_a_row_group_and_a_busy_days_verdicts_do_not(tmp_path, monkeypatch):
    """Denied rows get row groups of their own, which a query about denied traffic picks by
    their statistics, unless the day's rows are too few to be worth a row group each."""
    monkeypatch.setattr(writer_module, "MIXED_ROWS", 100)
    good = json.loads(EXAMPLE_C)
    quiet, busy = good["start_time"], good["start_time"] + 86_400
    docs = [
        *({**good, "start_time": quiet, "end_time": quiet + 300, "action": "allow"} for _ in range(30)),
        *({**good, "start_time": quiet, "end_time": quiet + 300, "action": "deny"} for _ in range(10)),
        *({**good, "start_time": busy, "end_time": busy + 300, "action": "allow"} for _ in range(150)),
        *({**good, "start_time": busy, "end_time": busy + 300, "action": "deny"} for _ in range(60)),
    ]
    random.Random(7).shuffle(docs)  # the verdicts of a day interleaved, as in a real log
    log = tmp_path / "flows.log"
    log.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    store = Store(tmp_path / "store")
    assert ingest(store, [str(log)]).total("rows") == len(docs)
    groups: dict[str, list[tuple[str, str, int]]] = {}
    for path in store.flow_files():
        meta = pq.ParquetFile(path).metadata
        action = meta.schema.names.index("action")
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(action).statistics
            groups.setdefault(path.parent.name, []).append((stats.min, stats.max, meta.row_group(i).num_rows))
    day = dt.datetime.fromtimestamp(quiet, dt.UTC).date().isoformat()
    next_day = dt.datetime.fromtimestamp(busy, dt.UTC).date().isoformat()
    assert groups[f"date={day}"] == [("allow", "deny", 40)]
    assert sorted(groups[f"date={next_day}"]) == [("allow", "allow", 150), ("deny", "deny", 60)]


def test_each_column_is_written_with_the_encoding_chosen_for_it(tmp_path):
    """Times, line numbers and counters are plain, and every other leaf, nested ones included,
    keeps its dictionary; no encoding that an older reader may lack. The leaf paths flowlens names
    must be the ones in the file: a misspelt path would quietly lose that leaf its dictionary."""
    good = json.loads(EXAMPLE_C)
    log = tmp_path / "flows.log"
    log.write_text("".join(json.dumps({**good, "bytes_in": n}) + "\n" for n in range(50)))
    store = Store(tmp_path / "store")
    assert ingest(store, [str(log)]).total("rows") == 50
    (path,) = store.flow_files()
    meta = pq.ParquetFile(path).metadata
    chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    assert sorted(c.path_in_schema for c in chunks) == sorted(
        parquet_rules.DICTIONARY_COLUMNS + list(parquet_rules.PLAIN_COLUMNS)
    )
    for chunk in chunks:
        encodings = set(chunk.encodings)
        assert encodings <= {"PLAIN", "RLE", "RLE_DICTIONARY"}, chunk.path_in_schema
        if chunk.path_in_schema in parquet_rules.PLAIN_COLUMNS:
            assert "RLE_DICTIONARY" not in encodings and "PLAIN" in encodings, chunk.path_in_schema
        elif chunk.physical_type != "BOOLEAN":  # Parquet has no dictionary for booleans
            assert "RLE_DICTIONARY" in encodings, chunk.path_in_schema
    assert len(parquet_rules.DICTIONARY_COLUMNS) > 90  # the nested leaves are among them


def _spread_log(tmp_path, days: int, per_day: int):
    """A log of ``per_day`` records on each of ``days`` days, shuffled: every batch touches most days."""
    good = json.loads(EXAMPLE_C)
    docs = [
        {
            **good,
            "start_time": start,
            "end_time": start + 300,
            "action": "deny" if n % 3 == 0 else "allow",
            "bytes_in": n,
        }
        for day in range(days)
        for n in range(per_day)
        for start in [good["start_time"] // 86_400 * 86_400 + day * 86_400 + n * 60]
    ]
    random.Random(3).shuffle(docs)
    log = tmp_path / "flows.log"
    log.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return log, docs


def _count_open_files(monkeypatch) -> list[int]:
    """[open now, most open at once]: day files whose flows writer is open, counted as they open and close."""
    counts = [0, 0]
    lock = threading.Lock()
    write, close = writer_module._DayFile.write, writer_module._DayFile.close

    def counted_write(self, table):
        opening = self.flows is None
        write(self, table)
        if opening:
            with lock:
                counts[0] += 1
                counts[1] = max(counts)

    def counted_close(self):
        was_open = self.flows is not None
        close(self)
        if was_open:
            with lock:
                counts[0] -= 1

    monkeypatch.setattr(writer_module._DayFile, "write", counted_write)
    monkeypatch.setattr(writer_module._DayFile, "close", counted_close)
    return counts


def _store_rows(store: Store) -> list[tuple]:
    files = [str(p) for p in store.flow_files()]
    return duckdb.sql(
        "SELECT CAST(start_time AS DATE) AS day, action, count(*), sum(bytes_in) FROM read_parquet($files) "
        "GROUP BY ALL ORDER BY ALL",
        params={"files": files},
    ).fetchall()


def test_many_days_in_one_ingest_keep_the_open_files_within_the_budget(tmp_path, monkeypatch):
    """Forty days shuffled, with room for three open files and little buffered: the writer closes
    the least recently written file to open another, a day that comes back gets a new part file
    with its own summary, and the store holds every row, each part listed and summarised."""
    log, docs = _spread_log(tmp_path, days=40, per_day=30)
    no_compaction = IngestOptions(lifecycle=Lifecycle(compact_files=0))
    reference = Store(tmp_path / "reference")
    assert ingest(reference, [str(log)], no_compaction).total("rows") == len(docs)

    monkeypatch.setattr(parse, "BATCH_LINES", 100)  # many batches, each touching most days
    monkeypatch.setattr(writer_module, "WRITER_BUDGET", WriterBudget(open_files=3, buffered_bytes=40_000))
    counts = _count_open_files(monkeypatch)
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(log)], no_compaction)
    assert summary.balanced and summary.total("rows") == len(docs)
    assert counts == [0, 3]  # all closed in the end; never more than three open
    files = store.flow_files()
    assert len({p.parent.name for p in files}) == 40
    assert len(files) > 40  # days came back after their file was closed: new part files
    assert any(p.stem.endswith("-p1") for p in files)
    summaries = store.snapshot().summaries()
    assert sorted(summaries) == sorted(files)
    for flows, summary_file in summaries.items():  # each summary counts exactly its file's rows
        records = pq.read_table(summary_file, columns=["records"])["records"].to_pylist()
        assert sum(records) == pq.ParquetFile(flows).metadata.num_rows
    report = integrity.check(store, deep=True)
    assert not report.problems, report.problems
    assert _store_rows(store) == _store_rows(reference)  # the same answer, in more files


def test_rows_buffered_past_the_byte_budget_are_written_out_not_held(tmp_path, monkeypatch):
    """Every batch touches most of sixty days, so no day looks over: without a byte budget the
    rows would wait in memory until the input ends. Past the budget every buffered day is
    written, so what a batch finds still buffered stays under it."""
    log, docs = _spread_log(tmp_path, days=60, per_day=10)
    monkeypatch.setattr(parse, "BATCH_LINES", 60)
    carried: list[int] = []  # bytes still buffered when each batch arrives
    add = FileWriter.add

    def watched_add(self, table, keys, hits):
        carried.append(sum(self._bytes.values()))
        add(self, table, keys, hits)

    monkeypatch.setattr(FileWriter, "add", watched_add)
    no_compaction = IngestOptions(lifecycle=Lifecycle(compact_files=0))
    for budget in (1 << 40, 50_000):
        monkeypatch.setattr(
            writer_module, "WRITER_BUDGET", WriterBudget(open_files=500, buffered_bytes=budget)
        )
        carried.clear()
        store = Store(tmp_path / f"store-{budget}")
        assert ingest(store, [str(log)], no_compaction).total("rows") == len(docs)
        assert len(carried) >= 10
        if budget > 50_000:
            assert max(carried) > 50_000  # (the check below can fail)
        else:
            assert max(carried) < 50_000


def test_a_low_limit_on_open_files_lowers_the_open_files_budget(tmp_path, monkeypatch):
    """Each open day file takes two descriptors (flows and summary), with room left for the rest."""
    monkeypatch.setattr(writer_module.resource, "getrlimit", lambda _: (256, 4096))
    assert FileWriter(tmp_path, "c0")._open_limit == 64
    monkeypatch.setattr(writer_module.resource, "getrlimit", lambda _: (1024, 4096))
    assert FileWriter(tmp_path, "c1")._open_limit == 448  # a year of days in one file each
    monkeypatch.setattr(writer_module.resource, "getrlimit", lambda _: (100_000, 100_000))
    assert FileWriter(tmp_path, "c2")._open_limit == writer_module.WRITER_BUDGET.open_files


def _count_open_row_groups(monkeypatch) -> list[int]:
    """[held now, most held at once]: row groups written into flows files not yet closed (whose
    metadata their Parquet writer keeps), counted as the writer threads write and close."""
    counts = [0, 0]
    held: dict[int, int] = {}
    lock = threading.Lock()
    write, close = writer_module._DayFile.write, writer_module._DayFile.close

    def counted_write(self, table):
        write(self, table)
        with lock:
            held[id(self)] = held.get(id(self), 0) + -(-table.num_rows // parquet_rules.ROWS_PER_ROW_GROUP)
            counts[0] = sum(held.values())
            counts[1] = max(counts)

    def counted_close(self):
        close(self)
        with lock:
            held.pop(id(self), None)
            counts[0] = sum(held.values())

    monkeypatch.setattr(writer_module._DayFile, "write", counted_write)
    monkeypatch.setattr(writer_module._DayFile, "close", counted_close)
    return counts


def test_row_groups_held_by_open_files_stay_within_the_budget(tmp_path, monkeypatch):
    """Forty days shuffled and little buffered: every write-out puts a small row group into each
    day's file, and a Parquet writer keeps every row group's metadata until it closes. Past the
    budget's row groups the fullest files are closed (their days go on in new part files), so
    what open files hold stays bounded; the store holds every row."""
    log, docs = _spread_log(tmp_path, days=40, per_day=30)
    monkeypatch.setattr(parse, "BATCH_LINES", 100)
    no_compaction = IngestOptions(lifecycle=Lifecycle(compact_files=0))
    counts = _count_open_row_groups(monkeypatch)
    reference = None
    for limit in (1 << 30, 10):
        monkeypatch.setattr(
            writer_module,
            "WRITER_BUDGET",
            WriterBudget(open_files=500, buffered_bytes=40_000, open_row_groups=limit),
        )
        counts[:] = [0, 0]
        store = Store(tmp_path / f"store-{limit}")
        summary = ingest(store, [str(log)], no_compaction)
        assert summary.balanced and summary.total("rows") == len(docs)
        assert counts[0] == 0  # all closed in the end
        if reference is None:
            assert counts[1] > 2 * 10 + 1  # without the budget they pile up (the check below can fail)
            reference = _store_rows(store)
            continue
        # at most the budget, the write that went past it, and one file being closed
        assert counts[1] <= 2 * limit + 1
        files = store.flow_files()
        assert len(files) > 40 and len({p.parent.name for p in files}) == 40
        assert not integrity.check(store, deep=True).problems
        assert _store_rows(store) == reference
