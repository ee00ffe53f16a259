"""Elasticsearch exports of overlapping time windows: a hit (one Elasticsearch document, named by
its ``_id``) is stored once, whichever export brings it first, in a line-per-hit export or in a
whole ``_search`` response, in one run or several; and the cluster a hit's index names."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_C


def _hit(i: int) -> dict:
    # Each hit its own record (bytes_in = i) and document id; start times spread over two days so
    # that an export touches several partitions.
    source = {**json.loads(EXAMPLE_C), "bytes_in": i, "start_time": 1767225600 + i * 3000}
    source["end_time"] = source["start_time"] + 300
    return {"_index": "tigera_secure_ee_flows.cluster.20260101", "_id": f"doc-{i}", "_source": source}


def _search(path: Path, ids: range) -> str:
    hits = [_hit(i) for i in ids]
    path.write_text(json.dumps({"took": 3, "timed_out": False, "hits": {"hits": hits}}, indent=2))
    return str(path)


def _lines(path: Path, ids: range) -> str:
    path.write_text("".join(json.dumps(_hit(i)) + "\n" for i in ids))
    return str(path)


def _stored(store) -> Counter[str]:
    return Counter(r["es_id"] for r in rows_of(store))


@pytest.mark.parametrize("kind", ["search", "lines"])
def test_overlapping_exports_store_each_hit_once(tmp_path, store, run, kind):
    write = _search if kind == "search" else _lines
    first = run(write(tmp_path / "a.json", range(0, 40)))
    assert first.total("rows") == 40 and first.total("already_stored") == 0
    second = run(write(tmp_path / "b.json", range(25, 60)))
    assert second.total("rows") == 20
    assert second.total("already_stored") == 15
    assert second.balanced
    assert _stored(store) == Counter(f"doc-{i}" for i in range(60))


def test_a_search_response_that_grew_adds_only_its_new_hits(tmp_path, store, run):
    path = tmp_path / "window.json"
    run(_search(path, range(0, 30)))
    grown = run(_search(path, range(0, 45)))
    assert (grown.total("rows"), grown.total("already_stored")) == (15, 30)
    assert grown.balanced
    assert _stored(store) == Counter(f"doc-{i}" for i in range(45))


def test_overlapping_exports_in_one_run_store_each_hit_once_in_any_order(tmp_path):
    parts = {
        "a": (_search, range(0, 30)),
        "b": (_lines, range(20, 50)),
        "c": (_search, range(45, 70)),
    }
    results = []
    for order in itertools.permutations(parts):
        st = Store(tmp_path / ("store-" + "".join(order)))
        paths = [parts[name][0](tmp_path / f"{name}-{''.join(order)}.json", parts[name][1]) for name in order]
        summary = ingest(st, paths)
        assert summary.balanced
        assert summary.total("rows") == 70
        assert summary.total("already_stored") == 15  # 10 (a/b) and 5 (b/c) hits, whichever comes second
        stored = {(r["es_id"], r["bytes_in"], r["start_time"]) for r in rows_of(st)}
        assert len(stored) == 70
        results.append(stored)
    assert all(r == results[0] for r in results)


def test_the_same_hit_in_a_flows_log_is_another_record(tmp_path, store, run):
    """A record written to a flows.log file has no document id: an export that holds the same
    flow is not taken for a copy of the file (nor the file for a copy of the export)."""
    log = tmp_path / "flows.log"
    log.write_text("".join(json.dumps(_hit(i)["_source"]) + "\n" for i in range(10)))
    run(str(log))
    summary = run(_search(tmp_path / "a.json", range(0, 10)))
    assert (summary.total("rows"), summary.total("already_stored")) == (10, 0)
    assert len(rows_of(store)) == 20


def test_hits_without_stored_ids_are_not_compared_column_by_column(tmp_path, store, run, monkeypatch):
    """When no stored row carries one of the export's ids, the check ends after reading the id
    column: the full comparison of every column does not run."""
    from flowlens.ingest import dedupe

    run(_search(tmp_path / "a.json", range(0, 20)))
    ran: list[str] = []
    real = dedupe._row_numbers

    def spy(result):
        ran.append("all new")
        return real(result)

    monkeypatch.setattr(dedupe, "_row_numbers", spy)
    summary = run(_search(tmp_path / "b.json", range(20, 40)))
    assert summary.total("rows") == 20
    assert ran == ["all new"]


@pytest.mark.parametrize("kind", ["search", "lines"])
@pytest.mark.parametrize("stored_before", [True, False])
def test_a_hit_a_checked_export_repeats_is_stored_once(tmp_path, store, run, kind, stored_before):
    """One Elasticsearch document is one record however often an export repeats it (an
    overlapping pagination writes a hit twice): in a checked export, a repeat of a hit stored
    already, or of a new one, is already stored."""
    write = _search if kind == "search" else _lines
    run(write(tmp_path / "a.json", range(0, 10)))  # the first export into the store: not checked
    repeats = [5, 5, 20, 20, 20] if stored_before else [20, 20, 21]
    path = tmp_path / "b.json"
    hits = [_hit(i) for i in repeats]
    if kind == "search":
        path.write_text(json.dumps({"took": 3, "hits": {"hits": hits}}))
    else:
        path.write_text("".join(json.dumps(h) + "\n" for h in hits))
    second = run(str(path))
    new = {20} if stored_before else {20, 21}
    assert second.balanced
    assert (second.total("rows"), second.total("already_stored")) == (len(new), len(repeats) - len(new))
    assert _stored(store) == Counter(f"doc-{i}" for i in [*range(10), *sorted(new)])


def _indexed_hit(index: str, hit_id: str, **source: Any) -> str:
    record = {"start_time": 1767225600, "end_time": 1767225900, "action": "allow", "reporter": "src"}
    return json.dumps({"_index": index, "_id": hit_id, "_source": {**record, **source}})


@pytest.mark.parametrize("override", [None, "mine"])
def test_a_hit_of_a_multi_index_export_is_put_under_the_cluster_its_index_names(tmp_path, override):
    """Linseed's multi-index mode names the cluster in the index, not always in the record."""
    log = tmp_path / "export.ndjson"
    log.write_text(
        "\n".join(
            [
                _indexed_hit("tigera_secure_ee_flows.prod-eu.linseed-000001", "a"),
                _indexed_hit("tigera_secure_ee_flows.tenant-a.prod-ap.linseed-000001", "b"),
                _indexed_hit("tigera_secure_ee_flows.prod-us.linseed-000001", "c", cluster="named-in-record"),
                _indexed_hit("calico_flowlogs.linseed-000001", "d"),  # single-index mode: no name
                _indexed_hit("tigera_secure_ee_flows.a.b.c.d", "e"),  # not a name Linseed writes
            ]
        )
        + "\n"
    )
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(log)], IngestOptions(cluster=override))
    assert summary.total("rows") == 5
    got = {r["es_id"]: r["cluster"] for r in rows_of(store, "SELECT es_id, cluster FROM f")}
    expected = {"a": "prod-eu", "b": "prod-ap", "c": "named-in-record", "d": "default", "e": "default"}
    assert got == (expected if override is None else dict.fromkeys(expected, "mine"))
