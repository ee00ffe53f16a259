"""flowlens.engine: the flows view, the time window, partition pruning, the query library."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from flowlens.engine import (
    FLOWS_SCHEMA,
    check_query,
    coerce_param_value,
    connect,
    load_queries,
    parse_query,
    parse_time,
    select_files,
    used_params,
)
from flowlens.errors import QueryError, StoreError, UsageError
from flowlens.schema import ARROW_SCHEMA
from flowlens.store import Store
from tests.factories import T0, flow_row, write_store

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _at(day_offset: int, hour: int = 12, **overrides: object) -> dict[str, object]:
    start = dt.datetime(2026, 11, 20, hour, 0, tzinfo=dt.UTC) + dt.timedelta(days=day_offset)
    return flow_row(start_time=start, end_time=start + dt.timedelta(minutes=5), **overrides)


# ---------------------------------------------------------------------------- parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("24h", NOW - dt.timedelta(hours=24)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2w", NOW - dt.timedelta(weeks=2)),
        ("45s", NOW - dt.timedelta(seconds=45)),
        (" 7D ", NOW - dt.timedelta(days=7)),
        ("now", NOW),
        ("2026-11-25T12:00:00Z", dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)),
        ("2026-11-25T14:00:00+02:00", dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)),
        ("2026-11-25T12:00:00", dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)),
        ("2026-11-25", dt.datetime(2026, 11, 25, tzinfo=dt.UTC)),
    ],
)
def test_since_accepts_durations_before_now_and_iso_8601_times_in_utc(
    text: str, expected: dt.datetime
) -> None:
    got = parse_time(text, NOW)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "", "7 days", "-3h", "2026-13-01", "3y"])
def test_an_unreadable_time_is_a_usage_error_that_names_the_option_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_time(text, NOW, option="--since")
    assert "--since" in str(err.value)
    assert "24h" in str(err.value) and "ISO-8601" in str(err.value)


# ---------------------------------------------------------------------------- the flows view


def test_an_empty_store_still_has_a_flows_view_with_the_full_schema(tmp_path: Path) -> None:
    with connect(tmp_path / "nothing-here") as engine:
        table = engine.sql("SELECT * FROM flows")
    assert table.num_rows == 0
    assert table.schema.names == [*ARROW_SCHEMA.names, "date"]
    assert table.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("enforced_policies").type == ARROW_SCHEMA.field("enforced_policies").type
    assert table.schema.field("date").type == pa.date32()


def test_a_window_without_files_has_the_same_schema_as_a_full_store(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0)])
    with connect(tmp_path) as full:
        full_schema = full.sql("SELECT * FROM flows").schema
    with connect(tmp_path, since=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)) as empty:
        assert empty.files == ()
        empty_schema = empty.sql("SELECT * FROM flows").schema
    assert full_schema.names == empty_schema.names == FLOWS_SCHEMA.names
    assert [str(t) for t in full_schema.types] == [str(t) for t in empty_schema.types]


def test_the_flows_view_reads_rows_with_their_date_partition(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0), _at(1), _at(1, hour=13)])
    with connect(tmp_path) as engine:
        rows = engine.sql("SELECT date, count(*) AS n FROM flows GROUP BY date ORDER BY date").to_pylist()
    assert rows == [{"date": dt.date(2026, 11, 20), "n": 1}, {"date": dt.date(2026, 11, 21), "n": 2}]


def test_the_session_time_zone_is_utc(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0, hour=23)])
    with connect(tmp_path) as engine:
        assert engine.sql("SELECT current_setting('TimeZone') AS tz").to_pylist() == [{"tz": "UTC"}]
        rows = engine.sql("SELECT CAST(start_time AS VARCHAR) AS s, CAST(start_time AS DATE) AS d FROM flows")
    assert rows.to_pylist() == [{"s": "2026-11-20 23:00:00+00", "d": dt.date(2026, 11, 20)}]


def test_the_window_keeps_records_whose_start_time_is_in_since_until(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0, hour=h, source_line=h) for h in (10, 11, 12, 13)])
    since = dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC)
    until = dt.datetime(2026, 11, 20, 13, tzinfo=dt.UTC)
    with connect(tmp_path, since=since, until=until) as engine:
        lines = (
            engine.sql("SELECT source_line FROM flows ORDER BY source_line").column("source_line").to_pylist()
        )
    assert lines == [11, 12]  # since inclusive, until exclusive


def test_the_window_accepts_text_relative_to_now(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0, source_line=1), _at(5, source_line=2)])
    now = dt.datetime(2026, 11, 25, 18, tzinfo=dt.UTC)
    with connect(tmp_path, since="24h", now=now) as engine:
        assert engine.sql("SELECT source_line FROM flows").column("source_line").to_pylist() == [2]
        assert engine.since == dt.datetime(2026, 11, 24, 18, tzinfo=dt.UTC)


def test_since_after_until_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="before --until"):
        connect(tmp_path, since="2026-11-25", until="2026-11-24")


def test_partitions_outside_the_window_are_never_opened(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0, source_line=1), _at(3, source_line=2), _at(6, source_line=3)])
    # A damaged file in an old partition: reading it would fail the query.
    bad = tmp_path / "flows" / "date=2026-11-20" / "corrupt.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(StoreError, match=r"corrupt\.parquet"):
        connect(tmp_path)  # the whole store: the damaged file is read, and fails
    with connect(tmp_path, since="2026-11-22") as engine:
        assert all("2026-11-20" not in str(f) for f in engine.files)
        lines = engine.sql("SELECT source_line FROM flows ORDER BY 1").column("source_line").to_pylist()
        assert lines == [2, 3]
        assert engine.run("denied").num_rows == 0


def test_files_are_chosen_by_their_date_directory_with_until_exclusive_at_midnight(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(d) for d in range(5)])
    store = Store(tmp_path)

    def days(since: dt.datetime | None, until: dt.datetime | None) -> list[str]:
        return [p.parent.name for p in select_files(store, since, until)]

    midnight = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    assert days(None, None) == [f"date=2026-11-{d}" for d in range(20, 25)]
    assert days(midnight, None) == ["date=2026-11-22", "date=2026-11-23", "date=2026-11-24"]
    assert days(None, midnight) == ["date=2026-11-20", "date=2026-11-21"]
    assert days(None, midnight + dt.timedelta(seconds=1)) == [f"date=2026-11-{d}" for d in (20, 21, 22)]


def test_staging_and_quarantine_files_are_not_part_of_the_flows_view(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0)])
    staged = tmp_path / ".staging" / "x" / "flows" / "date=2026-11-20"
    staged.mkdir(parents=True)
    (staged / "part.parquet").write_bytes(b"half written")
    with connect(tmp_path) as engine:
        assert engine.sql("SELECT count(*) AS n FROM flows").to_pylist() == [{"n": 1}]


def test_ad_hoc_sql_binds_parameters(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0, source_namespace="a"), _at(0, source_namespace="b")])
    with connect(tmp_path) as engine:
        rows = engine.sql("SELECT source_namespace FROM flows WHERE source_namespace = $ns", {"ns": "b"})
        assert rows.to_pylist() == [{"source_namespace": "b"}]
        with pytest.raises(QueryError, match="SQL failed"):
            engine.sql("SELECT no_such_column FROM flows")


def test_limit_keeps_the_first_rows_in_the_query_order(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0, source_line=n) for n in range(10)])
    with connect(tmp_path) as engine:
        table = engine.sql("SELECT source_line FROM flows ORDER BY source_line DESC", limit=3)
    assert table.column("source_line").to_pylist() == [9, 8, 7]


# ---------------------------------------------------------------------------- query files

HEADER = """\
-- name: {name}
-- description: Flows of one namespace.
-- Longer text,
-- on two lines.
-- param: namespace VARCHAR = NULL  -- only this namespace
-- param: min_bytes BIGINT = 0  -- at least this many bytes
-- param: label VARCHAR = 'it''s'  -- a quoted default
-- param: port INTEGER  -- required
SELECT $namespace AS ns, $min_bytes AS b, $label AS l, $port AS p -- $not_a_param
"""


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


def test_run_checks_names_and_parameters(tmp_path: Path) -> None:
    mine = tmp_path / "q"
    mine.mkdir()
    (mine / "typed.sql").write_text(HEADER.format(name="typed"))
    (mine / "undeclared.sql").write_text("-- description: d\nSELECT $secret\n")
    with connect(tmp_path / "store", query_dirs=[mine]) as engine:
        with pytest.raises(
            QueryError, match=r"no query named 'nope'; valid names: .*denied.*unexpected-allowed"
        ):
            engine.run("nope")
        with pytest.raises(QueryError, match="has no parameter 'colour'; valid parameters: namespace"):
            engine.run("denied", {"colour": "red"})
        with pytest.raises(QueryError, match="needs parameter 'port'"):
            engine.run("typed")
        with pytest.raises(QueryError, match="expects INTEGER, got 'eighty'"):
            engine.run("typed", {"port": "eighty"})
        with pytest.raises(QueryError, match=r"uses \$secret but does not declare it"):
            engine.run("undeclared")
        assert engine.run("typed", {"port": 1, "min_bytes": "5", "namespace": "x"}).to_pylist() == [
            {"ns": "x", "b": 5, "l": "it's", "p": 1}
        ]


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


def test_the_factories_default_row_is_in_the_window_of_its_day(tmp_path: Path) -> None:
    write_store(tmp_path, [flow_row()])
    with connect(
        tmp_path, since=T0.replace(hour=0), until=T0.replace(hour=0) + dt.timedelta(days=1)
    ) as engine:
        assert engine.sql("SELECT count(*) AS n FROM flows").to_pylist() == [{"n": 1}]


def test_a_query_reading_a_table_that_is_not_there_says_so(tmp_path: Path) -> None:
    mine = tmp_path / "q"
    mine.mkdir()
    (mine / "helper.sql").write_text("-- description: d\nSELECT * FROM some_facts\n")
    with (
        connect(tmp_path / "store", query_dirs=[mine]) as engine,
        pytest.raises(QueryError, match="reads a table this connection does not have"),
    ):
        engine.run("helper")
