"""flowlens.engine.queries: query files, their headers, parameters and binding."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flowlens.engine import connect
from flowlens.engine.queries import (
    bind_params,
    check_query,
    coerce_param_value,
    load_queries,
    parse_query,
    used_params,
)
from flowlens.errors import QueryError
from tests.engine.helpers import HEADER
from tests.factories import flow_row, write_store


def _at(day_offset: int, hour: int = 12, **overrides: object) -> dict[str, object]:
    start = dt.datetime(2026, 11, 20, hour, 0, tzinfo=dt.UTC) + dt.timedelta(days=day_offset)
    return flow_row(start_time=start, end_time=start + dt.timedelta(minutes=5), **overrides)


# ---------------------------------------------------------------------------- query files


def test_a_query_header_gives_description_explanation_and_typed_parameters() -> None:
    spec = parse_query(HEADER.format(name="mine"), "mine", "mine.sql")
    assert spec.name == "mine"
    assert spec.description == "Flows of one namespace."
    assert spec.explanation == "Longer text,\non two lines."
    assert [(p.name, p.type, p.default, p.required, p.doc) for p in spec.params] == [
        ("namespace", "VARCHAR", None, False, "only this namespace"),
        ("min_bytes", "BIGINT", 0, False, "at least this many bytes"),
        ("label", "VARCHAR", "it's", False, "a quoted default"),
        ("port", "INTEGER", None, True, "required"),
    ]
    assert spec.used_params == {"namespace", "min_bytes", "label", "port"}
    assert spec.sql.startswith("SELECT $namespace")
    assert check_query(spec) == []
    assert [p.signature() for p in spec.params] == [
        "namespace VARCHAR = NULL",
        "min_bytes BIGINT = 0",
        "label VARCHAR = 'it''s'",
        "port INTEGER",
    ]


def test_parameters_in_comments_and_string_literals_are_not_parameters() -> None:
    sql = "SELECT '$x' AS a, \"$y\" AS b /* $z */, $real -- $w\nFROM flows"
    assert used_params(sql) == {"real"}


def test_declared_and_used_parameters_must_agree() -> None:
    spec = parse_query("-- description: d\n-- param: a VARCHAR = NULL\nSELECT $b", "q", "q.sql")
    assert check_query(spec) == ["q: uses $b but does not declare it", "q: declares 'a' but never uses $a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT 1", "description"),
        ("-- name: other\n-- description: d\nSELECT 1", "header says name 'other'"),
        ("-- description: d\n-- param: x TEXTY = 1\nSELECT $x", "parameter type"),
        ("-- description: d\n-- param: = 1\nSELECT 1", "cannot read"),
        ("-- description: d\n-- param: x INTEGER = abc\nSELECT $x", "expects INTEGER"),
        ("-- description: d\n-- param: x INTEGER = 1\n-- param: x INTEGER = 2\nSELECT $x", "declared twice"),
        ("-- description: d\n", "no SQL"),
    ],
)
def test_a_malformed_query_file_is_a_query_error_saying_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(text, "q", "q.sql")


def test_user_folders_add_queries_and_override_shipped_ones(tmp_path: Path) -> None:
    shipped = load_queries()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "denied.sql").write_text("-- description: My own denied.\nSELECT 42 AS answer\n")
    (mine / "extra.sql").write_text(HEADER.format(name="extra"))
    (mine / "notes.txt").write_text("not a query")
    queries = load_queries([mine])
    assert set(queries) == set(shipped) | {"extra"}
    assert queries["denied"].description == "My own denied."
    assert list(queries) == sorted(queries)
    write_store(tmp_path / "store", [_at(0)])
    with connect(tmp_path / "store", query_dirs=[mine]) as engine:
        assert engine.run("denied").to_pylist() == [{"answer": 42}]
        assert engine.run("extra", {"port": "8080"}).to_pylist() == [
            {"ns": None, "b": 0, "l": "it's", "p": 8080}
        ]


def test_a_missing_queries_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="does not exist"):
        load_queries([tmp_path / "nope"])


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        ("12", "INTEGER", 12),
        ("1.5", "DOUBLE", 1.5),
        (3, "DOUBLE", 3.0),
        ("yes", "BOOLEAN", True),
        ("off", "BOOLEAN", False),
        ("2026-11-25", "DATE", dt.date(2026, 11, 25)),
        ("2026-11-25T10:00:00Z", "TIMESTAMPTZ", dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC)),
        ("a, b,,c", "VARCHAR[]", ["a", "b", "c"]),
        (["1", 2], "INTEGER[]", [1, 2]),
        (None, "INTEGER", None),
    ],
)
def test_parameter_values_are_converted_to_their_declared_type(
    value: object, type_: str, expected: object
) -> None:
    assert coerce_param_value(value, type_, "p") == expected


@pytest.mark.parametrize(
    ("value", "type_"), [("x", "INTEGER"), (True, "INTEGER"), ("maybe", "BOOLEAN"), (5, "VARCHAR")]
)
def test_a_value_that_does_not_fit_its_type_is_a_query_error(value: object, type_: str) -> None:
    with pytest.raises(QueryError, match=f"expects {type_}"):
        coerce_param_value(value, type_, "p")


def test_binding_fills_defaults_converts_text_and_keeps_only_the_parameters_the_sql_uses() -> None:
    text = HEADER.format(name="q").replace(
        "-- param: port INTEGER  -- required", "-- param: port INTEGER = 80"
    )
    spec = parse_query(text.replace("$label AS l, ", ""), "q", "q.sql")
    assert bind_params(spec, {"min_bytes": "5"}) == {"namespace": None, "min_bytes": 5, "port": 80}
    with pytest.raises(QueryError, match="has no parameter 'colour'"):
        bind_params(spec, {"colour": "red"})
