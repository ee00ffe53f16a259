"""A JSON value of the wrong type in a text field is quarantined, never stored as its JSON text.

DuckDB reads any JSON value into a VARCHAR field as its text, so ``["a"]`` in a namespace field
would come out as the text ``["a"]``. Ingest makes such records suspect (on the Arrow result of
the batch query, for speed) and the diagnosis names the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlens.formats import enterprise, goldmane
from flowlens.ingest import ingest
from flowlens.ingest.checks import labels_not_strings, plain_ints, texts_not_strings
from flowlens.store import Store
from tests.ingest import helpers
from tests.ingest.conftest import quarantine_of, rows_of
from tests.ingest.helpers import EXAMPLE_C, GOLDMANE_EXAMPLE, WHISKER_ITEM

WRONG = {"a list": ["a"], "an object": {"a": 1}, "a boolean": True}


def _ingest(tmp_path: Path, name: str, docs: list[dict[str, Any]]) -> tuple[Store, Any]:
    tmp_path.mkdir(exist_ok=True)
    store = Store(tmp_path / "store")
    log = tmp_path / name
    log.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return store, ingest(store, [str(log)])


def _quarantined_for(tmp_path: Path, name: str, good: dict[str, Any], bad: dict[str, Any]) -> list[str]:
    store, summary = _ingest(tmp_path, name, [good, bad, good])
    assert summary.balanced
    assert (summary.total("rows"), summary.total("quarantined")) == (2, 1)
    (only,) = quarantine_of(store)
    assert only["source_line"] == 2
    return [only["reason"]]


@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("field", enterprise._STRINGS)
def test_an_enterprise_text_field_of_another_type_is_quarantined(tmp_path, field, kind):
    good = json.loads(EXAMPLE_C)
    (reason,) = _quarantined_for(tmp_path, "flows.log", good, {**good, field: WRONG[kind]})
    assert f"wrong type for field '{field}'" in reason


@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("field", goldmane._KEY_STRINGS)
def test_a_goldmane_key_text_of_another_type_is_quarantined(tmp_path, field, kind):
    good = json.loads(GOLDMANE_EXAMPLE)
    bad = copy.deepcopy(good)
    bad["Key"][field] = WRONG[kind]
    (reason,) = _quarantined_for(tmp_path, "goldmane.ndjson", good, bad)
    assert f"Key: wrong type for field '{field}'" in reason


@pytest.mark.parametrize("item", [["a=b"], {"a": "b"}, True, 5, None])
def test_a_goldmane_label_that_is_not_a_string_is_quarantined(tmp_path, item):
    good = json.loads(GOLDMANE_EXAMPLE)
    bad = {**good, "dest_labels": ["app=nginx", item]}
    store, summary = _ingest(tmp_path, "goldmane.ndjson", [good, bad])
    assert summary.balanced
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)
    assert "wrong type for field 'dest_labels'" in quarantine_of(store)[0]["reason"]


WHISKER_TEXTS = ["source_name", "source_namespace", "dest_name", "dest_namespace", "protocol"]


@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("field", [*WHISKER_TEXTS, "source_labels", "dest_labels"])
def test_a_whisker_text_field_of_another_type_is_quarantined(tmp_path, field, kind):
    good = WHISKER_ITEM
    (reason,) = _quarantined_for(tmp_path, "whisker.jsonl", good, {**good, field: WRONG[kind]})
    assert f"wrong type for field '{field}'" in reason


def test_a_whisker_label_field_that_is_a_number_is_quarantined(tmp_path):
    good = WHISKER_ITEM
    (reason,) = _quarantined_for(tmp_path, "whisker.jsonl", good, {**good, "dest_labels": 5})
    assert "wrong type for field 'dest_labels'" in reason


def test_goldmane_and_whisker_strings_that_only_look_like_other_types_are_stored(tmp_path):
    """Text that merely starts like a list, and a label without '=', pass the diagnosis."""
    goldmane = json.loads(GOLDMANE_EXAMPLE)
    goldmane["Key"]["dest_name"] = "[canary]"
    goldmane["dest_labels"] = ["app=nginx", "standalone"]
    store, summary = _ingest(tmp_path, "goldmane.ndjson", [goldmane])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 0)
    (row,) = rows_of(store)
    assert row["dest_name_aggr"] == "[canary]"
    assert set(row["dest_labels"]) == {"app", "standalone"}

    whisker = {**WHISKER_ITEM, "source_namespace": "true"}
    store, summary = _ingest(tmp_path / "w", "whisker.jsonl", [whisker])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 0)
    assert rows_of(store)[0]["source_namespace"] == "true"


# --- the Arrow checks themselves, against a plain Python statement of the rule -----------------


def _text_rule(value: str | None) -> bool:
    return value is not None and (value[:1] in ("[", "{") or value in ("true", "false"))


def _label_rule(items: list[str | None] | None) -> bool:
    return any(i is None or i[:1] in ("[", "{") or "=" not in i for i in items or [])


TEXTS = st.one_of(
    st.none(),
    st.sampled_from(["", "[", "{}", "true", "false", "tru", "truex", "fals", "tcp", "f", "t", "=x"]),
    st.text(alphabet="[{tfrueals=x", max_size=6),
)


@given(
    values=st.lists(TEXTS, max_size=40), start=st.integers(0, 5), text_type=st.sampled_from(["s", "l", "v"])
)
def test_the_text_check_follows_the_rule_on_any_layout(values, start, text_type):
    """Plain and large strings are read through their offsets (a slice included); string views
    are cast first."""
    arrow_type = {"s": pa.string(), "l": pa.large_string(), "v": pa.string_view()}[text_type]
    array = pa.array(values, arrow_type)[start:]
    assert texts_not_strings(array).tolist() == [_text_rule(v) for v in values[start:]]


@given(
    rows=st.lists(st.one_of(st.none(), st.lists(TEXTS, max_size=4)), max_size=20),
    start=st.integers(0, 3),
)
def test_the_label_check_follows_the_rule(rows, start):
    array = pa.array(rows, pa.list_(pa.string()))[start:]
    assert labels_not_strings(array).tolist() == [_label_rule(r) for r in rows[start:]]


# --- integers read as JSON text (ports), and fields that must not be null ----------------------

PORT_VALUES = {
    "a string": ("80", False),
    "a boolean": (True, False),
    "a fraction": (80.5, False),
    "a list": ([80], False),
    "an object": ({"port": 80}, False),
    "a negative number": (-1, False),
    "a number over 65535": (70000, False),
    "an integer beyond 64 bits": (2**64, False),
    "a whole number written with a fraction": (80.0, True),  # the diagnosis lets it pass as 80
    "null": (None, True),
    "zero": (0, True),
    "the highest port": (65535, True),
}


@pytest.mark.parametrize("field", ["source_port", "dest_port", "dest_service_port_num"])
@pytest.mark.parametrize("case", PORT_VALUES)
def test_a_port_is_stored_only_when_it_is_an_integer_in_range(tmp_path, field, case):
    value, stored = PORT_VALUES[case]
    if field == "dest_service_port_num" and case in ("a negative number", "a number over 65535"):
        stored = True  # a service port number is only bound to 32 bits
    good = json.loads(EXAMPLE_C)
    store, summary = _ingest(tmp_path, "flows.log", [good, {**good, field: value}, good])
    assert summary.balanced
    if stored:
        assert (summary.total("rows"), summary.total("quarantined")) == (3, 0)
        (row,) = rows_of(store, f"SELECT {field} FROM f WHERE source_line = 2")
        assert row[field] == (None if value is None else int(value))
    else:
        assert (summary.total("rows"), summary.total("quarantined")) == (2, 1)
        (only,) = quarantine_of(store)
        assert only["source_line"] == 2
        assert f"'{field}'" in only["reason"]


def test_a_service_port_number_beyond_32_bits_is_quarantined(tmp_path):
    good = json.loads(EXAMPLE_C)
    (reason,) = _quarantined_for(tmp_path, "flows.log", good, {**good, "dest_service_port_num": 2**31})
    assert "field 'dest_service_port_num' out of range" in reason


@pytest.mark.parametrize("field", [*enterprise.REQUIRED, "bytes_in", "num_flows"])
@pytest.mark.parametrize("value", ["many", None, [1]])
def test_a_required_field_or_counter_that_is_not_a_number_or_missing_is_looked_at(tmp_path, field, value):
    """A required field or counter that reads as null is suspect: the diagnosis decides (a
    required field must be there; any field must have its type)."""
    good = json.loads(EXAMPLE_C)
    store, summary = _ingest(tmp_path, "flows.log", [good, {**good, field: value}])
    assert summary.balanced
    if field in enterprise.REQUIRED and value is None:
        assert f"missing required field '{field}'" in quarantine_of(store)[0]["reason"]
    elif value is None:  # a counter left out by an old Calico: stored as null
        assert summary.total("rows") == 2
        assert rows_of(store, f"SELECT {field} FROM f WHERE source_line = 2")[0][field] is None
    else:
        (only,) = quarantine_of(store)
        assert only["source_line"] == 2
        assert f"'{field}'" in only["reason"]


GROUP_COUNTERS = [
    n for group in enterprise.GROUPS.values() for n in group if n not in ("process_name", "process_id")
]


@pytest.mark.parametrize("value", ["wide", [1], {"n": 1}, 2**64])
@pytest.mark.parametrize("field", GROUP_COUNTERS)
def test_an_optional_counter_of_the_wrong_type_is_quarantined(tmp_path, field, value):
    """Calico writes the HTTP, process, original-IP, TCP and transit counters in groups; a counter
    of the wrong type reads as null, but the rest of its group (or, for the group's first
    counter, its raw text) gives it away."""
    good = json.loads(EXAMPLE_C)
    modern = {**good, "process_name": "nginx", **{k: 1 for k in GROUP_COUNTERS}}
    (reason,) = _quarantined_for(tmp_path, "flows.log", modern, {**modern, field: value})
    assert f"'{field}'" in reason


@pytest.mark.parametrize("group", enterprise.GROUPS)
def test_a_group_of_counters_an_older_calico_did_not_write_is_stored_as_null(tmp_path, group):
    good = json.loads(EXAMPLE_C)
    modern = {**good, "process_name": "nginx", **{k: 1 for k in GROUP_COUNTERS}}
    older = {k: v for k, v in modern.items() if k not in enterprise.GROUPS[group]}
    store, summary = _ingest(tmp_path, "flows.log", [modern, older])
    assert (summary.total("rows"), summary.total("quarantined")) == (2, 0)
    rows = rows_of(store, "SELECT * FROM f ORDER BY source_line")
    for name in enterprise.GROUPS[group]:
        assert rows[0][name] is not None and rows[1][name] is None


@given(
    texts=st.lists(
        st.one_of(
            st.none(),
            st.integers(-(2**70), 2**70).map(str),
            st.sampled_from(['"80"', "true", "false", "80.0", "-0", "1.5", "[80]", "{}", "1e3", "null"]),
        ),
        max_size=30,
    )
)
def test_the_integer_reading_follows_json(texts):
    """plain_ints against json.loads: a plain integer within 64 bits is read as itself and not
    odd; a whole number with a fraction keeps its value but is odd; anything else is odd and
    null; a null stays null and is not odd."""
    values, odd = plain_ints(pa.array(texts, pa.string()))
    expected_values, expected_odd = [], []
    for text in texts:
        value = None if text is None else json.loads(text)
        plain = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
        whole = isinstance(value, float) and value.is_integer()
        expected_values.append(value if plain else int(value) if whole else None)
        expected_odd.append(text is not None and not plain)
    assert values.to_pylist() == expected_values
    assert odd.tolist() == expected_odd


# --- values: times and counters -------------------------------------------------------------


@pytest.mark.parametrize("field", ["start_time", "end_time"])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_time_is_quarantined_with_the_field_named(tmp_path, field, value):
    good = json.loads(helpers.EXAMPLE_C)
    (reason,) = _quarantined_for(tmp_path, "flows.log", good, {**good, field: value})
    assert reason == f"wrong type for field '{field}': expected an integer, got a boolean"


def test_a_boolean_time_in_an_elasticsearch_hit_is_quarantined(tmp_path):
    good = {"_id": "a", "_index": "flows", "_source": json.loads(helpers.EXAMPLE_C)}
    bad = copy.deepcopy(good)
    bad["_source"]["start_time"] = True
    (reason,) = _quarantined_for(tmp_path, "export.ndjson", good, bad)
    assert "'start_time'" in reason and "boolean" in reason


def test_times_of_zero_and_one_second_after_1970_are_still_stored(tmp_path):
    good = json.loads(helpers.EXAMPLE_C)
    _store, summary = _ingest(tmp_path, "flows.log", [{**good, "start_time": 0, "end_time": 1}])
    assert summary.total("rows") == 1 and summary.total("quarantined") == 0


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("flows.log", lambda: {**json.loads(helpers.EXAMPLE_C), "end_time": 1675468000}),
        ("goldmane.ndjson", lambda: {**json.loads(helpers.GOLDMANE_EXAMPLE), "end_time": 1767225000}),
        ("whisker.ndjson", lambda: {**helpers.WHISKER_ITEM, "end_time": "2025-12-31T23:00:00Z"}),
    ],
)
def test_an_end_time_before_the_start_time_is_quarantined_in_every_format(tmp_path, name, make):
    bad = make()
    good = {**bad, "end_time": bad["start_time"]}
    (reason,) = _quarantined_for(tmp_path, name, good, bad)
    assert reason == "field 'end_time' is before 'start_time'"


OPTIONAL_COUNTERS = (
    *enterprise.GROUPS["transit"],
    "tcp_mean_mss",
    "http_requests_allowed_in",
    "num_process_ids",
)


@pytest.mark.parametrize("field", OPTIONAL_COUNTERS)
@pytest.mark.parametrize("process_name", [True, False])
def test_text_that_is_no_number_in_an_optional_counter_is_quarantined(tmp_path, field, process_name):
    good = json.loads(helpers.EXAMPLE_B if process_name else helpers.EXAMPLE_A)
    (reason,) = _quarantined_for(tmp_path, "flows.log", good, {**good, field: "many"})
    assert reason == f"wrong type for field '{field}': expected a number, got a string"


@pytest.mark.parametrize(
    ("value", "stored"), [("8052", 8052), (8052.6, 8053), (True, 1), (" 12 ", 12), (None, None)]
)
def test_optional_counters_are_coerced_as_elasticsearch_does(tmp_path, value, stored):
    old = json.loads(helpers.EXAMPLE_A)  # a record without process_name: its counters may be missing
    store, summary = _ingest(
        tmp_path, "flows.log", [{**old, "transit_bytes_in": value, "tcp_mean_mss": value}]
    )
    assert summary.total("rows") == 1
    (row,) = rows_of(store, "SELECT transit_bytes_in, tcp_mean_mss FROM f")
    assert row == {"transit_bytes_in": stored, "tcp_mean_mss": stored}


def test_a_record_looked_at_for_another_reason_keeps_its_coerced_counters(tmp_path):
    """The diagnosis accepts what the fast path coerces: a record made suspect by a time of 0 is
    stored with its counter written as text, not quarantined for it."""
    good = json.loads(helpers.EXAMPLE_C)
    store, summary = _ingest(
        tmp_path, "flows.log", [{**good, "start_time": 0, "end_time": 1, "bytes_in": "8052"}]
    )
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 0)
    assert rows_of(store, "SELECT bytes_in FROM f") == [{"bytes_in": 8052}]
