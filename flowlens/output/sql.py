"""The text of a result row in CSV, JSON, JSON lines and Markdown, written by DuckDB in SQL.

Large results are streamed: DuckDB writes each row's text (in parallel, without a Python object
per value) and :mod:`flowlens.output.writers` copies the text of whole Arrow batches to the
output. Owns :func:`row_sql`, the SQL expression of one row's text in a format, over columns
``c0, c1, ...`` of the given DuckDB types, and :data:`MACROS`, the SQL macros it calls
(``flowlens_json_string``, ``flowlens_visible``, ...), which the connection must define first.

The text is exactly what :mod:`flowlens.output.values` defines in Python (a test checks both on
random tables): JSON as Python's ``json.dumps`` writes it (``indent=2`` for ``json``, compact for
``jsonl``), times in UTC ISO-8601 with ``Z``, maps and structs with sorted keys, decimals as
integers when whole, floats as Python's ``repr``; and the same escaping, from the tables of
:mod:`flowlens.output.text`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from flowlens.output.text import ESCAPES, FORMULA_START, JSON_ESCAPES, NUMBER_PATTERN, UNSAFE, json_safe

if TYPE_CHECKING:
    from duckdb.sqltypes import DuckDBPyType

_INTEGERS = frozenset(
    {
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
    }
)
_TIMESTAMPS = frozenset({"timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"})


def lit(text: str) -> str:
    """A SQL string literal of ``text``; characters outside printable ASCII are written with chr()."""
    parts: list[str] = []
    run: list[str] = []
    for char in text:
        if " " <= char <= "~":
            run.append("''" if char == "'" else char)
            continue
        if run:
            parts.append("'" + "".join(run) + "'")
            run = []
        parts.append(f"chr({ord(char)})")
    if run or not parts:
        parts.append("'" + "".join(run) + "'")
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _class(chars: Sequence[str]) -> str:
    """A regular expression (RE2) character class of ``chars``."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def _chain(expr: str, pairs: Sequence[tuple[str, str]]) -> str:
    for old, new in pairs:
        expr = f"replace({expr}, {lit(old)}, {lit(new)})"
    return expr


# Python's json.dumps(ensure_ascii=False): backslash and quote escaped, the controls U+0000-U+001F as \b \t \n
# \f \r or \u00xx; then json_safe's escapes for the rest of the unsafe characters.
_JSON_STRING_ESCAPES = [("\\", "\\\\"), ('"', '\\"')] + [
    (chr(code), json.dumps(chr(code))[1:-1]) for code in range(0x20)
]
_JSON_STRING_ESCAPES += list(JSON_ESCAPES.items())
_BUT_NEWLINE = [(c, e) for c, e in ESCAPES.items() if c != "\n"]

#: The characters a JSON string cannot hold as they are (flowlens_json_string escapes them).
_JSON_STRING_CLASS = _class(["\\", '"', *(chr(c) for c in range(0x20)), *JSON_ESCAPES])

#: The SQL macros :func:`row_sql` calls; run each on the connection before using it.
MACROS = (
    # A JSON string (with its quotes) of a VARCHAR.
    "CREATE OR REPLACE TEMP MACRO flowlens_json_string(s) AS '\"' || CASE WHEN regexp_matches(s, "
    + lit(_JSON_STRING_CLASS)
    + f") THEN {_chain('s', _JSON_STRING_ESCAPES)} ELSE s END || '\"'",
    # Every unsafe character written as its escape (see flowlens.output.text.visible).
    f"CREATE OR REPLACE TEMP MACRO flowlens_visible(s) AS CASE WHEN regexp_matches(s, {lit(_class(UNSAFE))}) "
    f"THEN {_chain('s', list(ESCAPES.items()))} ELSE s END",
    # The same but line feeds kept (Markdown writes them as <br>).
    "CREATE OR REPLACE TEMP MACRO flowlens_visible_but_newlines(s) AS CASE WHEN regexp_matches(s, "
    f"{lit(_class([c for c, _ in _BUT_NEWLINE]))}) THEN {_chain('s', _BUT_NEWLINE)} ELSE s END",
    # A cell a spreadsheet would take for a formula, with ' first (flowlens.output.text.defuse_formula).
    "CREATE OR REPLACE TEMP MACRO flowlens_defuse(s) AS CASE WHEN left(s, 1) IN ("
    + ", ".join(lit(c) for c in FORMULA_START)
    + f") AND NOT regexp_full_match(s, {lit(NUMBER_PATTERN)}) THEN '''' || s ELSE s END",
    # A CSV field: quoted when it holds a comma, a quote, a line feed or a carriage return.
    "CREATE OR REPLACE TEMP MACRO flowlens_csv_field(s) AS CASE WHEN regexp_matches(s, '[,\"\\x{a}\\x{d}]') "
    "THEN '\"' || replace(s, '\"', '\"\"') || '\"' ELSE s END",
    # A double as Python's repr writes it (DuckDB's cast does, but for -0.0, inf and nan).
    "CREATE OR REPLACE TEMP MACRO flowlens_float_text(x) AS CASE WHEN isnan(x) THEN 'nan' "
    "WHEN isinf(x) THEN CASE WHEN x > 0 THEN 'inf' ELSE '-inf' END "
    "WHEN x = 0 AND signbit(x) THEN '-0.0' ELSE CAST(x AS VARCHAR) END",
    # A double as Python's json.dumps writes it.
    "CREATE OR REPLACE TEMP MACRO flowlens_float_json(x) AS CASE WHEN isnan(x) THEN 'NaN' "
    "WHEN isinf(x) THEN CASE WHEN x > 0 THEN 'Infinity' ELSE '-Infinity' END "
    "ELSE flowlens_float_text(x) END",
)


def _iso(expr: str, suffix: str) -> str:
    """ISO-8601 text of a TIMESTAMP, as Python's isoformat writes it (microseconds only if any)."""
    return (
        f"CASE WHEN microsecond({expr}) % 1000000 = 0 THEN strftime({expr}, '%Y-%m-%dT%H:%M:%S{suffix}') "
        f"ELSE strftime({expr}, '%Y-%m-%dT%H:%M:%S.%f{suffix}') END"
    )


def _children(type_: DuckDBPyType) -> list[tuple[str, DuckDBPyType]]:
    """The child types of a list, array, map or struct type (other types' children are not types)."""
    return [(str(name), cast("DuckDBPyType", child)) for name, child in type_.children]


def text_sql(expr: str, type_: DuckDBPyType, depth: int = 0) -> str:
    """SQL for the cell text of a value (see flowlens.output.values.cell); NULL for NULL."""
    kind = type_.id
    if kind == "boolean":
        return f"CASE WHEN {expr} THEN 'true' WHEN NOT {expr} THEN 'false' END"
    if kind in _INTEGERS or kind in ("varchar", "date"):
        return f"CAST({expr} AS VARCHAR)"
    if kind in ("float", "double"):
        return f"flowlens_float_text(CAST({expr} AS DOUBLE))"
    if kind == "decimal":
        return (
            f"CASE WHEN {expr} = floor({expr}) THEN CAST(CAST({expr} AS HUGEINT) AS VARCHAR) "
            f"ELSE flowlens_float_text(CAST({expr} AS DOUBLE)) END"
        )
    if kind == "blob":
        return f"lower(hex({expr}))"
    if kind in _TIMESTAMPS:
        return _iso(f"CAST({expr} AS TIMESTAMP)", "")
    if kind == "timestamp with time zone":
        return _iso(f"timezone('UTC', {expr})", "Z")
    if kind == "time":
        at = f"(DATE '1970-01-01' + {expr})"
        return (
            f"CASE WHEN microsecond({expr}) % 1000000 = 0 THEN strftime({at}, '%H:%M:%S') "
            f"ELSE strftime({at}, '%H:%M:%S.%f') END"
        )
    if kind == "interval":
        return f"flowlens_float_text(epoch({expr}))"
    if kind in ("list", "array", "map", "struct"):
        return f"CASE WHEN {expr} IS NOT NULL THEN {json_sql(expr, type_, None, depth)} END"
    return f"CAST({expr} AS VARCHAR)"


def json_sql(expr: str, type_: DuckDBPyType, indent: int | None, depth: int, *, plain: bool = False) -> str:
    """SQL for the JSON text of a value (``null`` for NULL), as Python's json.dumps writes it.

    ``indent`` None is the compact form (``,`` and ``:``); otherwise the value stands at nesting
    ``depth`` (its items go ``indent * (depth + 1)`` spaces in). ``plain`` writes a VARCHAR
    between quotes as it is: only for text known to hold nothing JSON escapes.
    """
    kind = type_.id
    if kind in ("boolean", "decimal") or kind in _INTEGERS:
        body = text_sql(expr, type_)
    elif kind in ("float", "double"):
        body = f"flowlens_float_json(CAST({expr} AS DOUBLE))"
    elif kind == "interval":
        body = f"flowlens_float_json(epoch({expr}))"
    elif kind in ("blob", "date", "time", "timestamp with time zone") or kind in _TIMESTAMPS:
        body = f"'\"' || {text_sql(expr, type_)} || '\"'"
    elif kind in ("list", "array"):
        body = _json_list(expr, type_, indent, depth)
    elif kind == "map":
        body = _json_map(expr, type_, indent, depth)
    elif kind == "struct":
        body = _json_struct(expr, type_, indent, depth)
    else:
        text = f"CAST({expr} AS VARCHAR)"
        body = f"'\"' || {text} || '\"'" if plain and kind == "varchar" else f"flowlens_json_string({text})"
    return f"CASE WHEN {expr} IS NULL THEN 'null' ELSE {body} END"


def _breaks(indent: int | None, depth: int) -> tuple[str, str, str]:
    """The text after an opening bracket, between items and before the closing bracket."""
    if indent is None:
        return "", ",", ""
    inner = "\n" + " " * (indent * (depth + 1))
    return inner, "," + inner, "\n" + " " * (indent * depth)


def _json_list(expr: str, type_: DuckDBPyType, indent: int | None, depth: int) -> str:
    child = dict(_children(type_))["child"]
    if type_.id == "array":
        expr = f"CAST({expr} AS {child}[])"
    var = f"x{depth}"
    first, between, last = _breaks(indent, depth)
    items = f"list_transform({expr}, lambda {var}: {json_sql(var, child, indent, depth + 1)})"
    return (
        f"CASE WHEN len({expr}) = 0 THEN '[]' ELSE "
        f"{lit('[' + first)} || array_to_string({items}, {lit(between)}) || {lit(last + ']')} END"
    )


def _json_map(expr: str, type_: DuckDBPyType, indent: int | None, depth: int) -> str:
    children = dict(_children(type_))
    key_type, value_type = children["key"], children["value"]
    var, pair = f"e{depth}", f"p{depth}"
    first, between, last = _breaks(indent, depth)
    colon = ":" if indent is None else ": "
    key = text_sql(f"struct_extract({var}, 'key')", key_type, depth + 1)
    value = json_sql(f"struct_extract({var}, 'value')", value_type, indent, depth + 1)
    # Keys are written as text and sorted as text, as Python sorts str(key).
    entries = f"list_sort(list_transform(map_entries({expr}), lambda {var}: {{'k': {key}, 'j': {value}}}))"
    items = f"list_transform({entries}, lambda {pair}: flowlens_json_string({pair}.k) || {lit(colon)} || {pair}.j)"
    return (
        f"CASE WHEN cardinality({expr}) = 0 THEN '{{}}' ELSE "
        f"{lit('{' + first)} || array_to_string({items}, {lit(between)}) || {lit(last + '}')} END"
    )


def _json_struct(expr: str, type_: DuckDBPyType, indent: int | None, depth: int) -> str:
    fields = sorted(_children(type_), key=lambda field: field[0])
    if not fields:
        return "'{}'"
    first, between, last = _breaks(indent, depth)
    colon = ":" if indent is None else ": "
    parts = [
        lit(json_key(name) + colon)
        + " || "
        + json_sql(f"struct_extract({expr}, {lit(name)})", child, indent, depth + 1)
        for name, child in fields
    ]
    return f"{lit('{' + first)} || " + f" || {lit(between)} || ".join(parts) + f" || {lit(last + '}')}"


def json_key(name: str) -> str:
    """A column or field name as a JSON string, as the values are written."""
    return json_safe(json.dumps(name, ensure_ascii=False))


def _concat(parts: Sequence[str]) -> str:
    """SQL joining the texts ``parts`` (none of them NULL) in one ``concat`` call: a chain of
    ``||`` copies the row's text once per part, which made a wide row several times slower."""
    return parts[0] if len(parts) == 1 else "concat(" + ", ".join(parts) + ")"


def _json_row(
    names: Sequence[str], columns: Sequence[str], types: Sequence[DuckDBPyType], fmt: str, *, plain: bool
) -> str:
    """SQL for one row's text in ``json`` or ``jsonl`` (see :func:`row_sql`)."""
    pretty = fmt == "json"
    if not names:
        return lit(",\n  {}") if pretty else "('{}' || chr(10))"
    parts = [lit(",\n  {\n    " if pretty else "{")]
    for index, (name, col, type_) in enumerate(zip(names, columns, types, strict=True)):
        if index:
            parts.append(lit(",\n    " if pretty else ","))
        parts.append(lit(json_key(name) + (": " if pretty else ":")))
        parts.append(json_sql(col, type_, 2 if pretty else None, 2 if pretty else 1, plain=plain))
    parts.append(lit("\n  }") if pretty else "'}' || chr(10)")
    return _concat(parts)


def _between(items: Sequence[str], separator: str) -> list[str]:
    """``items`` with ``separator`` between each two."""
    out: list[str] = []
    for index, item in enumerate(items):
        if index:
            out.append(separator)
        out.append(item)
    return out


def row_sql(names: Sequence[str], types: Sequence[DuckDBPyType], fmt: str, *, terminal: bool = False) -> str:
    """SQL for the text of one row of columns ``c0, c1, ...`` in ``fmt``, line break included.

    ``fmt`` is ``json`` (each row is ``,\\n  {...}``: the writer drops the first row's leading
    ``,\\n`` and adds the brackets), ``jsonl``, ``csv`` or ``markdown``. ``terminal`` makes
    control characters visible in CSV cells too (JSON escapes them anyway; Markdown always).
    """
    columns = [f"c{i}" for i in range(len(names))]
    if fmt in ("json", "jsonl"):
        careful = _json_row(names, columns, types, fmt, plain=False)
        texts = [col for col, type_ in zip(columns, types, strict=True) if type_.id == "varchar"]
        if len(texts) < 2:
            return careful
        # Most rows hold no character JSON escapes: one test of all their text columns together
        # lets those rows write their strings as they are, instead of testing each one.
        return (
            f"CASE WHEN regexp_matches(concat({', '.join(texts)}), {lit(_JSON_STRING_CLASS)}) "
            f"THEN {careful} ELSE {_json_row(names, columns, types, fmt, plain=True)} END"
        )
    cells = [f"COALESCE({text_sql(col, type_)}, '')" for col, type_ in zip(columns, types, strict=True)]
    if fmt == "csv":
        fields = []
        for cell in cells:
            shown = f"flowlens_visible({cell})" if terminal else cell
            fields.append(f"flowlens_csv_field(flowlens_defuse({shown}))")
        if len(fields) == 1:
            # A lone empty field is written "" so that the row is not an empty line (as Python's csv).
            fields = [f"CASE WHEN {cells[0]} = '' THEN '\"\"' ELSE {fields[0]} END"]
        careful = _concat([*_between(fields, "','"), "chr(10)"])
        if terminal or len(cells) < 2:
            return careful
        # Most rows hold no comma, quote or line break in any cell: one test of the whole row
        # spares those rows a test per cell (flowlens_defuse adds nothing a CSV field quotes).
        plain = _concat([*_between([f"flowlens_defuse({cell})" for cell in cells], "','"), "chr(10)"])
        return f"CASE WHEN regexp_matches({_concat(cells)}, '[,\"\\x{{a}}\\x{{d}}]') THEN {careful} ELSE {plain} END"
    if fmt == "markdown":
        escaped = [
            f"replace(replace(replace(flowlens_visible_but_newlines({cell}), '\\', '\\\\'), '|', '\\|'), chr(10), '<br>')"
            for cell in cells
        ]
        return (
            _concat(["'| '", *_between(escaped, "' | '"), "' |'", "chr(10)"])
            if escaped
            else "'|  |' || chr(10)"
        )
    raise ValueError(f"no row SQL for format {fmt!r}")
