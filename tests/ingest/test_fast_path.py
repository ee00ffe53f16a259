"""Every valid record of every layout stays on the fast path: no line of valid input is examined
one by one in Python (``FileSummary.diagnosed`` counts the lines that are), and every bad line
still is, and is quarantined.

The records come from :mod:`tests.ingest.helpers.layouts`, built from the reference's field tables: all
2,048 combinations of the Enterprise field groups present or missing, as Felix lines, bare
Elasticsearch documents and search hits; Goldmane flows with every subset of zero fields left
out; Whisker responses, event streams and lines; hypothesis for the values in between."""

from __future__ import annotations

import copy
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.formats import enterprise
from flowlens.formats.base import coerce_counter
from flowlens.ingest import IngestOptions, IngestSummary, ingest
from flowlens.ingest.checks import diagnose
from flowlens.store import Store
from tests.ingest.conftest import quarantine_of, rows_of
from tests.ingest.helpers import layouts


def _ingest(
    tmp_path: Path, name: str, lines: list[str], fmt: str | None = None
) -> tuple[Store, IngestSummary]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = Store(tmp_path / f"store-{name}")
    log = tmp_path / name
    log.write_text("".join(line + "\n" for line in lines))
    return store, ingest(store, [str(log)], IngestOptions(format=fmt))


def _valid(summary: IngestSummary, lines: int) -> None:
    assert summary.balanced
    assert summary.total("quarantined") == 0, summary.files[0].reasons
    assert summary.total("rows") == lines
    assert summary.total("diagnosed") == 0


def _felix_lines() -> list[dict[str, Any]]:
    return [layouts.felix_record(states, n) for n, states in enumerate(layouts.every_felix_layout())]


def test_every_combination_of_enterprise_field_groups_stays_on_the_fast_path(tmp_path):
    docs = _felix_lines()
    assert len(docs) == 2048
    store, summary = _ingest(tmp_path, "flows.log", [json.dumps(d, separators=(",", ":")) for d in docs])
    _valid(summary, len(docs))
    # and the values arrive: a sample of fields, row by row
    rows = rows_of(store, "SELECT * FROM f ORDER BY source_line")
    for doc, row in zip(docs, rows, strict=True):
        for key in ("tcp_mean_mss", "num_process_names", "http_requests_allowed_in", "transit_bytes_in"):
            assert row[key] == doc.get(key)
        assert row["process_id"] == doc.get("process_id")
        assert row["dest_service_port_num"] == doc.get("dest_service_port_num")
        assert row["nat_outgoing_ports"] == doc.get("nat_outgoing_ports")
        assert row["host"] == doc.get("host")
        labels = doc.get("source_labels")
        assert (row["source_labels"] is None) == (labels is None)
        policies = doc.get("policies") or {}
        for key in layouts.POLICY_KEYS:
            stored = row[key]
            assert (stored is None) == (policies.get(key) is None), (key, doc)
            assert len(stored or []) == len(policies.get(key) or [])


def test_every_combination_stays_on_the_fast_path_as_elasticsearch_hits(tmp_path):
    docs = _felix_lines()
    hits = [
        json.dumps(
            {
                "_index": "tigera_secure_ee_flows.prod.linseed-000001",
                "_id": f"id-{n}",
                "_score": None,
                "_source": d,
            }
        )
        for n, d in enumerate(docs)
    ]
    _, summary = _ingest(tmp_path, "export.ndjson", hits)
    assert summary.files[0].format == "elasticsearch"
    _valid(summary, len(docs))


# Each corruption makes a line bad; each must be examined and quarantined.
CORRUPTIONS = {
    "a TCP counter that is a string": {"tcp_lost_packets": "many"},
    "the group's first counter that is a list": {"tcp_mean_send_congestion_window": [1]},
    "an HTTP count that is an object": {"http_requests_denied_in": {"n": 1}},
    "a process count beyond 64 bits": {"num_process_ids": 2**64},
    "a transit counter that is text that is no number": {"transit_bytes_in": "seven"},
    "an original-IP count that is a boolean-like list": {"num_original_source_ips": [True]},
    "a process id that is a list": {"process_id": ["1"]},
    "a process name that is an object": {"process_name": {"a": 1}},
    "an action Calico never writes": {"action": "drop"},
    "a reporter Calico never writes": {"reporter": "both"},
    "NAT ports that are a string": {"nat_outgoing_ports": "40001"},
    "domains that are an object": {"dest_domains": {"a": 1}},
    "labels that are a list": {"source_labels": ["app=x"]},
    "a label without its key": {"dest_labels": {"labels": ["app=x", 7]}},
    "a policy trace that is a string": {"policies": {"enforced_policies": "0|t|gnp:x|allow|0"}},
    "a hit with a bad action": {"policies": {"pending_policies": ["0|default|knp:shop/x|permit|0"]}},
    "a start time that is text": {"start_time": "yesterday"},
    # (DuckDB would read these as the numbers they spell; Calico writes whole seconds as numbers)
    "a start time that is numeric text": {"start_time": "1767228900"},
    "an end time with a fraction of a second": {"end_time": 1767229200.5},
    "a negative counter beyond 64 bits": {"bytes_out": -(2**64)},
    "a port out of range": {"dest_port": 70000},
}


def test_only_bad_lines_are_examined_and_every_bad_line_is_quarantined(tmp_path):
    good = [layouts.felix_record(states, n) for n, states in enumerate(layouts.every_felix_layout()[::8])]
    full = {group: layouts.ON for group in layouts.GROUPS}
    bad = [json.dumps({**layouts.felix_record(full, 11), **change}) for change in CORRUPTIONS.values()] + [
        "not json",
        '{"start_time": 1',
        "[1, 2]",
    ]
    lines = [json.dumps(d) for d in good]
    for i, line in enumerate(bad):  # spread among the good ones
        lines.insert(i * 7, line)
    store, summary = _ingest(tmp_path, "flows.log", lines)
    assert summary.balanced
    assert summary.total("rows") == len(good)
    assert summary.total("quarantined") == len(bad)
    # Every line examined one by one is a bad one (some bad lines are told apart on the fast
    # path: a hit that does not parse, labels of the wrong shape).
    assert 0 < summary.total("diagnosed") <= len(bad)
    quarantined = {q["raw"].decode() for q in quarantine_of(store)}
    assert quarantined == set(bad)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.tuples(layouts.felix_layouts(), st.integers(0, 10_000), layouts.felix_values()),
        min_size=1,
        max_size=20,
    )
)
def test_any_valid_enterprise_record_stays_on_the_fast_path(tmp_path, records):
    docs = []
    for states, variant, values in records:
        doc = layouts.felix_record(states, variant)
        docs.append({**doc, **{k: v for k, v in values.items() if k in doc}})
    _, summary = _ingest(Path(tempfile.mkdtemp(dir=tmp_path)), "flows.log", [json.dumps(d) for d in docs])
    _valid(summary, len(docs))


# --- Goldmane and Whisker ------------------------------------------------------------------------

# Goldmane's fields in groups, each left out or not (2 ** 8 combinations); within a group, what is
# left out varies with the record.
GOLDMANE_GROUPS = (
    ("source_name", "source_namespace", "source_type"),
    ("dest_name", "dest_namespace", "dest_type"),
    ("dest_port", "proto"),
    ("dest_service_name", "dest_service_namespace", "dest_service_port_name", "dest_service_port"),
    ("policies",),
    ("source_labels", "dest_labels"),
    ("packets_in", "packets_out", "bytes_in", "bytes_out"),
    ("num_connections_started", "num_connections_completed", "num_connections_live"),
)


def _goldmane_lines() -> list[str]:
    lines = []
    for n, left_out in enumerate(itertools.product((False, True), repeat=len(GOLDMANE_GROUPS))):
        omitted = {
            field
            for group, out in zip(GOLDMANE_GROUPS, left_out, strict=True)
            if out
            for i, field in enumerate(group)
            if (n + i) % 3 or len(group) == 1  # all of a group, or some of it
        }
        assert set(omitted) <= set(layouts.GOLDMANE_OPTIONAL)
        lines.append(json.dumps(layouts.goldmane_flow(n, frozenset(omitted), wrapped=n % 5 == 0)))
    return lines


def test_goldmane_flows_with_any_zero_fields_left_out_stay_on_the_fast_path(tmp_path):
    lines = _goldmane_lines()
    _, summary = _ingest(tmp_path, "goldmane.ndjson", lines, fmt="goldmane")
    _valid(summary, len(lines))


def test_whisker_responses_streams_and_lines_stay_on_the_fast_path(tmp_path):
    flows = [layouts.whisker_flow(v) for v in range(240)]
    _, summary = _ingest(tmp_path, "flows.jsonl", [json.dumps(f) for f in flows], fmt="whisker")
    _valid(summary, len(flows))

    stream = [line for f in flows for line in ("event: flow", f"data: {json.dumps(f)}", "")]
    _, summary = _ingest(tmp_path, "flows.sse", stream, fmt="whisker")
    assert summary.total("diagnosed") == 0
    assert (summary.total("rows"), summary.total("quarantined")) == (len(flows), 0)

    response = json.dumps({"total": {"totalPages": 1}, "items": flows}, indent=2)
    _, summary = _ingest(tmp_path, "flows.json", [response], fmt="whisker")
    assert summary.total("diagnosed") == 0
    assert (summary.total("rows"), summary.total("quarantined")) == (len(flows), 0)


@pytest.mark.parametrize(
    ("fmt", "make", "corrupt"),
    [
        ("goldmane", lambda: layouts.goldmane_flow(3, frozenset()), lambda f: f["Key"].update(action=9)),
        ("goldmane", lambda: layouts.goldmane_flow(4, frozenset()), lambda f: f.update(bytes_in="many")),
        ("whisker", lambda: layouts.whisker_flow(4), lambda f: f.update(start_time="soon")),
        ("whisker", lambda: layouts.whisker_flow(5), lambda f: f.update(reporter="Both")),
        # Numeric text and fractions where Goldmane and Whisker write integers: DuckDB would read
        # them as the numbers they spell; the diagnosis says they are of the wrong type.
        ("goldmane", lambda: layouts.goldmane_flow(5, frozenset()), lambda f: f.update(bytes_out="120")),
        (
            "goldmane",
            lambda: layouts.goldmane_flow(6, frozenset()),
            lambda f: f.update(end_time=f["end_time"] + 0.5),
        ),
        (
            "goldmane",
            lambda: layouts.goldmane_flow(7, frozenset()),
            lambda f: f["Key"].update(dest_port="443"),
        ),
        ("whisker", lambda: layouts.whisker_flow(6), lambda f: f.update(packets_in=3.5)),
        ("whisker", lambda: layouts.whisker_flow(7), lambda f: f.update(dest_port="8080")),
    ],
)
def test_a_bad_goldmane_or_whisker_line_is_examined_and_quarantined(tmp_path, fmt, make, corrupt):
    good = make()
    bad = copy.deepcopy(good)
    corrupt(bad)
    _, summary = _ingest(tmp_path, "in.ndjson", [json.dumps(good), json.dumps(bad)], fmt=fmt)
    assert (summary.total("rows"), summary.total("quarantined"), summary.total("diagnosed")) == (1, 1, 1)


# --- counters: the fast path coerces as the diagnosis does ---------------------------------------

TRANSIT, TCP = enterprise.GROUPS["transit"], enterprise.GROUPS["tcp"]
# Values the two paths once read differently: a group's first counter was read as a plain integer
# (text "7" was null), its other counters as DuckDB integers (text that is no number was null, so
# a group whose counters were all no number looked like a group an older Calico did not write).
COERCED = {
    "text '7' in the first transit counter": ({"transit_bytes_in": "7"}, {"transit_bytes_in": 7}),
    "text '7' in the first TCP counter": (
        {"tcp_mean_send_congestion_window": "7"},
        {"tcp_mean_send_congestion_window": 7},
    ),
    "true in a TCP counter": ({"tcp_lost_packets": True}, {"tcp_lost_packets": 1}),
    "false in the first HTTP counter": ({"http_requests_allowed_in": False}, {"http_requests_allowed_in": 0}),
    "a fraction in a process count": ({"num_process_ids": 2.6}, {"num_process_ids": 3}),
    "padded text in an original-IP count": (
        {"num_original_source_ips": " 12 "},
        {"num_original_source_ips": 12},
    ),
}
# (the fields to change, the fields to leave out)
NO_NUMBER: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "'abc' in every transit counter": (dict.fromkeys(TRANSIT, "abc"), ()),
    "'abc' in every TCP counter": (dict.fromkeys(TCP, "abc"), ()),
    "'abc' in every transit counter but the first, which is missing": (
        dict.fromkeys(TRANSIT[1:], "abc"),
        TRANSIT[:1],
    ),
    "'abc' in one TCP counter, the others missing": (
        {"tcp_min_mss": "abc"},
        tuple(set(TCP) - {"tcp_min_mss"}),
    ),
    "text '1_000' in a TCP counter": ({"tcp_min_mss": "1_000"}, ()),
    "text 'true' in a transit counter": ({"transit_packets_out": "true"}, ()),
}
# A time of 0 has the record looked at one by one (a boolean time reads as 0): the same record on
# the other path.
PATHS: dict[str, dict[str, Any]] = {"fast path": {}, "one by one": {"start_time": 0, "end_time": 1}}


def _full_record(change: dict[str, Any], path: str, leave_out: tuple[str, ...] = ()) -> str:
    full = {group: layouts.ON for group in layouts.GROUPS}
    record = {**layouts.felix_record(full, 3), **change, **PATHS[path]}
    return json.dumps({k: v for k, v in record.items() if k not in leave_out})


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", COERCED)
def test_a_counter_that_coerces_is_stored_coerced_on_either_path(tmp_path, case, path):
    change, stored = COERCED[case]
    store, summary = _ingest(tmp_path, "flows.log", [_full_record(change, path)])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 0)
    assert summary.total("diagnosed") == (0 if path == "fast path" else 1)
    (row,) = rows_of(store, f"SELECT {', '.join(stored)} FROM f")
    assert row == stored


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", NO_NUMBER)
def test_a_counter_whose_text_is_no_number_is_quarantined_on_either_path(tmp_path, case, path):
    change, leave_out = NO_NUMBER[case]
    store, summary = _ingest(tmp_path, "flows.log", [_full_record(change, path, leave_out)])
    assert (summary.total("rows"), summary.total("quarantined"), summary.total("diagnosed")) == (0, 1, 1)
    first = next(name for name in enterprise.TYPES if name in change)
    (only,) = quarantine_of(store)
    assert only["reason"] == f"wrong type for field '{first}': expected a number, got a string"


# --- every counter: the fast path and the diagnosis agree on any value ----------------------------

# Texts near a number: what Python, DuckDB or Elasticsearch read one way or another.
NUMBER_TEXTS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "1_000",
            "1__0",
            "0x1f",
            "0X1F",
            "0b101",
            "0o17",
            "1e3",
            "1E+2",
            "-1e-2",
            "+5",
            "-0",
            "00012",
            " 12 ",
            "\t7\n",
            "2.6",
            ".5",
            "5.",
            "nan",
            "NaN",
            "inf",
            "-Infinity",
            "１２",
            "١٢",
            "true",
            "false",
            "null",
            "",
            " ",
            "0x",
            "1,000",
            "12abc",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
        ]
    ),
    st.text(alphabet="0123456789_+-.eExX ", max_size=8),
)
COUNTER_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    NUMBER_TEXTS,
    st.just([]),
    st.just({}),
)
# the counters every release writes (no optional group holds them)
ALWAYS_COUNTERS = tuple(
    n for n in enterprise.JSON_COUNTERS if not any(n in group for group in enterprise.GROUPS.values())
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.tuples(
            st.sampled_from(ALWAYS_COUNTERS) | st.sampled_from(enterprise.JSON_COUNTERS), COUNTER_VALUES
        ),
        min_size=1,
        max_size=25,
    )
)
def test_the_fast_path_and_the_diagnosis_agree_on_every_counter_value(tmp_path, values):
    """Each line holds one generated value in a counter (most often one that every release
    writes, which DuckDB once read as BIGINT), in a record with every optional group. The
    diagnosis (the per-line check) decides each line: a line it rejects is quarantined for its
    reason, a line it lets pass is stored with the value coerced as the diagnosis coerces it;
    the fast path, which sees the lines first, never decides otherwise."""
    full = {group: layouts.ON for group in layouts.GROUPS}
    lines = [
        json.dumps({**layouts.felix_record(full, n), name: value}) for n, (name, value) in enumerate(values)
    ]
    store, summary = _ingest(Path(tempfile.mkdtemp(dir=tmp_path)), "flows.log", lines)
    assert summary.balanced
    stored = {row["source_line"]: row for row in rows_of(store)}
    quarantined = {row["source_line"]: row["reason"] for row in quarantine_of(store)}
    for number, (line, (name, value)) in enumerate(zip(lines, values, strict=True), start=1):
        reason = diagnose(line.encode(), enterprise.ENTERPRISE, IngestOptions().max_line_bytes)
        if reason is None:
            assert number in stored, (name, value)
            assert stored[number][name] == coerce_counter(value), (name, value)
        else:
            assert quarantined.get(number) == reason, (name, value)
