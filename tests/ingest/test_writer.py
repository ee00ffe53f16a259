"""The Parquet writer's queue: each file's writes in order, two files at once after the input ends."""

from __future__ import annotations

import threading
import time

import pyarrow as pa

import flowlens.ingest as ing
from flowlens.ingest import _FileWriter


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

    monkeypatch.setattr(_FileWriter, "_write_now", write_now)
    days = ("2026-01-01", "2026-01-02")
    # one day's writes after another: a free thread would start the day's next write at once
    writer = _FileWriter(tmp_path, "c0")
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
    writer = _FileWriter(tmp_path, "c1")
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

    monkeypatch.setattr(_FileWriter, "_write_now", write_now)
    monkeypatch.setattr(ing, "MAX_ROWS_QUEUED", 1000)
    writer = _FileWriter(tmp_path, "c0")
    for n in range(4):
        for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
            writer._buffers[(day, "other")] = [pa.table({"n": [n]})]
            writer._flush((day, "other"))
    writer._wait()
    assert running[1] == 1
