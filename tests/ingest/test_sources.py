"""Reading: lines reach the parser in place, across blocks and buffers, and nothing is lost."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pytest

import flowlens.ingest.lines as lines
import flowlens.ingest.parse as parse
import flowlens.ingest.sources as sources
from flowlens.errors import StrictModeError
from flowlens.ingest import IngestOptions, ingest
from flowlens.ingest.parse import join_lines
from flowlens.ingest.sources import Buffers
from flowlens.store import Store
from tests.ingest.conftest import quarantine_of, rows_of
from tests.ingest.helpers import EXAMPLE_C


def _lines_in(memory: np.ndarray, start: int, end: int) -> pa.Array:
    """The lines of ``memory[start:end]`` as the reader builds them: pointing into the memory."""
    chunk = memory.data[start:end]
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    offsets = np.concatenate([[0], ends + 1]).astype(np.int64)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(chunk)]
    )


def test_lines_of_one_buffer_are_joined_without_copying_the_text():
    memory = np.frombuffer(b"a\nbb\nccc\ndddd\n", dtype=np.uint8).copy()
    parts = [_lines_in(memory, 0, 2), _lines_in(memory, 2, 9), _lines_in(memory, 9, 14)]
    joined = join_lines(parts)
    assert joined.to_pylist() == [b"a\n", b"bb\n", b"ccc\n", b"dddd\n"]
    assert joined.buffers()[2].address == memory.ctypes.data  # the same memory, not a copy
    # a slice of the result, as DuckDB scans it, reads the right lines
    assert joined.slice(1, 2).to_pylist() == [b"bb\n", b"ccc\n"]


def test_lines_from_different_memory_are_copied_together():
    first = np.frombuffer(b"a\nbb\n", dtype=np.uint8).copy()
    second = np.frombuffer(b"ccc\n", dtype=np.uint8).copy()
    joined = join_lines([_lines_in(first, 0, 5), _lines_in(second, 0, 4)])
    assert joined.to_pylist() == [b"a\n", b"bb\n", b"ccc\n"]


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 1 << 18])
def test_newlines_found_piece_by_piece_are_all_the_newlines(piece):
    rng = np.random.default_rng(piece)
    for size in (0, 1, piece - 1, piece, piece + 1, 5 * piece + 3, 1000):
        if size < 0:
            continue
        text = np.where(rng.random(size) < 0.2, 10, 65).astype(np.uint8)
        found = lines.newline_positions(text, np.empty(piece, dtype=bool))
        assert found.tolist() == np.flatnonzero(text == 10).tolist()


def test_a_buffer_still_referenced_is_never_handed_out_again():
    buffers = Buffers(16, keep=1)
    first = buffers.get()
    view = first[2:5]  # e.g. lines of a batch still being parsed
    second = buffers.get()
    assert second is not first
    del view
    assert buffers.get() is not first  # the caller still holds it
    del first
    again = buffers.get()
    again[:] = 7  # it was free: reusing it harms nobody
    assert len(again) == 16


def _records(n: int, long_every: int = 0) -> list[bytes]:
    base = json.loads(EXAMPLE_C)
    out = []
    for i in range(n):
        doc = {**base, "bytes_in": i}
        if long_every and i % long_every == 0:
            doc["process_name"] = "p" * (3000 + i)  # longer than a block, some longer than a buffer
        out.append(json.dumps(doc).encode())
    return out


@pytest.mark.parametrize("compressed", [False, True])
def test_lines_across_blocks_and_buffers_are_read_once_each(tmp_path, store, run, monkeypatch, compressed):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(parse, "BATCH_BYTES", 5000)
    monkeypatch.setattr(sources, "NEWLINE_SCAN_BYTES", 300)  # newlines looked for in pieces, too
    lines = _records(300, long_every=37)
    data = b"".join(line + b"\n" for line in lines)
    path = tmp_path / ("flows.log.1.gz" if compressed else "flows.log")
    path.write_bytes(gzip.compress(data) if compressed else data)
    summary = run(path)
    assert summary.balanced and summary.total("rows") == 300 and summary.total("quarantined") == 0
    got = rows_of(
        store, "SELECT bytes_in, source_line, length(process_name) AS n FROM f ORDER BY source_line"
    )
    assert [r["bytes_in"] for r in got] == list(range(300))
    assert [r["source_line"] for r in got] == list(range(1, 301))
    assert [r["n"] for r in got] == [len(json.loads(line)["process_name"]) for line in lines]


def test_a_file_grown_in_the_middle_of_a_line_resumes_after_the_last_whole_line(
    tmp_path, store, run, monkeypatch
):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(parse, "BATCH_BYTES", 5000)
    data = b"".join(line + b"\n" for line in _records(200))
    path = tmp_path / "flows.log"
    cut = len(data) * 2 // 3 + 17
    path.write_bytes(data[:cut])
    first = run(path)
    assert first.total("pending_bytes") > 0
    path.write_bytes(data)
    second = run(path)
    assert first.total("rows") + second.total("rows") == 200
    assert second.total("skipped") == first.total("rows")
    assert [r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f ORDER BY bytes_in")] == list(
        range(200)
    )
    assert quarantine_of(store) == []


def test_batches_parsed_side_by_side_are_stored_in_the_order_they_were_read(tmp_path, store, monkeypatch):
    """Two batches are parsed at once; rows, quarantine and the strict-mode error follow the input."""
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(parse, "BATCH_BYTES", 3000)
    lines = []
    for i, raw in enumerate(_records(400)):
        doc = json.loads(raw)
        doc["action"] = "deny" if i % 3 == 0 else "allow"
        lines.append(json.dumps(doc).encode() if i % 97 != 50 else b'{"start_time": 1,')
    path = tmp_path / "flows.log"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    summary = ingest(store, [str(path)])
    bad = [i + 1 for i in range(400) if i % 97 == 50]
    assert summary.total("rows") == 400 - len(bad) and summary.balanced
    assert [q["source_line"] for q in quarantine_of(store)] == bad
    stored = rows_of(store, "SELECT action, source_line FROM f")  # in file order
    for action in ("allow", "deny"):
        in_file = [r["source_line"] for r in stored if r["action"] == action]
        assert in_file == sorted(in_file) and len(in_file) == len(set(in_file))
    with pytest.raises(StrictModeError, match=rf":{bad[0]}: invalid JSON"):
        ingest(Store(tmp_path / "strict"), [str(path)], IngestOptions(strict=True))
