"""Documents of many pages larger than --max-document-bytes are read a page at a time
(flowlens.ingest.pages): every record, numbered on from page to page, with memory for one page;
a page still being written waits; only a single page past the limit is refused."""

from __future__ import annotations

import gzip
import json

import pytest

from flowlens.ingest.documents import PAGE_END_BYTES
from flowlens.ingest.pages import _candidates
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_C, GOLDMANE_EXAMPLE

LIMIT = 32768  # --max-document-bytes for these tests: each export below is larger, a page smaller


def _hit(n: int, **source: object) -> dict:
    record = json.loads(EXAMPLE_C)
    record["bytes_in"] = n
    record.update(source)
    return {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id-{n}", "_score": None, "_source": record}


def _page(first: int, count: int) -> dict:
    return {
        "_scroll_id": "c2Nhbg==",
        "took": 3,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": 999, "relation": "eq"},
            "hits": [_hit(n) for n in range(first, first + count)],
        },
    }


JOINS = {
    "lines": lambda pages: "".join(json.dumps(p) + "\n" for p in pages),
    "concatenated": lambda pages: "".join(json.dumps(p) for p in pages),
    "pretty": lambda pages: "\n".join(json.dumps(p, indent=2) for p in pages) + "\n",
}


def _numbers(store) -> list[tuple[int, int]]:
    return [(r["source_line"], r["bytes_in"]) for r in rows_of(store)]


@pytest.mark.parametrize("join", list(JOINS))
def test_an_export_of_pages_past_the_limit_is_read_whole_a_page_at_a_time(tmp_path, store, run, join):
    path = tmp_path / "export.json"
    pages = [_page(4 * i, 4) for i in range(8)] + [_page(32, 0), _page(32, 3), _page(35, 1)]
    path.write_text(JOINS[join](pages))
    assert path.stat().st_size > 2 * LIMIT
    summary = run(path, max_document_bytes=LIMIT)
    assert summary.errors == [] and summary.balanced
    assert (summary.total("rows"), summary.total("quarantined")) == (36, 0)
    assert _numbers(store) == [(n + 1, n) for n in range(36)]  # record N = line N, page after page
    again = run(path, max_document_bytes=LIMIT)
    assert again.total("rows") == 0 and again.total("skipped") == 36


def test_pages_give_the_rows_of_the_same_export_read_whole(tmp_path, store, run):
    from flowlens.store import Store

    path = tmp_path / "export.json"
    path.write_text(JOINS["pretty"]([_page(4 * i, 4) for i in range(6)]))
    assert path.stat().st_size > 2 * LIMIT
    run(path, max_document_bytes=LIMIT)
    whole = Store(tmp_path / "whole")
    from flowlens.ingest import IngestOptions, ingest

    ingest(whole, [str(path)], IngestOptions())  # under the default limit: read whole
    columns = "source_line, es_id, bytes_in, start_time, source_labels, all_policies"
    sql = f"SELECT {columns} FROM f ORDER BY source_line"
    assert rows_of(store, sql) == rows_of(whole, sql) and len(rows_of(store, sql)) == 24


def test_pages_appended_later_are_read_on_from_the_pages_read(tmp_path, store, run):
    path = tmp_path / "export.json"
    path.write_text(JOINS["lines"]([_page(4 * i, 4) for i in range(6)]))
    assert path.stat().st_size > LIMIT
    assert run(path, max_document_bytes=LIMIT).total("rows") == 24
    with path.open("a") as fh:
        fh.write(JOINS["lines"]([_page(24, 2)]))
    more = run(path, max_document_bytes=LIMIT)
    assert (more.total("rows"), more.total("skipped")) == (2, 24)
    assert _numbers(store) == [(n + 1, n) for n in range(26)]


def test_a_page_still_being_written_waits_and_nothing_is_read_twice(tmp_path, store, run):
    path = tmp_path / "export.json"
    whole = JOINS["pretty"]([_page(4 * i, 4) for i in range(5)])
    cut = whole.rindex('"_id"')  # inside the last page
    path.write_text(whole[:cut])
    assert cut > LIMIT
    first = run(path, max_document_bytes=LIMIT)
    (fs,) = first.files
    assert first.total("rows") == 16 and fs.error is None
    assert fs.pending_bytes > 0 and any("not complete" in w for w in fs.warnings)
    path.write_text(whole)
    rest = run(path, max_document_bytes=LIMIT)
    assert (rest.total("rows"), rest.total("skipped")) == (4, 16)
    assert _numbers(store) == [(n + 1, n) for n in range(20)]


def test_a_page_larger_than_the_limit_is_an_error_after_the_pages_before_it(tmp_path, store, run):
    path = tmp_path / "export.json"
    path.write_text(JOINS["lines"]([_page(0, 2), _page(2, 40), _page(42, 2)]))
    summary = run(path, max_document_bytes=LIMIT)
    (fs,) = summary.files
    assert fs.error is not None and "larger than 32,768 bytes" in fs.error and "after record 2" in fs.error
    assert _numbers(store) == [(1, 0), (2, 1)]  # the page before it is stored
    rest = run(path)  # at the default limit the rest follows, nothing twice
    assert rest.errors == [] and [n for _, n in _numbers(store)] == [0, 1, *range(2, 44)]


def test_a_page_end_inside_a_string_is_no_page_end(tmp_path, store, run):
    """``}{`` and ``}\\n{`` inside a value look like the end of a page: the page goes on."""
    page = _page(0, 3)
    page["hits"]["hits"][1]["_source"]["process_args"] = ["awk '{print}{next}'", "x}\n  {y"]
    path = tmp_path / "export.json"
    path.write_text(JOINS["pretty"]([_page(10, 2), page, *[_page(20 + 2 * i, 2) for i in range(4)]]))
    assert path.stat().st_size > LIMIT
    assert len(PAGE_END_BYTES.findall(path.read_bytes())) > 2
    summary = run(path, max_document_bytes=LIMIT)
    assert summary.errors == [] and summary.total("rows") == 13
    args = [r["process_args"] for r in rows_of(store) if r["bytes_in"] == 1]
    assert args == [["awk '{print}{next}'", "x}\n  {y"]]


def test_a_gzipped_export_and_a_goldmane_capture_are_read_a_page_at_a_time(tmp_path, store, run):
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress(JOINS["pretty"]([_page(4 * i, 4) for i in range(5)]).encode()))
    assert run(path, max_document_bytes=LIMIT).total("rows") == 20
    record = json.loads(GOLDMANE_EXAMPLE)
    capture = tmp_path / "goldmane.json"
    flows = []
    for i in range(120):
        flow = dict(record, bytes_in=i)
        flows.append(json.dumps({"flow": flow}, indent=2))
    capture.write_text("\n".join(flows) + "\n")
    assert capture.stat().st_size > 2 * LIMIT
    summary = run(capture, max_document_bytes=LIMIT)
    assert summary.errors == [] and summary.total("rows") == 120
    stored = rows_of(store, "SELECT bytes_in FROM f WHERE source_file LIKE '%goldmane%' ORDER BY source_line")
    assert [r["bytes_in"] for r in stored] == list(range(120))


def test_page_ends_are_found_across_the_blocks_the_source_is_read_in():
    pages = [json.dumps(_page(n, 1)) for n in range(4)]
    text = ("\n \n".join(pages)).encode()
    for size in (1, 2, 7, 64, len(text)):
        blocks = iter([text[i : i + size] for i in range(0, len(text), size)])
        pieces = list(_candidates(blocks, 1 << 20))
        assert [p for p, _ in pieces] == [
            pages[0].encode(),
            b"\n \n" + pages[1].encode(),
            b"\n \n" + pages[2].encode(),
            b"\n \n" + pages[3].encode(),
        ]
        assert [end for _, end in pieces] == [False, False, False, True]


def _whisker_page(n: int) -> str:
    from tests.ingest.helpers import WHISKER_ITEM

    items = [dict(WHISKER_ITEM, bytes_in=n * 10 + i) for i in range(3)]
    return json.dumps({"total": {"totalPages": 9, "totalResults": 27}, "items": items}, indent=2) + "\n"


def test_pages_appended_to_a_document_read_whole_are_read_on_not_again(tmp_path, store, run):
    """Whisker responses have no ids that could tell a record stored twice: pages appended to a
    file read whole before are read on from its checkpoint, whether it is read whole (under the
    limit) or a page at a time (past it), and switching between the two reads nothing twice."""
    path = tmp_path / "whisker.json"
    path.write_text(_whisker_page(0) + _whisker_page(1))
    assert run(path, format="whisker").total("rows") == 6  # read whole
    with path.open("a") as fh:
        fh.write(_whisker_page(2))
    more = run(path, format="whisker")  # whole again, from its checkpoint
    assert (more.total("rows"), more.total("skipped")) == (3, 6)
    with path.open("a") as fh:
        fh.write("".join(_whisker_page(n) for n in range(3, 9)))
    paged = run(path, format="whisker", max_document_bytes=16384)
    assert path.stat().st_size > 2 * 16384 and paged.errors == []
    assert (paged.total("rows"), paged.total("skipped")) == (18, 9)
    numbers = [r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f ORDER BY source_line")]
    assert numbers == [n * 10 + i for n in range(9) for i in range(3)]
    assert [r["source_line"] for r in rows_of(store)] == list(range(1, 28))
    assert run(path, format="whisker").total("rows") == 0


def test_a_paged_read_reports_progress_and_a_cut_gzip_export_waits(tmp_path, store, monkeypatch):
    from flowlens.ingest import IngestOptions, ingest, pages

    monkeypatch.setattr(pages, "GROUP_BYTES", 1)  # (records handed on, and progress told, per page)

    text = JOINS["pretty"]([_page(4 * i, 4) for i in range(6)]).encode()
    path = tmp_path / "export.json"
    path.write_bytes(text)
    seen: list[tuple[int, int]] = []
    summary = ingest(
        store, [str(path)], IngestOptions(max_document_bytes=LIMIT), progress=lambda b, r: seen.append((b, r))
    )
    assert summary.total("rows") == 24
    assert len(seen) >= 6 and [b for b, _ in seen] == sorted(b for b, _ in seen) and seen[-1][0] == len(text)
    cut = tmp_path / "cut.json.gz"
    whole = gzip.compress(
        JOINS["pretty"]([_page(100 + 4 * i, 4) for i in range(6)]).encode(), compresslevel=0
    )
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    first = ingest(store, [str(cut)], IngestOptions(max_document_bytes=LIMIT))
    (fs,) = first.files
    assert fs.error is None and 0 < fs.rows < 24 and fs.rows % 4 == 0  # whole pages only
    assert any("the rest once complete" in w for w in fs.warnings)
    cut.write_bytes(whole)
    rest = ingest(store, [str(cut)], IngestOptions(max_document_bytes=LIMIT))
    assert rest.total("rows") == 24 - fs.rows and rest.total("skipped") == fs.rows
    numbers = [
        r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f WHERE bytes_in >= 100 ORDER BY 1")
    ]
    assert numbers == list(range(100, 124))


@pytest.mark.parametrize(
    ("doc", "lines"),
    [
        ('{"hits": {"hits": [{"a": 1}, {"b": 2}]}}', b'{"a":1}\n{"b":2}\n'),
        ('{"items": [{"i": 1}], "hits": {"hits": [{"h": 1}]}}', b'{"i":1}\n'),  # items first
        ('{"it\\u0065ms": [{"i": 1}], "hits": {"hits": [{"h": 1}]}}', b'{"i":1}\n'),  # the same key
        ('{"hits": {"hits": []}}', b""),
        ('[{"a": 1}]', b'{"a":1}\n'),
    ],
)
def test_a_response_is_cut_into_the_records_of_its_list_whichever_way_it_is_cut(doc, lines):
    """The records of a response without an ``items`` key are cut out of ``hits.hits`` at once;
    any other response is first asked where its records are: both give the same records."""
    from flowlens.ingest.accounting import FileSummary
    from flowlens.ingest.documents import document_items

    fs = FileSummary(path="x")
    assert document_items(doc.encode(), fs, "elasticsearch") == lines and fs.warnings == []


def test_a_response_whose_hits_are_no_list_is_one_quarantined_line():
    from flowlens.ingest.accounting import FileSummary
    from flowlens.ingest.documents import document_items

    fs = FileSummary(path="x")
    assert document_items(b'{"hits": {"hits": {"x": 1}}}', fs, "elasticsearch").count(b"\n") == 1
    assert fs.warnings and "hits.hits" in fs.warnings[0]


EMPTY_WHISKER_PAGE = '{"total":{"totalPages":0,"totalResults":0},"items":null}\n'


@pytest.mark.parametrize("fmt", [None, "whisker"])
@pytest.mark.parametrize("compact", [True, False])
def test_an_empty_whisker_page_is_a_page_of_no_records(tmp_path, store, run, fmt, compact):
    """Whisker writes a window without flows as "items": null: a page of no records, first, last,
    between others or alone, read whole or a page at a time; never a quarantined record."""
    from tests.ingest.helpers import WHISKER_ITEM

    empty = EMPTY_WHISKER_PAGE if compact else json.dumps(json.loads(EMPTY_WHISKER_PAGE), indent=2) + "\n"
    alone = tmp_path / "alone.json"
    alone.write_text(empty)
    summary = run(alone, format=fmt)
    assert summary.errors == [] and (summary.total("lines_read"), summary.total("quarantined")) == (0, 0)
    page = json.dumps({"total": {"totalPages": 1}, "items": [WHISKER_ITEM]}) + "\n"
    for name, text in (
        ("first.json", empty + page),
        ("last.json", page + empty),
        ("between.json", page + empty + page),
    ):
        path = tmp_path / name
        path.write_text(text.replace(str(WHISKER_ITEM["bytes_in"]), str(len(name))))
        for limit in (None, 1024):  # (a page at a time where the file is larger: between.json)
            summary = run(path, format=fmt, max_document_bytes=limit) if limit else run(path, format=fmt)
            assert summary.errors == [] and summary.total("quarantined") == 0, (name, limit)
    assert len(rows_of(store)) == 4  # one record in first and last, two in between, each once
