"""Each input format lands in the canonical schema with its values intact."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from flowlens.formats import detect
from flowlens.formats.enterprise import ELASTICSEARCH, ENTERPRISE
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store
from tests.ingest.conftest import quarantine_of, rows_of
from tests.ingest.helpers import (
    EXAMPLE_A,
    EXAMPLE_B,
    EXAMPLE_C,
    EXAMPLE_D,
    GOLDMANE_EXAMPLE,
    WHISKER_ITEM,
    WHISKER_PUBLIC,
)

UTC = dt.UTC


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_the_reference_enterprise_records_are_detected_and_stored(tmp_path, store, run):
    log = _write(tmp_path / "flows.log", EXAMPLE_A, EXAMPLE_B, EXAMPLE_C, EXAMPLE_D)
    assert detect(log.read_bytes()) == "enterprise"
    summary = run(log)
    assert summary.total("rows") == 4
    assert summary.total("quarantined") == 0
    rows = rows_of(store)
    a, b, c, d = rows
    assert a["start_time"] == dt.datetime(2019, 7, 27, 1, 15, 29, tzinfo=UTC)
    assert a["source_name_aggr"] == "tigera-fluentd-node-*"
    assert a["source_ip"] is None and a["source_port"] is None
    assert a["dest_labels"]["role"] == "client"
    assert a["host"] == "tigera-fluentd-node-qxdr7"
    # F0 (four parts): no rule index, a profile hit
    (hit,) = a["all_policies"]
    assert hit["kind"] == "Profile" and hit["name"] == "kns.calico-monitoring" and hit["rule_index"] is None
    assert a["enforced_policies"] is None
    # B: type net/pvt, pass then profile, counters
    assert (b["source_type"], b["source_name_aggr"], b["source_namespace"]) == ("net", "pvt", "-")
    assert b["source_labels"] == {}
    assert [h["hit"] for h in b["enforced_policies"]] == [
        "0|allow-tigera|np:kube-system/allow-tigera.cluster-dns|pass|1",
        "1|__PROFILE__|pro:kns.kube-system|allow|0",
    ]
    assert (b["num_flows"], b["num_flows_started"], b["num_flows_completed"]) == (72, 66, 66)
    assert b["es_timestamp"] == dt.datetime(2023, 2, 4, 0, 3, 21, tzinfo=UTC)
    assert b["process_args"] == ["-"] and b["tcp_mean_mss"] == 0
    # C: service populated
    assert (c["dest_service_name"], c["dest_service_port"], c["dest_service_port_num"]) == (
        "kube-dns",
        "dns",
        53,
    )
    # D: level 0 with IPs and ports, staged hits in all/pending, enforced re-numbered
    assert (d["source_ip"], d["source_port"], d["dest_port"]) == ("192.168.47.9", 42106, 80)
    assert [h["staged"] for h in d["all_policies"]] == [False, True, False]
    assert d["pending_policies"][1]["kind"] == "StagedNetworkPolicy"
    assert d["enforced_policies"][1]["name"] == "access-nginx"
    assert all(r["format"] == "enterprise" and r["cluster"] == "default" for r in rows)
    assert [r["source_line"] for r in rows] == [1, 2, 3, 4]


def test_elasticsearch_hits_are_unwrapped_with_id_and_cluster(tmp_path, store, run):
    doc = json.loads(EXAMPLE_C)
    doc["cluster"] = "prod-eu-1"
    doc["generated_time"] = "2023-02-04T00:03:30Z"
    hit = {"_index": "tigera_secure_ee_flows.prod-eu-1.20230204", "_id": "abc123", "_source": doc}
    log = _write(tmp_path / "export.ndjson", json.dumps(hit))
    assert detect(log.read_bytes()) == "elasticsearch"
    run(log)
    (row,) = rows_of(store)
    assert row["format"] == "elasticsearch"
    assert row["es_id"] == "abc123"
    assert row["cluster"] == "prod-eu-1"
    assert row["generated_time"] == dt.datetime(2023, 2, 4, 0, 3, 30, tzinfo=UTC)
    assert row["dest_service_name"] == "kube-dns"


def test_cluster_option_overrides_the_records_cluster(tmp_path, store, run):
    doc = json.loads(EXAMPLE_C)
    doc["cluster"] = "from-record"
    log = _write(tmp_path / "flows.log", json.dumps(doc))
    run(log, cluster="from-option")
    assert rows_of(store)[0]["cluster"] == "from-option"


def test_goldmane_emitter_lines_with_omitted_zero_fields_are_read(tmp_path, store, run):
    log = _write(tmp_path / "goldmane.ndjson", GOLDMANE_EXAMPLE)
    assert detect(log.read_bytes()) == "goldmane"
    run(log)
    (row,) = rows_of(store)
    assert row["format"] == "goldmane"
    assert (row["source_name"], row["source_name_aggr"], row["source_type"]) == (
        "-",
        "client-7d4f8c9b5-*",
        "wep",
    )
    assert (row["reporter"], row["action"], row["proto"], row["dest_port"]) == ("dst", "allow", "tcp", 80)
    assert row["dest_service_port_num"] == 80 and row["dest_service_port"] == "-"
    assert row["source_labels"] == {"app": "client", "pod-template-hash": "7d4f8c9b5"}
    assert (row["num_flows"], row["num_flows_started"], row["bytes_in"]) == (2, 2, 1800)
    # policy_index and rule_index were omitted (zero): they default to 0
    (hit,) = row["enforced_policies"]
    assert hit["hit"] == "0|default|knp:demo/allow-client|allow|0"
    assert row["source_ip"] is None


def test_whisker_list_response_event_stream_and_lines_are_read(tmp_path, store, run):
    listing = tmp_path / "whisker.json"
    listing.write_text(
        json.dumps({"total": {"totalPages": 1}, "items": [WHISKER_ITEM, WHISKER_PUBLIC]}, indent=2)
    )
    stream = tmp_path / "whisker-stream.txt"
    stream.write_text(
        f"data: {json.dumps(WHISKER_ITEM)}\n\nevent: flow\ndata: {json.dumps(WHISKER_PUBLIC)}\n\n"
    )
    assert detect(listing.read_bytes()) == "whisker"
    assert detect(stream.read_bytes()) == "whisker"
    summary = run(listing, stream)
    assert summary.balanced
    assert summary.total("rows") == 4
    assert summary.total("ignored") == 3  # two blank separators and one event: line
    rows = rows_of(store, "SELECT * FROM f ORDER BY source_file, source_line")
    item = rows[0]
    assert item["start_time"] == dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert (item["reporter"], item["action"], item["source_type"]) == ("dst", "allow", "wep")
    assert item["dest_labels"] == {"app": "nginx"}
    assert item["enforced_policies"][0]["kind"] == "KubernetesNetworkPolicy"
    # an EndOfTier hit is folded into the policy that triggered it
    (pending,) = item["pending_policies"]
    assert (pending["kind"], pending["name"], pending["end_of_tier"]) == (
        "StagedNetworkPolicy",
        "security.lockdown",
        True,
    )
    public = rows[1]
    assert (public["source_type"], public["source_name_aggr"], public["source_namespace"]) == (
        "net",
        "pub",
        "-",
    )
    # Whisker names Kubernetes policies "NetworkPolicy" (Calico ones are "CalicoNetworkPolicy")
    assert public["enforced_policies"][0]["hit"] == "0|default|knp:demo/default-deny|deny|-1"


def test_gzipped_and_rotated_files_are_read_by_content_not_name(tmp_path, store, run):
    data = (EXAMPLE_B + "\n").encode()
    (tmp_path / "flows.log.1.gz").write_bytes(gzip.compress(data))
    (tmp_path / "oddname.bin").write_bytes(gzip.compress(EXAMPLE_C.encode() + b"\n"))
    summary = run(tmp_path)
    assert summary.total("rows") == 2
    assert sorted(r["dest_service_name"] for r in rows_of(store)) == ["-", "kube-dns"]


def test_a_directory_passes_over_yaml_and_readme_files(tmp_path, store, run):
    _write(tmp_path / "flows.log", EXAMPLE_C)
    (tmp_path / "README.md").write_text("# not a log\n")
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "np.yaml").write_text("kind: NetworkPolicy\n")
    summary = run(tmp_path)
    assert summary.total("rows") == 1
    assert summary.total("quarantined") == 0
    assert sorted(Path(p).name for p in summary.passed_over) == ["README.md", "np.yaml"]


def test_missing_optional_keys_of_old_records_are_null_not_errors(tmp_path, store, run):
    log = _write(tmp_path / "old.log", EXAMPLE_A)
    summary = run(log)
    assert summary.total("quarantined") == 0
    row = rows_of(store)[0]
    assert row["dest_service_name"] is None and row["tcp_mean_mss"] is None and row["process_name"] is None


def test_columns_felix_leaves_out_by_default_give_one_warning_per_file(tmp_path, run):
    doc = json.loads(EXAMPLE_C)
    doc["source_labels"] = None
    doc["dest_labels"] = None
    doc["policies"] = None
    log = _write(tmp_path / "flows.log", *(json.dumps(doc) for _ in range(3)))
    summary = run(log)
    (fs,) = summary.files
    assert summary.total("rows") == 3
    assert sum("labels were not logged" in w for w in fs.warnings) == 1
    assert sum("policies were not logged" in w for w in fs.warnings) == 1


def test_the_warning_names_only_the_files_that_left_the_columns_out(tmp_path, run):
    """Small files share one parse batch; each is judged on its own rows."""
    bare = json.loads(EXAMPLE_C)
    bare["source_labels"] = bare["dest_labels"] = None
    full = json.loads(EXAMPLE_C)
    paths = [
        _write(tmp_path / "a.log", *(json.dumps(full) for _ in range(2))),
        _write(tmp_path / "b.log", *(json.dumps(bare) for _ in range(2))),
        # (records of their own: a record that another file stored already is not stored again)
        _write(tmp_path / "c.log", json.dumps({**full, "bytes_in": 1}), json.dumps({**bare, "bytes_in": 1})),
    ]
    summary = run(*paths)
    assert summary.total("rows") == 6
    warned = {
        Path(fs.path).name: any("labels were not logged" in w for w in fs.warnings) for fs in summary.files
    }
    assert warned == {"a.log": False, "b.log": True, "c.log": False}
    assert not any("policies were not logged" in w for fs in summary.files for w in fs.warnings)


def test_a_whole_elasticsearch_search_response_is_read_hit_by_hit(tmp_path, store, run):
    hits = [
        {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id{i}", "_source": json.loads(EXAMPLE_C)}
        for i in range(3)
    ]
    response = {"took": 5, "timed_out": False, "hits": {"total": {"value": 3}, "hits": hits}}
    path = tmp_path / "search.json"
    path.write_text(json.dumps(response, indent=2))
    assert detect(path.read_bytes()) == "elasticsearch"
    summary = run(path)
    assert summary.total("rows") == 3 and summary.balanced
    assert [r["es_id"] for r in rows_of(store)] == ["id0", "id1", "id2"]


def test_times_without_an_offset_are_read_as_utc_whatever_the_local_time_zone(
    tmp_path, store, run, monkeypatch
):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        item = {
            **WHISKER_ITEM,
            "start_time": "2026-01-01T00:00:00",
            "end_time": "2026-01-01T00:05:00",
        }
        log = _write(tmp_path / "whisker.jsonl", json.dumps(item))
        run(log)
        (row,) = rows_of(store)
        assert row["start_time"] == dt.datetime(2026, 1, 1, tzinfo=UTC)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_each_record_keeps_its_own_cluster_and_one_without_gets_the_default(tmp_path, store, run):
    doc = json.loads(EXAMPLE_C)
    docs = [{**doc, "cluster": "eu-1"}, doc, {**doc, "cluster": "us-2"}, {**doc, "cluster": None}]
    log = _write(tmp_path / "flows.log", "\n".join(json.dumps(d) for d in docs))
    run(log, default_cluster="home")
    stored = rows_of(store, "SELECT cluster FROM f ORDER BY source_line")
    assert [r["cluster"] for r in stored] == ["eu-1", "home", "us-2", "home"]


@pytest.mark.parametrize("record", [GOLDMANE_EXAMPLE, json.dumps(WHISKER_ITEM)])
def test_goldmane_and_whisker_records_take_the_cluster_option_or_the_default(tmp_path, store, run, record):
    log = _write(tmp_path / "flows.ndjson", record)
    run(log)
    # (other bytes: the same first line would be taken for the file read before, grown)
    run(_write(tmp_path / "again.ndjson", f"{record} \n{record}  "), cluster="lab")
    stored = rows_of(store, "SELECT cluster FROM f ORDER BY source_file, source_line")
    assert sorted(r["cluster"] for r in stored) == ["default", "lab", "lab"]


def test_times_out_of_range_read_as_missing_and_the_elasticsearch_timestamp_is_kept(tmp_path, store, run):
    doc = json.loads(EXAMPLE_C)
    docs = [
        {**doc, "@timestamp": 1675469001123},
        {**doc, "@timestamp": -5},  # not a time: no es_timestamp, the record is kept
        {**doc, "end_time": 253_402_300_800},  # after the year 9999: quarantined
        {**doc, "start_time": 0, "end_time": 253_402_300_799},  # the very edges are kept
    ]
    log = _write(tmp_path / "flows.log", "\n".join(json.dumps(d) for d in docs))
    summary = run(log)
    assert (summary.total("rows"), summary.total("quarantined")) == (3, 1)
    stored = rows_of(
        store, "SELECT source_line, start_time, end_time, es_timestamp FROM f ORDER BY source_line"
    )
    assert [r["source_line"] for r in stored] == [1, 2, 4]
    assert stored[0]["es_timestamp"] == dt.datetime(2023, 2, 4, 0, 3, 21, 123000, tzinfo=UTC)
    assert stored[1]["es_timestamp"] is None
    assert stored[2]["start_time"] == dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert stored[2]["end_time"] == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("shape", ["flows.log lines", "elasticsearch hits"])
def test_an_elasticsearch_timestamp_is_epoch_milliseconds_or_an_iso_date(tmp_path, store, run, shape):
    """``@timestamp`` as Elasticsearch's default date mapping takes it: fluentd writes epoch
    milliseconds, fluent-bit an ISO-8601 text. Both become ``es_timestamp``; a value that is
    neither (a boolean, a text that names no date) is quarantined with its reason, as the
    diagnosis of the same line says, instead of being stored as a wrong or missing time."""
    doc = json.loads(EXAMPLE_C)
    when = dt.datetime(2023, 2, 4, 0, 3, 21, 123000, tzinfo=UTC)
    values = [
        1675469001123,
        "2023-02-04T00:03:21.123Z",
        "2023-02-04T01:03:21.123+01:00",
        "2023-02-04 00:03:21.123",  # no offset: UTC
        1675469001123.0,
        True,
        "yesterday",
    ]
    docs = [{**doc, "@timestamp": value} for value in values]
    if shape == "elasticsearch hits":
        docs = [
            {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id{i}", "_source": d}
            for i, d in enumerate(docs)
        ]
    log = _write(tmp_path / "flows.log", "\n".join(json.dumps(d) for d in docs))
    summary = run(log)
    assert (summary.total("rows"), summary.total("quarantined")) == (5, 2)
    stored = rows_of(store, "SELECT source_line, es_timestamp FROM f ORDER BY source_line")
    assert [(r["source_line"], r["es_timestamp"]) for r in stored] == [(n, when) for n in range(1, 6)]
    quarantined = quarantine_of(store)
    assert [r["source_line"] for r in quarantined] == [6, 7]
    assert all("'@timestamp'" in r["reason"] and "ISO-8601" in r["reason"] for r in quarantined)
    # The diagnosis of a line alone agrees with what the batch stored.
    fmt = ELASTICSEARCH if shape == "elasticsearch hits" else ENTERPRISE
    assert [fmt.diagnose(d) for d in docs[:5]] == [None] * 5
    assert all(fmt.diagnose(d) for d in docs[5:])


def _bom_inputs() -> dict[str, bytes]:
    """One input of each format and shape, as a tool that writes a byte order mark saves it."""
    hit = {"_index": "tigera_secure_ee_flows.c1.x", "_id": "id0", "_source": json.loads(EXAMPLE_C)}
    return {
        "enterprise lines": "".join(line + "\n" for line in (EXAMPLE_B, EXAMPLE_C, EXAMPLE_D)).encode(),
        "one enterprise line": (EXAMPLE_C + "\n").encode(),
        "elasticsearch hits": (json.dumps(hit) + "\n").encode(),
        "elasticsearch response": json.dumps(
            {"took": 5, "timed_out": False, "hits": {"total": {"value": 1}, "hits": [hit]}}, indent=2
        ).encode(),
        "goldmane": (GOLDMANE_EXAMPLE + "\n").encode(),
        "whisker list": json.dumps(
            {"total": {"totalPages": 1}, "items": [WHISKER_ITEM, WHISKER_PUBLIC]}
        ).encode(),
        "whisker stream": f"data: {json.dumps(WHISKER_ITEM)}\n\n".encode(),
    }


@pytest.mark.parametrize("shape", list(_bom_inputs()))
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_byte_order_mark_at_the_start_is_passed_over(tmp_path, shape, compress):
    """A UTF-8 byte order mark (PowerShell's Out-File writes one) before the first record: the
    same format, rows and line numbers as without it, nothing quarantined; the mark is counted
    among the bytes read, and appending to the file resumes after what was read."""
    from flowlens.ingest import ingest

    data = _bom_inputs()[shape]
    stores = {}
    for marked in (False, True):
        body = b"\xef\xbb\xbf" + data if marked else data
        path = tmp_path / ("marked" if marked else "plain") / ("input.gz" if compress else "input.log")
        path.parent.mkdir()
        path.write_bytes(gzip.compress(body) if compress else body)
        assert detect(body) == detect(data) is not None
        store = Store(tmp_path / f"store-{marked}")
        summary = ingest(store, [str(path)])
        assert summary.balanced and summary.total("quarantined") == 0
        assert summary.total("rows") >= 1
        stores[marked] = rows_of(
            store, "SELECT * EXCLUDE (ingest_id, source_file) FROM f ORDER BY source_line"
        )
    assert stores[True] == stores[False]


def test_a_byte_order_mark_is_consumed_once_and_an_appended_file_resumes_after_it(tmp_path, store, run):
    log = tmp_path / "flows.log"
    log.write_bytes(b"\xef\xbb\xbf" + (EXAMPLE_B + "\n").encode())
    first = run(log)
    assert first.total("rows") == 1 and first.total("quarantined") == 0
    with log.open("ab") as fh:
        fh.write((EXAMPLE_C + "\n").encode())
    second = run(log)
    assert second.total("rows") == 1 and second.total("quarantined") == 0
    assert [r["source_line"] for r in rows_of(store)] == [1, 2]
    assert run(log).total("rows") == 0  # read already: nothing more
    # A mark after the start is no byte order mark: that line is not JSON.
    with log.open("ab") as fh:
        fh.write(b"\xef\xbb\xbf" + (EXAMPLE_D + "\n").encode())
    assert run(log).total("quarantined") == 1


def _search_page(page: int, count: int) -> dict:
    hits = [
        {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"p{page}-{i}", "_source": json.loads(EXAMPLE_C)}
        for i in range(count)
    ]
    return {"_scroll_id": "c2Nhbg==", "took": 3, "timed_out": False, "hits": {"hits": hits}}


@pytest.mark.parametrize(
    "join",
    [
        lambda pages: "".join(json.dumps(p) + "\n" for p in pages),  # one compact page per line
        lambda pages: "".join(json.dumps(p) for p in pages),  # pages back to back
        lambda pages: "\n".join(json.dumps(p, indent=2) for p in pages),  # pretty-printed
    ],
    ids=["lines", "concatenated", "pretty"],
)
def test_the_pages_of_a_scroll_export_saved_in_one_file_are_all_read_in_order(tmp_path, store, run, join):
    """A scroll or search_after export saved page after page into one file: every page's hits,
    numbered on from page to page."""
    path = tmp_path / "scroll.json"
    path.write_text(join([_search_page(0, 3), _search_page(1, 2), _search_page(2, 0), _search_page(3, 1)]))
    assert detect(path.read_bytes()) == "elasticsearch"
    summary = run(path)
    assert summary.balanced and summary.total("quarantined") == 0
    rows = rows_of(store)
    assert [(r["source_line"], r["es_id"]) for r in rows] == [
        (1, "p0-0"),
        (2, "p0-1"),
        (3, "p0-2"),
        (4, "p1-0"),
        (5, "p1-1"),
        (6, "p3-0"),
    ]
    assert run(path).total("rows") == 0  # the same file again adds nothing


@pytest.mark.parametrize("pages", [1, 3])
def test_search_responses_without_took_or_shards_are_recognised(tmp_path, store, run, pages):
    """What a tool keeps of a response (``jq '{_scroll_id, hits}'``, an export script): only
    ``hits.hits`` (and a scroll id) on one compact line per page; found without --format."""
    path = tmp_path / "export.json"
    kept = [{"_scroll_id": "c2Nhbg==", "hits": _search_page(p, 2)["hits"]} for p in range(pages)]
    path.write_text("".join(json.dumps(page) + "\n" for page in kept))
    assert detect(path.read_bytes()) == "elasticsearch"
    summary = run(path)
    assert summary.balanced and summary.total("quarantined") == 0
    assert [r["es_id"] for r in rows_of(store)] == [f"p{p}-{i}" for p in range(pages) for i in range(2)]


def test_whisker_list_responses_saved_one_after_another_are_all_read(tmp_path, store, run):
    path = tmp_path / "whisker-pages.json"
    path.write_text(
        json.dumps({"total": {"totalPages": 2}, "items": [WHISKER_ITEM]})
        + "\n"
        + json.dumps({"total": {"totalPages": 2}, "items": [WHISKER_PUBLIC]})
    )
    summary = run(path)
    assert summary.total("rows") == 2 and summary.total("quarantined") == 0
    assert [r["source_name_aggr"] for r in rows_of(store)][1] == "pub"


def test_a_sequence_of_pages_cut_short_waits_and_one_with_garbage_after_is_quarantined(tmp_path, store, run):
    cut = tmp_path / "cut.json"
    text = json.dumps(_search_page(0, 2)) + "\n" + json.dumps(_search_page(1, 2))
    cut.write_text(text[:-40])
    summary = run(cut)
    assert summary.total("rows") == 0 and summary.total("quarantined") == 0
    assert any("read once complete" in w for f in summary.files for w in f.warnings)
    cut.write_text(text)  # the export completes
    assert run(cut).total("rows") == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_search_page(2, 2)) + "\nnot json\n")
    summary = run(bad)
    assert summary.total("rows") == 0 and summary.total("quarantined") == 1
    assert any("not a complete JSON document" in w for f in summary.files for w in f.warnings)


def _array_inputs() -> dict[str, tuple[str, list[Any]]]:
    """Records of each format as a JSON array (what `jq -s .`, `jq .hits.hits` or `jq .items`
    write), with the format it is."""
    hits = [
        {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id{i}", "_source": json.loads(line)}
        for i, line in enumerate((EXAMPLE_B, EXAMPLE_C, EXAMPLE_D))
    ]
    return {
        "enterprise records": (
            "enterprise",
            [json.loads(line) for line in (EXAMPLE_B, EXAMPLE_C, EXAMPLE_D)],
        ),
        "elasticsearch hits": ("elasticsearch", hits),
        "whisker items": ("whisker", [WHISKER_ITEM, WHISKER_PUBLIC]),
        "goldmane flows": ("goldmane", [json.loads(GOLDMANE_EXAMPLE)]),
    }


@pytest.mark.parametrize("shape", list(_array_inputs()))
@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_a_json_array_of_records_is_read_as_its_records(tmp_path, shape, pretty, compress):
    """A JSON array of records of any format (bare DuckDB read_json reads one): detected by its
    first element, record N is line N, the rows are those of the same records one per line, and
    reading the file again adds nothing."""
    fmt, records = _array_inputs()[shape]
    text = json.dumps(records, indent=2 if pretty else None).encode()
    path = tmp_path / ("flows.json.gz" if compress else "flows.json")
    path.write_bytes(gzip.compress(text) if compress else text)
    assert detect(text) == fmt
    lines = _write(tmp_path / "flows.ndjson", *(json.dumps(r) for r in records))

    def stored(source: Path) -> list[dict[str, Any]]:
        store = Store(tmp_path / f"store-{source.name}")
        summary = ingest(store, [str(source)], IngestOptions())
        assert summary.balanced and summary.total("quarantined") == 0
        assert summary.total("rows") == len(records)
        assert ingest(store, [str(source)], IngestOptions()).total("rows") == 0
        return [
            {k: v for k, v in row.items() if k not in ("source_file", "ingest_id", "ingested_at")}
            for row in rows_of(store)
        ]

    assert stored(path) == stored(lines)


def test_a_json_array_cut_short_waits_and_a_bad_element_is_quarantined_at_its_number(tmp_path, store, run):
    records = [json.loads(line) for line in (EXAMPLE_B, EXAMPLE_C, EXAMPLE_D)]
    records[1] = {**records[1], "dest_port": "53"}
    text = json.dumps(records, indent=2)
    path = tmp_path / "flows.json"
    path.write_text(text[: len(text) // 2])
    summary = run(path)
    assert summary.total("rows") == 0 and summary.total("quarantined") == 0  # waits for the rest
    path.write_text(text)
    summary = run(path)
    assert (summary.total("rows"), summary.total("quarantined")) == (2, 1)
    assert [q["source_line"] for q in quarantine_of(store)] == [2]


def test_a_line_that_is_a_json_array_of_numbers_is_one_bad_line_of_a_flows_log(tmp_path, store, run):
    """Only an array of objects is a document: a flows.log whose first line is ``[1, 2]`` is read
    line by line, that line quarantined and the records after it stored."""
    path = _write(tmp_path / "flows.log", "[1, 2]", EXAMPLE_B, EXAMPLE_C)
    summary = run(path, format="enterprise")
    assert (summary.total("rows"), summary.total("quarantined")) == (2, 1)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("fmt", [None, "enterprise"])
def test_a_utf16_or_utf32_file_is_refused_with_how_to_convert_it(tmp_path, store, run, encoding, fmt):
    """Windows PowerShell's ``>`` writes UTF-16 with a byte order mark: said as such, not taken
    for lines of invalid UTF-8 (which quarantined every line) or for an unknown format."""
    mark = {"utf-16-be": "\ufeff"}.get(encoding, "")  # (Python writes the mark for utf-16 and utf-32)
    path = tmp_path / "flows.log"
    path.write_bytes((mark + EXAMPLE_B + "\r\n" + EXAMPLE_C + "\r\n").encode(encoding))
    summary = run(path, format=fmt)
    (fs,) = summary.files
    assert fs.error is not None and "byte order mark" in fs.error and "iconv" in fs.error
    assert fs.error.startswith("UTF-16" if "16" in encoding else "UTF-32")
    assert (summary.total("rows"), summary.total("quarantined")) == (0, 0)


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty"])
def test_a_list_response_of_enterprise_records_is_read_as_enterprise_records(tmp_path, pretty):
    """Enterprise flow-log records listed by an API (for example ``{"total_hits", "after_key",
    "items": [...]}``): its items are flows.log records, not Whisker's (which every item failed
    as), told by the first item."""
    records = [json.loads(line) for line in (EXAMPLE_B, EXAMPLE_C, EXAMPLE_D)]
    text = json.dumps(
        {"total_hits": 3, "after_key": {"startFrom": 3}, "items": records}, indent=2 if pretty else None
    )
    path = tmp_path / "flows.json"
    path.write_text(text)
    assert detect(text.encode()) == "enterprise"
    lines = _write(tmp_path / "flows.ndjson", *(json.dumps(r) for r in records))

    def stored(source: Path) -> list[dict[str, Any]]:
        store = Store(tmp_path / f"store-{source.name}")
        summary = ingest(store, [str(source)], IngestOptions())
        assert summary.balanced and (summary.total("rows"), summary.total("quarantined")) == (3, 0)
        return [
            {k: v for k, v in r.items() if k not in ("source_file", "ingest_id", "ingested_at")}
            for r in rows_of(store)
        ]

    assert stored(path) == stored(lines)
    # (a Whisker list response is still Whisker's)
    assert detect(json.dumps({"total": {"totalPages": 1}, "items": [WHISKER_ITEM]}).encode()) == "whisker"
