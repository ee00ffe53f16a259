"""flowlens.output.sql: the text DuckDB writes for a row is the text the Python definition gives.

The Python definition is flowlens.output.values (plain, cell) with Python's own json.dumps; every
streamed format is checked against it, byte for byte, on random tables of every column type a
query returns.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.output import OutputFormat, cell, csv_line, markdown_cell, records, render_text, write_result
from flowlens.output.text import json_safe

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
AT = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)

# (Arrow type, strategy of one value) for each kind of column.
COLUMNS = {
    "text": (pa.string(), TEXT),
    # A second text column, mostly plain: rows whose text columns need no JSON escape take a
    # path of their own.
    "name": (pa.string(), st.one_of(st.text("abz-*/.", max_size=8), TEXT)),
    "int": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "small": (pa.int16(), st.integers(-(2**15), 2**15 - 1)),
    "float": (pa.float64(), st.floats()),
    "single": (pa.float32(), st.floats(width=32)),
    "amount": (pa.decimal128(12, 3), st.decimals(min_value=-(10**8), max_value=10**8, places=3)),
    "whole": (pa.decimal128(38, 0), st.integers(-(10**37), 10**37).map(decimal.Decimal)),
    "flag": (pa.bool_(), st.booleans()),
    "at": (pa.timestamp("us", tz="UTC"), AT),
    "local": (pa.timestamp("us"), AT.map(lambda t: t.replace(tzinfo=None))),
    "day": (pa.date32(), st.dates(min_value=dt.date(1, 1, 1))),
    "clock": (pa.time64("us"), st.times()),
    "raw": (pa.binary(), st.binary(max_size=6)),
    "names": (pa.list_(pa.string()), st.lists(st.one_of(st.none(), TEXT), max_size=3)),
    "counts": (
        pa.list_(pa.list_(pa.int64())),
        st.lists(st.lists(st.integers(-5, 5), max_size=2), max_size=2),
    ),
    "labels": (
        pa.map_(pa.string(), pa.string()),
        st.dictionaries(TEXT, st.one_of(st.none(), TEXT), max_size=3).map(lambda d: list(d.items())),
    ),
    "ports": (
        pa.map_(pa.int32(), pa.list_(pa.string())),
        st.dictionaries(st.integers(0, 70000), st.lists(TEXT, max_size=2), max_size=3).map(
            lambda d: list(d.items())
        ),
    ),
    "hit": (
        pa.struct(
            [pa.field("tier", pa.string()), pa.field("index", pa.int32()), pa.field("At", pa.float64())]
        ),
        st.fixed_dictionaries({"tier": TEXT, "index": st.integers(-5, 5), "At": st.floats(-1, 1)}),
    ),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=6, unique=True))
    rows = draw(st.integers(0, 6))
    columns = {}
    for name in names:
        type_, values = COLUMNS[name]
        columns[name] = pa.array([draw(st.one_of(st.none(), values)) for _ in range(rows)], type_)
    return pa.table(columns)


def _python(table: pa.Table, fmt: OutputFormat) -> str:
    """The text the Python definition gives."""
    rows = records(table)
    names = table.column_names
    if fmt is OutputFormat.json:
        return json_safe(json.dumps(rows, indent=2, ensure_ascii=False)) + "\n"
    if fmt is OutputFormat.jsonl:
        return "".join(
            json_safe(json.dumps(r, ensure_ascii=False, separators=(",", ":"))) + "\n" for r in rows
        )
    cells = [[cell(r[n]) for n in names] for r in rows]
    if fmt is OutputFormat.csv:
        return csv_line(names) + "".join(csv_line(row) for row in cells)
    assert fmt is OutputFormat.markdown
    lines = render_text(table.slice(0, 0), fmt)
    return lines + "".join("| " + " | ".join(markdown_cell(c) for c in row) + " |\n" for row in cells)


@settings(max_examples=150, deadline=None)
@given(tables())
def test_every_streamed_format_is_the_python_definition_byte_for_byte(table: pa.Table) -> None:
    for fmt in (OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv, OutputFormat.markdown):
        assert render_text(table, fmt) == _python(table, fmt), fmt


@settings(max_examples=60, deadline=None)
@given(tables())
def test_json_reads_back_as_the_plain_values(table: pa.Table) -> None:
    text = render_text(table, OutputFormat.json)
    assert json.loads(text) == json.loads(json.dumps(records(table)))


def test_csv_on_a_terminal_shows_control_characters_as_escapes() -> None:
    table = pa.table({"name": ["shop/\x1b]0;pwned\x07api", "a\rb", "=1+1"]})
    stream = io.StringIO()
    write_result(table, OutputFormat.csv, None, stream, terminal=True)
    assert stream.getvalue() == "name\nshop/\\x1b]0;pwned\\x07api\na\\rb\n'=1+1\n"
    assert render_text(table, OutputFormat.csv) == 'name\nshop/\x1b]0;pwned\x07api\n"a\rb"\n\'=1+1\n'
