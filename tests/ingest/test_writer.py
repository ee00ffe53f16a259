"""The Parquet writer: each file's writes in order, two files at once after the input ends, and
which rows share a row group."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq

import flowlens.ingest.writer as writer_module
import flowlens.store.parquet as parquet_rules
from flowlens.ingest import ingest
from flowlens.ingest.writer import FileWriter
from flowlens.store import Store
from tests.ingest.helpers import EXAMPLE_C


def test_each_files_writes_keep_their_order_while_two_files_are_written_at_once(tmp_path, monkeypatch):
    done: list[tuple[str, int]] = []
    running = [0, 0]  # now, most at once
    lock = threading.Lock()

    def write_now(self, day: str, table: pa.Table) -> None:
        n = table["n"][0].as_py()
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.05 / (n + 1))  # the first writes of a day are the slowest
        with lock:
            running[0] -= 1
            done.append((day, n))

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

    def write_now(self, day: str, table: pa.Table) -> None:
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
