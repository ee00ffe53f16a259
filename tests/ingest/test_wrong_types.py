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
from flowlens.ingest import _labels_not_strings, _texts_not_strings, ingest
from flowlens.store import Store
from tests.ingest import records
from tests.ingest.conftest import quarantine_of, rows_of

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
    good = json.loads(records.EXAMPLE_C)
    (reason,) = _quarantined_for(tmp_path, "flows.log", good, {**good, field: WRONG[kind]})
    assert f"wrong type for field '{field}'" in reason


@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("field", goldmane._KEY_STRINGS)
def test_a_goldmane_key_text_of_another_type_is_quarantined(tmp_path, field, kind):
    good = json.loads(records.GOLDMANE_EXAMPLE)
    bad = copy.deepcopy(good)
    bad["Key"][field] = WRONG[kind]
    (reason,) = _quarantined_for(tmp_path, "goldmane.ndjson", good, bad)
    assert f"Key: wrong type for field '{field}'" in reason


@pytest.mark.parametrize("item", [["a=b"], {"a": "b"}, True, 5, None])
def test_a_goldmane_label_that_is_not_a_string_is_quarantined(tmp_path, item):
    good = json.loads(records.GOLDMANE_EXAMPLE)
    bad = {**good, "dest_labels": ["app=nginx", item]}
    store, summary = _ingest(tmp_path, "goldmane.ndjson", [good, bad])
    assert summary.balanced
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 1)
    assert "wrong type for field 'dest_labels'" in quarantine_of(store)[0]["reason"]


WHISKER_TEXTS = ["source_name", "source_namespace", "dest_name", "dest_namespace", "protocol"]


@pytest.mark.parametrize("kind", WRONG)
@pytest.mark.parametrize("field", [*WHISKER_TEXTS, "source_labels", "dest_labels"])
def test_a_whisker_text_field_of_another_type_is_quarantined(tmp_path, field, kind):
    good = records.WHISKER_ITEM
    (reason,) = _quarantined_for(tmp_path, "whisker.jsonl", good, {**good, field: WRONG[kind]})
    assert f"wrong type for field '{field}'" in reason


def test_a_whisker_label_field_that_is_a_number_is_quarantined(tmp_path):
    good = records.WHISKER_ITEM
    (reason,) = _quarantined_for(tmp_path, "whisker.jsonl", good, {**good, "dest_labels": 5})
    assert "wrong type for field 'dest_labels'" in reason


def test_goldmane_and_whisker_strings_that_only_look_like_other_types_are_stored(tmp_path):
    """Text that merely starts like a list, and a label without '=', pass the diagnosis."""
    goldmane = json.loads(records.GOLDMANE_EXAMPLE)
    goldmane["Key"]["dest_name"] = "[canary]"
    goldmane["dest_labels"] = ["app=nginx", "standalone"]
    store, summary = _ingest(tmp_path, "goldmane.ndjson", [goldmane])
    assert (summary.total("rows"), summary.total("quarantined")) == (1, 0)
    (row,) = rows_of(store)
    assert row["dest_name_aggr"] == "[canary]"
    assert set(row["dest_labels"]) == {"app", "standalone"}

    whisker = {**records.WHISKER_ITEM, "source_namespace": "true"}
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
    assert _texts_not_strings(array).tolist() == [_text_rule(v) for v in values[start:]]


@given(
    rows=st.lists(st.one_of(st.none(), st.lists(TEXTS, max_size=4)), max_size=20),
    start=st.integers(0, 3),
)
def test_the_label_check_follows_the_rule(rows, start):
    array = pa.array(rows, pa.list_(pa.string()))[start:]
    assert _labels_not_strings(array).tolist() == [_label_rule(r) for r in rows[start:]]
