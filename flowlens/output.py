"""Query results written out: an Arrow table as an aligned table, CSV, JSON, JSON lines, Markdown or Parquet.

Owns :class:`OutputFormat` and the writers behind ``flowlens query --format``: :func:`render_text`
(a table in, text out, for every format but Parquet), :func:`write_parquet`, and
:func:`write_result`, which sends a table in a format to a file or to a text stream the caller
gives (the CLI gives stdout). pyarrow is loaded only when a table is written, so that importing
this module (as every command's ``--format`` option does) stays cheap. Values are written the same way in every text format: times in
UTC ISO-8601 with ``Z``, maps as JSON objects with sorted keys, lists as JSON arrays.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from flowlens.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa


class OutputFormat(StrEnum):
    """The formats a query result can be written in."""

    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"
    markdown = "markdown"


def plain(value: Any) -> Any:
    """A JSON-ready form of one value from ``Table.to_pylist``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def records(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of ``table`` as JSON-ready dicts (maps become objects)."""
    import pyarrow as pa

    names = table.column_names
    maps = {n for n, t in zip(names, table.schema.types, strict=True) if pa.types.is_map(t)}
    out = []
    for row in table.to_pylist(maps_as_pydicts="strict") if maps else table.to_pylist():
        out.append({k: plain(v) for k, v in row.items()})
    return out


def _cell(value: Any) -> str:
    """One value as text for CSV, table and Markdown cells."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _is_numeric(type_: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)


def render_text(table: pa.Table, fmt: OutputFormat) -> str:
    """The table as text in ``fmt`` (every format but parquet)."""
    if fmt is OutputFormat.parquet:
        raise UsageError("parquet is a binary format: write it to a file (write_parquet)")
    rows = records(table)
    names = table.column_names
    if fmt is OutputFormat.json:
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.jsonl:
        return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    cells = [[_cell(r[n]) for n in names] for r in rows]
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(cells)
        return buf.getvalue()
    if fmt is OutputFormat.markdown:

        def md(text: str) -> str:
            return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")

        numeric = [_is_numeric(t) for t in table.schema.types]
        lines = ["| " + " | ".join(md(n) for n in names) + " |"]
        lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
        lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    return _aligned(names, cells, [_is_numeric(t) for t in table.schema.types])


def _aligned(names: Sequence[str], cells: list[list[str]], numeric: Sequence[bool]) -> str:
    """Aligned columns, numbers right-aligned; never wraps or truncates (stdout may be a pipe)."""
    flat = [[c.replace("\n", " ") for c in row] for row in cells]
    widths = [max([len(n), *(len(row[i]) for row in flat)]) for i, n in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in flat]
    return "\n".join(out) + "\n"


def write_parquet(table: pa.Table, path: Path) -> None:
    """The table as a Parquet file at ``path``; :class:`UsageError` when it cannot be written."""
    import pyarrow.parquet as pq

    try:
        pq.write_table(table, path)
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)!r}: {exc}") from None


def write_result(table: pa.Table, fmt: OutputFormat, out: Path | None, stream: TextIO) -> None:
    """Write the table in ``fmt`` to the file ``out``, or to ``stream`` when ``out`` is None.

    Parquet needs ``out``. Raises :class:`UsageError` when the file cannot be written.
    """
    if fmt is OutputFormat.parquet:
        if out is None:
            raise UsageError("--format parquet writes a binary file: give --out FILE")
        write_parquet(table, out)
        return
    text = render_text(table, fmt)
    if out is None:
        stream.write(text)
        stream.flush()
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {str(out)!r}: {exc}") from None
