"""No poison input: a line, hit or document built to hurt becomes a quarantined line (or a clear
error of its file alone), and the run, and every run after it, goes on with everything else."""

from __future__ import annotations

import gzip
import json

import pytest

import flowlens.ingest.parse as parse
import flowlens.ingest.sources as sources
from flowlens.errors import StrictModeError
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store
from tests.ingest import helpers
from tests.ingest.conftest import quarantine_of, rows_of

GOOD = json.loads(helpers.EXAMPLE_C)


def _good(i: int) -> bytes:
    return json.dumps({**GOOD, "bytes_in": i}).encode()


@pytest.mark.parametrize(
    "poison",
    [
        b"[" * 5000 + b"]" * 5000,  # a bare nest
        b'{"start_time":' + b"[" * 5000 + b"]" * 5000 + b"}",  # inside a field
        json.dumps({**GOOD, "source_labels": {"labels": ["k=" + "[" * 3000]}}).encode(),
        json.dumps(
            {**GOOD, "policies": {"enforced_policies": ["0|default|" + "{" * 3000 + "|allow|0"]}}
        ).encode(),
    ],
    ids=["bare", "in-a-field", "string-of-brackets", "hit-of-brackets"],
)
def test_a_deeply_nested_line_is_quarantined_and_the_next_run_is_not_stopped_by_it(tmp_path, store, poison):
    log = tmp_path / "flows.log"
    log.write_bytes(_good(1) + b"\n" + poison + b"\n" + _good(2) + b"\n")
    first = ingest(store, [str(log)])
    assert first.balanced
    assert first.total("rows") + first.total("quarantined") == 3
    with open(log, "ab") as fh:
        fh.write(_good(3) + b"\n")
    second = ingest(store, [str(log)])
    assert second.total("rows") == 1 and second.total("skipped") == 3


def test_a_line_nested_past_the_limit_is_quarantined_with_its_reason(tmp_path, store):
    log = tmp_path / "flows.log"
    log.write_bytes(_good(1) + b"\n" + b'{"start_time":' + b"[" * 100 + b"]" * 100 + b"}\n")
    summary = ingest(store, [str(log)])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)
    assert quarantine_of(store)[0]["reason"] == "JSON nested deeper than 64 levels"


@pytest.mark.parametrize("index", ["99999999999999999999999", "9999999999", "-2147483649"])
@pytest.mark.parametrize("where", ["rule", "policy"])
def test_a_policy_hit_with_an_index_out_of_range_is_quarantined(tmp_path, store, index, where):
    hit = (
        f"0|default|ns/default.x|allow|{index}"
        if where == "rule"
        else f"{index}|default|ns/default.x|allow|0"
    )
    bad = {**GOOD, "policies": {"enforced_policies": [hit]}}
    log = tmp_path / "flows.log"
    log.write_bytes(_good(1) + b"\n" + json.dumps(bad).encode() + b"\n")
    summary = ingest(store, [str(log)])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)
    (q,) = quarantine_of(store)
    assert "out of range" in q["reason"] and len(q["reason"]) < 400


def test_a_goldmane_hit_object_with_a_huge_index_is_quarantined(tmp_path, store):
    good = json.loads(helpers.GOLDMANE_EXAMPLE)
    bad = json.loads(helpers.GOLDMANE_EXAMPLE)
    bad["Key"]["policies"]["enforced_policies"][0]["rule_index"] = 10**30
    log = tmp_path / "goldmane.ndjson"
    log.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    summary = ingest(store, [str(log)])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_very_long_line_after_a_good_one_is_quarantined_without_being_held(
    tmp_path, store, monkeypatch, compressed
):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(parse, "BATCH_BYTES", 3000)
    monkeypatch.setattr(sources, "LINE_HEAD_KEPT", 500)
    long_line = b'{"start_time": 1, "x": "' + b"y" * 50_000 + b'"}'  # far past every buffer
    data = _good(1) + b"\n" + long_line + b"\n" + _good(2) + b"\n"
    path = tmp_path / ("flows.log.1.gz" if compressed else "flows.log")
    path.write_bytes(gzip.compress(data) if compressed else data)
    summary = ingest(store, [str(path)], IngestOptions(max_line_bytes=2048))
    assert summary.balanced and (summary.total("rows"), summary.total("quarantined")) == (2, 1)
    (q,) = quarantine_of(store)
    assert q["source_line"] == 2
    assert q["reason"] == f"line too long ({len(long_line)} bytes; the limit is 2048)"
    assert q["raw"] == long_line[:500] and q["raw_truncated"]
    assert [r["source_line"] for r in rows_of(store, "SELECT source_line FROM f ORDER BY 1")] == [1, 3]
    again = ingest(store, [str(path)])
    assert again.total("skipped") == 3 and again.total("rows") == 0


def test_a_long_last_line_of_a_growing_file_waits_for_its_end(tmp_path, store, monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 1000)
    log = tmp_path / "flows.log"
    log.write_bytes(_good(1) + b"\n" + b"z" * 5000)  # no newline yet
    first = ingest(store, [str(log)], IngestOptions(max_line_bytes=2048))
    assert (first.total("rows"), first.total("quarantined"), first.total("pending_bytes")) == (1, 0, 5000)
    with open(log, "ab") as fh:
        fh.write(b"z" * 100 + b"\n" + _good(2) + b"\n")
    second = ingest(store, [str(log)], IngestOptions(max_line_bytes=2048))
    assert (second.total("rows"), second.total("quarantined"), second.total("skipped")) == (1, 1, 1)
    assert quarantine_of(store)[0]["reason"] == "line too long (5100 bytes; the limit is 2048)"


def test_a_long_line_in_strict_mode_stops_the_run_at_the_first_bad_line(tmp_path, store):
    log = tmp_path / "flows.log"
    log.write_bytes(b"not json\n" + b"y" * 5000 + b"\n")
    with pytest.raises(StrictModeError, match=r"flows\.log:1: invalid JSON"):
        ingest(store, [str(log)], IngestOptions(format="enterprise", strict=True, max_line_bytes=2048))


def test_a_small_gzip_of_many_blank_lines_is_quarantined_line_by_line(tmp_path, store):
    path = tmp_path / "blank.log.gz"
    path.write_bytes(gzip.compress(_good(1) + b"\n" + b"\n" * 300_000, 9))
    assert path.stat().st_size < 2000
    summary = ingest(store, [str(path)])
    assert summary.balanced
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 300_000)
    files = store.quarantine_files()
    assert len(files) == 1  # one file per commit, whatever the number of lines


def test_a_whisker_response_of_empty_items_is_read_item_by_item(tmp_path, store):
    items = b",".join([b"{}"] * 200_000)
    path = tmp_path / "whisker.json.gz"
    path.write_bytes(gzip.compress(b'{"total":{"totalPages":1},"items":[' + items + b"]}", 9))
    summary = ingest(store, [str(path)], IngestOptions(format="whisker"))
    assert summary.balanced and summary.total("quarantined") == 200_000
    assert quarantine_of(store)[0]["reason"] == "missing required field 'start_time'"


def test_a_compressed_file_that_expands_past_the_limit_is_stopped_there(tmp_path, store, monkeypatch):
    monkeypatch.setattr(sources, "EXPANSION_FLOOR", 100_000)
    monkeypatch.setattr(sources, "DECOMPRESSED_PIECE", 10_000)
    data = b"".join(_good(i) + b"\n" for i in range(2000))
    path = tmp_path / "flows.log.1.gz"
    path.write_bytes(gzip.compress(data, 9))
    summary = ingest(store, [str(path)], IngestOptions(max_expansion=10))
    (fs,) = summary.files
    assert fs.error is not None and "expands more than 10 times" in fs.error
    assert 0 < fs.rows < 2000
    rest = ingest(store, [str(path)], IngestOptions(max_expansion=1000))
    assert rest.total("rows") == 2000 - fs.rows and rest.errors == []


def test_a_document_larger_than_the_limit_is_an_error_of_its_file(tmp_path, store):
    doc = {"total": {"totalPages": 1}, "items": [helpers.WHISKER_ITEM] * 50}
    path = tmp_path / "whisker.json"
    path.write_text(json.dumps(doc))
    summary = ingest(store, [str(path)], IngestOptions(format="whisker", max_document_bytes=2048))
    assert summary.errors and "larger than 2,048 bytes" in summary.errors[0]
    assert ingest(store, [str(path)], IngestOptions(format="whisker")).total("rows") == 50


def test_a_reason_quotes_a_value_never_a_whole_line(tmp_path, store):
    key = "k" * 100_000
    bad = {**GOOD, "source_labels": {"labels": [f"{key}=1", f"{key}=2"]}}
    log = tmp_path / "flows.log"
    log.write_text(json.dumps(bad) + "\n")
    ingest(store, [str(log)], IngestOptions(max_line_bytes=1 << 20))
    (q,) = quarantine_of(store)
    assert q["reason"].startswith("duplicate label key") and len(q["reason"]) < 300


def test_a_file_whose_first_line_is_longer_than_the_head_is_still_recognised(tmp_path, store):
    log = tmp_path / "flows.log"
    log.write_text(json.dumps({**GOOD, "process_name": "p" * 100_000}) + "\n")
    summary = ingest(store, [str(log)])
    assert summary.files[0].format == "enterprise" and summary.total("rows") == 1


def test_a_store_of_only_bad_lines_has_rows_of_none(tmp_path):
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    log.write_bytes(b"\xff\xfe\n" * 5000)
    summary = ingest(store, [str(log)], IngestOptions(format="enterprise"))
    assert summary.total("quarantined") == 5000 and rows_of(store) == []
    assert quarantine_of(store)[0]["reason"].startswith("invalid UTF-8")


def test_a_chunk_of_many_short_lines_is_parsed_in_batches_of_bounded_lines(tmp_path, store, monkeypatch):
    monkeypatch.setattr(parse, "BATCH_LINES", 1000)
    sizes: list[int] = []
    real = parse.BatchParser._parse

    def counting(self, batch):
        sizes.append(sum(len(block.lines) for block in batch))
        return real(self, batch)

    monkeypatch.setattr(parse.BatchParser, "_parse", counting)
    path = tmp_path / "blank.log.gz"
    path.write_bytes(gzip.compress(b"\n" * 2500 + _good(1) + b"\n" + b"\n" * 1500, 9))
    summary = ingest(store, [str(path)], IngestOptions(format="enterprise"))
    assert summary.balanced and (summary.total("rows"), summary.total("quarantined")) == (1, 4000)
    assert max(sizes) <= 1000 and sum(sizes) == 4001
    assert rows_of(store, "SELECT source_line FROM f") == [{"source_line": 2501}]
    lines = sorted(q["source_line"] for q in quarantine_of(store))
    assert lines == [*range(1, 2501), *range(2502, 4002)]
