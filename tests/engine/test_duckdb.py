"""flowlens.engine.duckdb: the flows view, the time window, partition pruning, running queries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from flowlens.engine import FLOWS_SCHEMA, connect
from flowlens.errors import QueryError, StoreError, UsageError
from flowlens.schema import ARROW_SCHEMA
from tests.engine.helpers import HEADER
from tests.factories import T0, flow_row, write_store


def _at(day_offset: int, hour: int = 12, **overrides: object) -> dict[str, object]:
    start = dt.datetime(2026, 11, 20, hour, 0, tzinfo=dt.UTC) + dt.timedelta(days=day_offset)
    return flow_row(start_time=start, end_time=start + dt.timedelta(minutes=5), **overrides)


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


def test_a_temporary_table_is_readable_by_queries_only_inside_its_block(tmp_path: Path) -> None:
    with connect(tmp_path) as engine:
        with engine.temporary_table("extra", pa.table({"n": [1, 2]})):
            assert engine.sql("SELECT sum(n) AS s FROM extra").to_pylist() == [{"s": 2 + 1}]
        with pytest.raises(QueryError, match="SQL failed"):
            engine.sql("SELECT * FROM extra")
