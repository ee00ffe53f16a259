"""flowlens.output: one Arrow table written in every format, the same values in each."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.errors import UsageError
from flowlens.output import OutputFormat, plain, records, render_text, write_result

GOLDEN = Path(__file__).parent / "golden" / "output"
TEXT_FORMATS = [f for f in OutputFormat if f is not OutputFormat.parquet]


def _table() -> pa.Table:
    """Every kind of value a query returns: text with separators, numbers, times, maps, lists, nulls."""
    at = dt.datetime(2026, 11, 25, 12, 0, 5, tzinfo=dt.UTC)
    return pa.table(
        {
            "source": ["shop/api-1-*", "pub", "a|b\\c\nd", None],
            "dest_port": pa.array([443, None, 53, 8080], pa.int32()),
            "bytes": pa.array([1_234_567, 0, 12, None], pa.int64()),
            "share": [0.25, 1.0, None, 0.125],
            "amount": pa.array(
                [decimal.Decimal(3), decimal.Decimal("2.5"), None, None], pa.decimal128(10, 1)
            ),
            "end_of_tier": [True, False, None, True],
            "first_seen": pa.array([at, at + dt.timedelta(hours=1), None, at], pa.timestamp("us", tz="UTC")),
            "day": pa.array([at.date(), None, at.date(), at.date()], pa.date32()),
            "labels": pa.array(
                [[("b", "2"), ("a", "1")], [], None, [("app", "x,y")]], pa.map_(pa.string(), pa.string())
            ),
            "domains": [["b.example", "a.example"], [], None, ['x"y']],
        }
    )


@pytest.mark.parametrize("fmt", TEXT_FORMATS, ids=str)
def test_every_text_format_matches_its_golden_file(fmt: OutputFormat) -> None:
    text = render_text(_table(), fmt)
    path = GOLDEN / f"values.{fmt}"
    if os.environ.get("FLOWLENS_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_values_are_written_the_same_way_in_json_and_csv() -> None:
    table = _table()
    rows = json.loads(render_text(table, OutputFormat.json))
    assert rows == records(table)
    assert rows[0]["first_seen"] == "2026-11-25T12:00:05Z"
    assert rows[0]["labels"] == {"a": "1", "b": "2"}
    assert rows[0]["amount"] == 3 and rows[1]["amount"] == 2.5
    assert [json.loads(line) for line in render_text(table, OutputFormat.jsonl).splitlines()] == rows
    header, *cells = csv.reader(io.StringIO(render_text(table, OutputFormat.csv)))
    assert header == table.column_names
    assert cells[0][header.index("labels")] == '{"a":"1","b":"2"}'
    assert cells[3][header.index("source")] == "" and cells[1][header.index("end_of_tier")] == "false"


def test_the_table_format_right_aligns_numbers_and_never_wraps() -> None:
    table = pa.table({"name": ["a", "long name"], "n": [5, 12345]})
    assert (
        render_text(table, OutputFormat.table)
        == "name           n\n---------  -----\na              5\nlong name  12345\n"
    )


def test_parquet_needs_a_file_and_keeps_the_table(tmp_path: Path) -> None:
    table = _table()
    with pytest.raises(UsageError, match="give --out FILE"):
        write_result(table, OutputFormat.parquet, None, io.StringIO())
    with pytest.raises(UsageError, match="binary format"):
        render_text(table, OutputFormat.parquet)
    write_result(table, OutputFormat.parquet, tmp_path / "r.parquet", io.StringIO())
    assert pq.read_table(tmp_path / "r.parquet").equals(table)


def test_text_goes_to_the_stream_or_to_the_file(tmp_path: Path) -> None:
    table = _table()
    stream = io.StringIO()
    write_result(table, OutputFormat.csv, None, stream)
    assert stream.getvalue() == render_text(table, OutputFormat.csv)
    stream = io.StringIO()
    write_result(table, OutputFormat.jsonl, tmp_path / "r.jsonl", stream)
    assert stream.getvalue() == ""
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == render_text(table, OutputFormat.jsonl)


def test_a_file_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    for fmt in (OutputFormat.csv, OutputFormat.parquet):
        with pytest.raises(UsageError, match="cannot write"):
            write_result(_table(), fmt, tmp_path / "no-such-folder" / "r.out", io.StringIO())


# Text Arrow can hold (no lone surrogates), without a carriage return: see the xfail test below.
CELL = st.one_of(
    st.none(), st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r"), max_size=12)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(CELL, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))), max_size=15))
def test_json_and_csv_carry_any_text_and_integers_back(rows: list[tuple[str | None, int | None]]) -> None:
    table = pa.table({"text": [r[0] for r in rows], "n": pa.array([r[1] for r in rows], pa.int64())})
    assert json.loads(render_text(table, OutputFormat.json)) == [{"text": t, "n": n} for t, n in rows]
    header, *cells = csv.reader(io.StringIO(render_text(table, OutputFormat.csv), newline=""))
    assert header == ["text", "n"]
    assert cells == [["" if t is None else t, "" if n is None else str(n)] for t, n in rows]
    # Markdown writes a line break in a cell as <br>: one line per row, after the header's two.
    assert render_text(table, OutputFormat.markdown).count("\n") == 2 + len(rows)


@pytest.mark.xfail(
    strict=True,
    reason="known, kept as it was: csv quotes a cell holding a line feed but not one holding only a carriage "
    "return (the line terminator is \\n), so a reader splits the row there",
)
def test_a_carriage_return_in_a_csv_cell_stays_in_its_cell() -> None:
    table = pa.table({"text": ["a\rb"], "n": [1]})
    _, *cells = csv.reader(io.StringIO(render_text(table, OutputFormat.csv), newline=""))
    assert cells == [["a\rb", "1"]]


def test_plain_values_are_json_ready() -> None:
    assert (
        plain(dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == "2025-12-31T23:00:00Z"
    )
    assert plain(dt.timedelta(minutes=1, seconds=30)) == 90.0
    assert plain(b"\x01\xff") == "01ff"
    assert plain({2: [dt.date(2026, 1, 2)], 1: None}) == {"1": None, "2": ["2026-01-02"]}
