"""Nothing lost: every line becomes a row or a quarantined line with its reason, and counts add up."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store
from tests.ingest.conftest import quarantine_of, rows_of
from tests.ingest.helpers import EXAMPLE_C

GOOD = json.loads(EXAMPLE_C)


def _good(i: int) -> str:
    return json.dumps({**GOOD, "bytes_in": i})


BAD_LINES = {
    "invalid JSON": b'{"start_time": 1675468688, "end_time":',
    "wrong type for field 'bytes_in'": json.dumps({**GOOD, "bytes_in": "lots"}).encode(),
    "wrong type for field 'dest_port'": json.dumps({**GOOD, "dest_port": "https"}).encode(),
    "wrong type for field 'source_labels'": json.dumps({**GOOD, "source_labels": ["a=b"]}).encode(),
    "missing required field 'start_time'": json.dumps(
        {k: v for k, v in GOOD.items() if k != "start_time"}
    ).encode(),
    "missing required field 'action'": json.dumps({**GOOD, "action": None}).encode(),
    "invalid UTF-8": json.dumps(GOOD).encode().replace(b"kube-dns", b"kube-\xff\xfedns"),
    "blank line": b"   ",
    "not a JSON object": b"[1, 2, 3]",
    "invalid policy hit": json.dumps(
        {**GOOD, "policies": {"enforced_policies": ["zero|tier|tier.name|allow|0"]}}
    ).encode(),
    "duplicate label key": json.dumps({**GOOD, "dest_labels": {"labels": ["app=a", "app=b"]}}).encode(),
    "wrong type for field 'dest_labels'": json.dumps(
        {**GOOD, "dest_labels": {"labels": ["app=a", 5]}}
    ).encode(),
    "wrong type for field 'policies.enforced_policies'": json.dumps(
        {
            **GOOD,
            "policies": {"enforced_policies": "x", "pending_policies": GOOD["policies"]["pending_policies"]},
        }
    ).encode(),
    "out of range": json.dumps({**GOOD, "dest_port": 70000}).encode(),
    "invalid value for field 'action'": json.dumps({**GOOD, "action": "maybe"}).encode(),
    "invalid value for field 'reporter'": json.dumps({**GOOD, "reporter": "both"}).encode(),
    "wrong type for field 'proto'": json.dumps({**GOOD, "proto": True}).encode(),
    "wrong type for field 'source_namespace'": json.dumps({**GOOD, "source_namespace": ["a"]}).encode(),
    "wrong type for field 'dest_name_aggr'": json.dumps({**GOOD, "dest_name_aggr": {"a": 1}}).encode(),
    "wrong type for field 'dest_service_port_num'": json.dumps(
        {**GOOD, "dest_service_port_num": "53"}
    ).encode(),
    "wrong type for field 'source_port'": json.dumps({**GOOD, "source_port": 80.5}).encode(),
}


def test_strings_that_only_look_like_lists_or_booleans_are_stored(tmp_path):
    """The SQL side flags text that could be a list, object or boolean; the diagnosis clears it."""
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    odd = [{**GOOD, "source_name": "[x]"}, {**GOOD, "dest_name": "true"}, {**GOOD, "reporter": "fwd"}]
    log.write_text("".join(json.dumps(doc) + "\n" for doc in odd))
    summary = ingest(store, [str(log)])
    assert (summary.total("rows"), summary.total("quarantined")) == (3, 0)
    stored = rows_of(store, "SELECT source_name, dest_name, reporter FROM f ORDER BY source_line")
    assert [(r["source_name"], r["dest_name"], r["reporter"]) for r in stored] == [
        ("[x]", GOOD["dest_name"], GOOD["reporter"]),
        (GOOD["source_name"], "true", GOOD["reporter"]),
        (GOOD["source_name"], GOOD["dest_name"], "fwd"),
    ]


@pytest.mark.parametrize("fmt", [None, "enterprise"])
def test_a_flows_log_whose_values_say_items_is_read_line_by_line(tmp_path, fmt):
    """A Service named "items" (in a namespace named "total"), or a line that is just the string
    "items": still a flows.log, not a list response (it used to be read as one document, every
    record quarantined; found by its format, it was taken for Whisker's)."""
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    records = [
        {**GOOD, "dest_service_name": "items", "dest_service_namespace": "total", "bytes_in": i}
        for i in range(3)
    ]
    log.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + b'"items"\n')
    summary = ingest(store, [str(log)], IngestOptions(format=fmt))
    assert (summary.total("lines_read"), summary.total("rows"), summary.total("quarantined")) == (4, 3, 1)
    assert [r["dest_service_name"] for r in rows_of(store, "SELECT dest_service_name FROM f")] == [
        "items"
    ] * 3


def test_every_kind_of_bad_line_is_quarantined_with_file_line_and_reason(tmp_path):
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    lines = [_good(0)]
    expected: list[tuple[int, str]] = []
    for reason, raw in BAD_LINES.items():
        lines.append(raw.decode("utf-8", errors="surrogateescape"))
        expected.append((len(lines), reason))
        lines.append(_good(len(lines)))
    log.write_bytes(b"".join(line.encode("utf-8", errors="surrogateescape") + b"\n" for line in lines))
    summary = ingest(store, [str(log)])
    assert summary.balanced
    assert summary.total("lines_read") == len(lines)
    assert summary.total("quarantined") == len(BAD_LINES)
    assert summary.total("rows") == len(lines) - len(BAD_LINES)
    quarantined = quarantine_of(store)
    assert [(q["source_line"]) for q in quarantined] == [line for line, _ in expected]
    for q, (_, reason) in zip(quarantined, expected, strict=True):
        assert reason in q["reason"], (q["reason"], reason)
        assert q["source_file"] == str(log)
    # the raw bytes are kept exactly, invalid UTF-8 included
    utf8 = next(q for q in quarantined if "UTF-8" in q["reason"])
    assert utf8["raw"] == BAD_LINES["invalid UTF-8"]


def test_a_line_longer_than_the_limit_is_quarantined(tmp_path):
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    long_line = json.dumps({**GOOD, "process_name": "x" * 5000})
    log.write_text(_good(1) + "\n" + long_line + "\n")
    summary = ingest(store, [str(log)], IngestOptions(max_line_bytes=2048))
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)
    (q,) = quarantine_of(store)
    assert "line too long" in q["reason"] and q["source_line"] == 2


def test_a_truncated_gzip_member_keeps_the_whole_lines_before_the_cut_and_the_cut_line_waits(tmp_path):
    store = Store(tmp_path / "store")
    data = "".join(_good(i) + "\n" for i in range(200)).encode()
    compressed = gzip.compress(data)
    path = tmp_path / "flows.log.1.gz"
    path.write_bytes(compressed[: len(compressed) * 2 // 3])
    summary = ingest(store, [str(path)])
    (fs,) = summary.files
    assert any("ends before its end marker" in w for w in fs.warnings)
    assert fs.error is None  # a file still being written: a warning, not an error
    assert summary.balanced
    assert 1 <= fs.rows < 200 and fs.quarantined == 0
    assert fs.lines_read == fs.rows  # the cut line is not counted: it is not a line yet
    assert fs.pending_bytes > 0
    assert quarantine_of(store) == []


_good_record = st.fixed_dictionaries(
    {
        "start_time": st.integers(min_value=0, max_value=4_000_000_000),
        "duration": st.integers(min_value=0, max_value=3600),
        "source_namespace": st.text(string.ascii_lowercase + "-", min_size=1, max_size=12),
        "source_name_aggr": st.text(string.ascii_letters + "-*", min_size=1, max_size=20),
        "dest_port": st.one_of(st.none(), st.integers(min_value=0, max_value=65535)),
        "bytes_in": st.integers(min_value=0, max_value=2**62),
        "proto": st.sampled_from(["tcp", "udp", "icmp", "132"]),
        "action": st.sampled_from(["allow", "deny"]),
        "reporter": st.sampled_from(["src", "dst"]),
        "labels": st.dictionaries(
            st.text(string.ascii_lowercase + "./", min_size=1, max_size=10),
            st.text(string.printable.replace("\n", "").replace("\r", ""), max_size=10),
            max_size=4,
        ),
        "hits": st.lists(
            st.sampled_from(
                [
                    "0|default|production/knp.default.allow-web|allow|0",
                    "0|tier1|tier1.gnp-a|pass|-1",
                    "1|__PROFILE__|__PROFILE__.kns.production|allow|0",
                    "0|security|np:production/security.lock|deny|2",
                ]
            ),
            max_size=3,
            unique=True,
        ),
    }
)


def _record(r: dict) -> dict:
    doc = dict(GOOD)
    doc.update(
        start_time=r["start_time"],
        end_time=r["start_time"] + r["duration"],
        source_namespace=r["source_namespace"],
        source_name_aggr=r["source_name_aggr"],
        dest_port=r["dest_port"],
        bytes_in=r["bytes_in"],
        proto=r["proto"],
        action=r["action"],
        reporter=r["reporter"],
        source_labels={"labels": [f"{k}={v}" for k, v in r["labels"].items()]},
        policies={"enforced_policies": r["hits"]},
    )
    return doc


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_good_record, min_size=1, max_size=12))
def test_valid_records_come_out_with_the_same_values(tmp_path_factory, recs):
    tmp = tmp_path_factory.mktemp("prop")
    store = Store(tmp / "store")
    log = tmp / "flows.log"
    docs = [_record(r) for r in recs]
    log.write_text("".join(json.dumps(d) + "\n" for d in docs))
    summary = ingest(store, [str(log)])
    assert summary.total("quarantined") == 0 and summary.total("rows") == len(docs)
    rows = rows_of(store)
    assert len(rows) == len(docs)
    for row, doc, r in zip(rows, docs, recs, strict=True):
        assert row["start_time"] == dt.datetime.fromtimestamp(doc["start_time"], dt.UTC)
        assert row["end_time"] == dt.datetime.fromtimestamp(doc["end_time"], dt.UTC)
        for key in (
            "source_namespace",
            "source_name_aggr",
            "dest_port",
            "bytes_in",
            "proto",
            "action",
            "reporter",
        ):
            assert row[key] == doc[key], key
        assert row["source_labels"] == r["labels"]
        got = sorted(h["policy_index"] for h in row["enforced_policies"])
        assert [h["policy_index"] for h in row["enforced_policies"]] == got


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=10**6).map(lambda i: _good(i).encode()),
            st.sampled_from(list(BAD_LINES.values())),
            st.binary(max_size=40).filter(lambda b: b"\n" not in b),
        ),
        min_size=1,
        max_size=30,
    ).filter(lambda lines: not lines[0].startswith(b"\x1f\x8b\x08"))  # (a gzip file: see below)
)
def test_counts_add_up_for_any_mix_of_good_and_corrupt_lines(tmp_path_factory, lines):
    tmp = tmp_path_factory.mktemp("acct")
    store = Store(tmp / "store")
    log = tmp / "flows.log"
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    summary = ingest(store, [str(log)], IngestOptions(format="enterprise"))
    assert summary.balanced
    assert summary.total("lines_read") == len(lines)
    assert summary.total("rows") + summary.total("quarantined") == len(lines)
    assert len(rows_of(store)) == summary.total("rows")
    assert len(quarantine_of(store)) == summary.total("quarantined")


def test_a_line_that_starts_like_gzip_is_still_a_line(tmp_path):
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    log.write_bytes(b"\x1f\x8b\n")
    summary = ingest(store, [str(log)], IngestOptions(format="enterprise"))
    assert (summary.total("lines_read"), summary.total("quarantined")) == (1, 1)
    assert quarantine_of(store)[0]["raw"] == b"\x1f\x8b"


def test_compressed_data_that_yields_nothing_is_a_file_error_and_nothing_is_stored(tmp_path):
    store = Store(tmp_path / "store")
    path = tmp_path / "flows.log.1.gz"
    path.write_bytes(b"\x1f\x8b\x08" + b"\x00" * 7 + b"this is not deflate data" * 3)
    good = tmp_path / "flows.log"
    good.write_text(_good(1) + "\n")
    summary = ingest(store, [str(path), str(good)])
    assert summary.balanced
    damaged = next(f for f in summary.files if f.path == str(path))
    assert damaged.error is not None and "damaged" in damaged.error
    assert (damaged.lines_read, damaged.quarantined, damaged.rows) == (0, 0, 0)
    assert summary.total("rows") == 1  # the run went on with the other file
    assert summary.errors == [f"{path}: {damaged.error}"]
