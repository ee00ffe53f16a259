"""Faults while reading, injected one by one: after each, ingesting to completion stores every
valid line exactly once (none lost, none doubled) and every run's counts add up."""

from __future__ import annotations

import errno
import gzip
import io
import json
from pathlib import Path

import pytest

import flowlens.ingest.parse as parse
import flowlens.ingest.sources as sources
from flowlens.errors import InputError, StoreError
from flowlens.ingest import IngestOptions, IngestSummary, ingest
from flowlens.store import Store
from tests.helpers import run_cli
from tests.ingest import helpers
from tests.ingest.conftest import quarantine_of, rows_of

BASE = json.loads(helpers.EXAMPLE_C)


def _line(i: int, **extra: object) -> bytes:
    doc = {**BASE, "bytes_in": i, "start_time": BASE["start_time"] + i, "end_time": BASE["end_time"] + i}
    doc.update(extra)
    return json.dumps(doc).encode()


def _data(n: int, start: int = 0) -> bytes:
    return b"".join(_line(i) + b"\n" for i in range(start, start + n))


def _stored(store: Store) -> list[int]:
    return [r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f ORDER BY bytes_in")]


def _runs_add_up(*summaries: IngestSummary) -> None:
    for summary in summaries:
        assert summary.balanced, summary.as_dict()


class FailingReads:
    """``open`` for flowlens.ingest.sources whose files fail to read past ``after`` bytes."""

    def __init__(self, target: Path, after: int, err: int = errno.EIO) -> None:
        self.target, self.after, self.err = str(target), after, err

    def __call__(self, path, mode="r", *args, **kwargs):
        fh = open(path, mode, *args, **kwargs)  # noqa: SIM115
        return _Failing(fh, self.after, self.err) if str(path) == self.target else fh


class _Failing(io.RawIOBase):
    def __init__(self, inner, after: int, err: int) -> None:
        self._inner, self._left, self._err = inner, after, err

    def readable(self) -> bool:
        return True

    def readinto(self, view) -> int:
        if self._left <= 0:
            raise OSError(self._err, "Input/output error")
        n = self._inner.readinto(memoryview(view)[: self._left])
        self._left -= n
        return n

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(size if size >= 0 else 1 << 20)
        n = self.readinto(buf)
        return bytes(buf[:n])

    def close(self) -> None:
        self._inner.close()
        super().close()


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks and batches small enough that a test's few kilobytes cross many of them."""
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(parse, "BATCH_BYTES", 4000)


# --- compressed files cut short ---------------------------------------------------------


def test_a_gzip_cut_short_stores_its_whole_lines_and_the_complete_file_adds_exactly_the_rest(tmp_path, store):
    data = _data(200)
    packed = gzip.compress(data)
    path = tmp_path / "flows.log.1.gz"
    path.write_bytes(packed[: len(packed) // 2])
    first = ingest(store, [str(path)])
    (fs,) = first.files
    assert 0 < fs.rows < 200 and fs.lines_read == fs.rows and fs.error is None
    path.write_bytes(packed)
    second = ingest(store, [str(path)])
    _runs_add_up(first, second)
    assert second.total("skipped") == fs.rows
    assert second.total("rows") == 200 - fs.rows
    assert second.total("lines_read") == 200  # the summary counts the file's lines, no more
    assert _stored(store) == list(range(200))
    assert quarantine_of(store) == []


def test_a_gzip_growing_in_steps_is_stored_exactly_once(tmp_path, store, small_blocks):
    data = _data(300)
    packed = gzip.compress(data)
    path = tmp_path / "flows.log.2.gz"
    summaries = []
    for cut in (37, len(packed) // 3, len(packed) // 3 + 1, 2 * len(packed) // 3, len(packed)):
        path.write_bytes(packed[:cut])
        summaries.append(ingest(store, [str(path)]))
    _runs_add_up(*summaries)
    assert sum(s.total("rows") for s in summaries) == 300
    assert _stored(store) == list(range(300))


def test_a_gzip_cut_inside_its_first_line_waits_whole(tmp_path, store):
    data = _data(3)
    packed = gzip.compress(data, 1)
    path = tmp_path / "flows.log.1.gz"
    path.write_bytes(packed[:15])  # the header and a little of the first line
    first = ingest(store, [str(path)], IngestOptions(format="enterprise"))
    assert first.total("lines_read") == 0 and first.errors == []
    path.write_bytes(packed)
    second = ingest(store, [str(path)])
    assert _stored(store) == [0, 1, 2]
    _runs_add_up(first, second)


def test_damaged_compressed_data_is_an_error_that_keeps_the_lines_before_it(tmp_path, store, monkeypatch):
    monkeypatch.setattr(sources, "COMPRESSED_PIECE", 256)
    data = _data(400)
    packed = bytearray(gzip.compress(data, 1))
    good = bytes(packed)
    middle = len(packed) // 2
    packed[middle : middle + 40] = b"\xff" * 40
    path = tmp_path / "flows.log.3.gz"
    path.write_bytes(bytes(packed))
    first = ingest(store, [str(path)])
    (fs,) = first.files
    assert fs.error is not None and "damaged" in fs.error
    assert 0 < fs.rows < 400
    path.write_bytes(good)  # the file restored from a good copy
    second = ingest(store, [str(path)])
    assert second.errors == []
    _runs_add_up(first, second)
    assert _stored(store) == list(range(400))


def test_a_whole_document_cut_short_waits_and_the_complete_one_is_read_once(tmp_path, store):
    doc = json.dumps(
        {"total": {"totalPages": 1}, "items": [{**helpers.WHISKER_ITEM, "bytes_in": i} for i in range(50)]}
    )
    packed = gzip.compress(doc.encode())
    path = tmp_path / "whisker.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    first = ingest(store, [str(path)], IngestOptions(format="whisker"))
    assert first.total("lines_read") == 0 and first.total("rows") == 0 and first.errors == []
    path.write_bytes(packed)
    second = ingest(store, [str(path)], IngestOptions(format="whisker"))
    assert second.total("rows") == 50
    assert _stored(store) == list(range(50))


def test_a_document_still_being_written_waits(tmp_path, store):
    doc = json.dumps(
        {"total": {"totalPages": 1}, "items": [{**helpers.WHISKER_ITEM, "bytes_in": i} for i in range(5)]}
    )
    path = tmp_path / "whisker.json"
    path.write_text(doc[: len(doc) - 30])
    first = ingest(store, [str(path)], IngestOptions(format="whisker"))
    assert first.total("lines_read") == 0 and quarantine_of(store) == []
    assert any("before it is complete" in w for w in first.files[0].warnings)
    path.write_text(doc)
    ingest(store, [str(path)], IngestOptions(format="whisker"))
    assert _stored(store) == list(range(5))


# --- read errors ----------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_a_read_error_keeps_the_whole_lines_before_it_and_the_next_run_completes(
    tmp_path, store, monkeypatch, small_blocks, compressed
):
    data = _data(200)
    path = tmp_path / ("flows.log.1.gz" if compressed else "flows.log")
    path.write_bytes(gzip.compress(data) if compressed else data)
    size = path.stat().st_size
    with monkeypatch.context() as patched:
        patched.setattr(sources, "open", FailingReads(path, size // 2), raising=False)
        first = ingest(store, [str(path)])
    (fs,) = first.files
    assert fs.error is not None and "read error (Input/output error)" in fs.error
    assert 0 < fs.rows < 200 and fs.quarantined == 0
    second = ingest(store, [str(path)])
    assert second.errors == []
    _runs_add_up(first, second)
    assert second.total("skipped") == fs.rows
    assert _stored(store) == list(range(200))


def test_an_unreadable_file_does_not_stop_the_others_and_is_read_once_it_can_be(tmp_path, store, monkeypatch):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "a.log").write_bytes(_data(10))
    (folder / "b.log").write_bytes(_data(10, start=10))
    (folder / "c.log").write_bytes(_data(10, start=20))
    with monkeypatch.context() as patched:
        patched.setattr(sources, "open", FailingReads(folder / "b.log", 0, errno.EACCES), raising=False)
        first = ingest(store, [str(folder)])
    assert first.errors == [
        f"{folder / 'b.log'}: read error (Input/output error) after line 0: the lines before it are read"
    ] or (len(first.errors) == 1 and "b.log" in first.errors[0])
    assert _stored(store) == list(range(10)) + list(range(20, 30))
    second = ingest(store, [str(folder)])
    assert second.errors == []
    _runs_add_up(first, second)
    assert _stored(store) == list(range(30))


def test_a_file_that_cannot_be_opened_is_an_error_of_its_own(tmp_path, store, monkeypatch):
    good = tmp_path / "a.log"
    good.write_bytes(_data(3))
    bad = tmp_path / "b.log"
    bad.write_bytes(_data(3, start=3))

    def refuse(path, *args, **kwargs):
        if str(path) == str(bad):
            raise PermissionError(errno.EACCES, "Permission denied")
        return open(path, *args, **kwargs)

    monkeypatch.setattr(sources, "open", refuse, raising=False)
    summary = ingest(store, [str(good), str(bad)])
    assert summary.errors == [f"{bad}: cannot be read (Permission denied)"]
    assert _stored(store) == [0, 1, 2]
    with pytest.raises(InputError, match=r"b\.log: cannot be read \(Permission denied\) \(--strict"):
        ingest(Store(tmp_path / "strict"), [str(good), str(bad)], IngestOptions(strict=True))


def test_an_unrecognised_file_in_a_folder_does_not_stop_the_others(tmp_path, store):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "flows.log").write_bytes(_data(5))
    (folder / "notes.log").write_text("hello world\n")
    summary = ingest(store, [str(folder)])
    assert _stored(store) == list(range(5))
    (problem,) = summary.errors
    assert problem.startswith(f"{folder / 'notes.log'}: not a Calico flow log flowlens knows")


# --- standard input ----------------------------------------------------------------------


def test_standard_input_larger_than_memory_allows_is_kept_in_a_temporary_file(tmp_path, store, monkeypatch):
    monkeypatch.setattr(sources, "STDIN_IN_MEMORY", 1000)
    data = _data(50)
    summary = ingest(store, ["-"], stdin=io.BytesIO(gzip.compress(data)))
    assert summary.total("rows") == 50
    again = ingest(store, ["-"], stdin=io.BytesIO(data))
    assert again.total("skipped") == 50 and again.total("rows") == 0


@pytest.mark.parametrize("where", ["rows", "quarantine"])
def test_a_full_disk_while_staging_is_one_message_leaves_no_temp_file_and_the_next_run_completes(
    tmp_path, store, monkeypatch, where
):
    import pyarrow.parquet as pq

    from flowlens.ingest import accounting

    log = tmp_path / "flows.log"
    log.write_bytes(b"".join(_line(i) + b"\n" for i in range(100)) + b"not json\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "rows":
        monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    else:
        monkeypatch.setattr(accounting.Quarantine, "_write_locked", full)
    result = run_cli("ingest", str(log), "--store", str(store.root))
    assert result.code == StoreError.exit_code, result
    (message,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "no space left on device" in message and "run the command again" in message
    assert [p for p in (store.root / ".staging").rglob("*") if p.is_file()] == []
    assert rows_of(store) == []
    monkeypatch.undo()
    summary = ingest(store, [str(log)])
    assert (summary.total("rows"), summary.total("quarantined"), summary.total("skipped")) == (100, 1, 0)
