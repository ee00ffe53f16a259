"""Results written out, and untrusted text made safe to show.

``flowlens.output.write_reader(reader, OutputFormat.json, None, sys.stdout)`` streams a result
(Arrow record batches, such as :meth:`flowlens.engine.Engine.stream` returns) to stdout.

Modules:

* :mod:`~flowlens.output.writers` — :class:`OutputFormat`, :func:`write_reader` (streamed: the
  aligned table, CSV, JSON, JSON lines, Markdown, Parquet), :class:`Written` and :func:`replacing`
  (a file written whole or not at all);
* :mod:`~flowlens.output.values` — one value as the text formats write it (:func:`plain`,
  :func:`cell`), the Python definition;
* :mod:`~flowlens.output.sql` — the same text written by DuckDB, for the streamed formats;
* :mod:`~flowlens.output.text` — :func:`visible` (control characters as escapes, for terminals
  and Markdown), :func:`visible_lines`, :func:`safe_text`, :func:`defuse_formula` (CSV cells a spreadsheet would run).

Values are written the same way in every text format: times in UTC ISO-8601 with ``Z``, maps as
JSON objects with sorted keys, lists as JSON arrays. pyarrow and DuckDB are loaded only when a
result is written, so that importing this package (as every command's ``--format`` option does)
stays cheap.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from flowlens.errors import UsageError
from flowlens.output.text import defuse_formula, json_safe, safe_text, visible, visible_lines
from flowlens.output.values import cell, plain, records
from flowlens.output.writers import (
    TERMINAL_ROWS,
    OutputFormat,
    Written,
    aligned,
    csv_line,
    markdown_cell,
    replacing,
    write_reader,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "TERMINAL_ROWS",
    "OutputFormat",
    "Written",
    "aligned",
    "cell",
    "csv_line",
    "defuse_formula",
    "json_safe",
    "markdown_cell",
    "plain",
    "records",
    "render_text",
    "replacing",
    "safe_text",
    "visible",
    "visible_lines",
    "write_parquet",
    "write_reader",
    "write_result",
]


def write_result(
    table: pa.Table, fmt: OutputFormat, out: Path | None, stream: TextIO, *, terminal: bool = False
) -> Written:
    """Write an in-memory table as :func:`write_reader` writes a stream."""
    return write_reader(table.to_reader(), fmt, out, stream, terminal=terminal)


def render_text(table: pa.Table, fmt: OutputFormat) -> str:
    """The table as text in ``fmt`` (every format but parquet), as it is written to a file."""
    if fmt is OutputFormat.parquet:
        raise UsageError("parquet is a binary format: write it to a file (write_parquet)")
    stream = io.StringIO()
    write_result(table, fmt, None, stream)
    return stream.getvalue()


def write_parquet(table: pa.Table, path: Path) -> None:
    """The table as a Parquet file at ``path``; :class:`UsageError` when it cannot be written."""
    write_result(table, OutputFormat.parquet, path, io.StringIO())
