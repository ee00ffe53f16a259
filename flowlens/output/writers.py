"""Writing a result, streamed: Arrow record batches in, a table, CSV, JSON, JSON lines, Markdown or Parquet out.

Owns :func:`write_reader`, which writes a stream of record batches to a file or to a text stream
the caller gives (the CLI gives stdout), and :class:`Written`, what it wrote. The streamed formats
never hold the result or a Python object per value: CSV, JSON, JSON lines and Markdown rows are
written as text by DuckDB (:mod:`flowlens.output.sql`, in a connection of their own that reads
nothing but the batches), and the text of each batch is copied out as it comes; Parquet batches
go to a Parquet writer. The aligned table needs every row's width, so it is built in Python
(:mod:`flowlens.output.values`); on a terminal it shows the first ``max_rows`` rows and says how
many there were.

Untrusted text is made safe where it is shown (:mod:`flowlens.output.text`): control characters
are written as escapes in tables and Markdown, and in CSV when it goes to a terminal; CSV cells a
spreadsheet would run as formulas get a ``'`` first; JSON escapes control characters as JSON does.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from flowlens.errors import UsageError
from flowlens.output.text import defuse_formula, visible
from flowlens.output.values import cell, is_numeric, records

if TYPE_CHECKING:
    import pyarrow as pa

#: Rows DuckDB writes as text at a time: large enough to keep its threads busy, small enough to
#: keep memory flat (the text of a chunk is held until it is written).
CHUNK_ROWS = 256 * 1024

#: Rows of the table format shown on a terminal before the rest is counted and left out.
TERMINAL_ROWS = 100


class OutputFormat(StrEnum):
    """The formats a query result can be written in."""

    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"
    markdown = "markdown"


@dataclass(frozen=True)
class Written:
    """What :func:`write_reader` wrote: ``rows`` in the result, of which ``shown`` were written
    (fewer only when a table on a terminal was cut at ``max_rows``)."""

    rows: int
    shown: int

    @property
    def cut(self) -> int:
        """Rows left out."""
        return self.rows - self.shown


def write_reader(
    reader: pa.RecordBatchReader,
    fmt: OutputFormat,
    out: Path | None,
    stream: TextIO,
    *,
    terminal: bool = False,
    max_rows: int | None = None,
) -> Written:
    """Write the batches of ``reader`` in ``fmt`` to the file ``out``, or to ``stream`` when it is None.

    ``terminal`` says that ``stream`` is a terminal (people read it): CSV cells then show control
    characters as escapes. ``max_rows`` cuts the table format after that many rows (the rest are
    counted). Parquet needs ``out``. A file is written whole or not at all. Raises
    :class:`UsageError` when the file cannot be written.
    """
    if fmt is OutputFormat.parquet:
        if out is None:
            raise UsageError("--format parquet writes a binary file: give --out FILE")
        with replacing(out) as sink:
            return _write_parquet(reader, sink)
    if out is not None:
        with replacing(out) as sink:
            return _write_text(reader, fmt, sink, terminal=False, max_rows=None)
    binary = getattr(stream, "buffer", None)
    stream.flush()
    if binary is not None:
        written = _write_text(reader, fmt, binary, terminal=terminal, max_rows=max_rows)
        binary.flush()
        return written
    sink = io.BytesIO()
    written = _write_text(reader, fmt, sink, terminal=terminal, max_rows=max_rows)
    stream.write(sink.getvalue().decode("utf-8"))
    stream.flush()
    return written


def _write_text(
    reader: pa.RecordBatchReader, fmt: OutputFormat, sink: IO[bytes], *, terminal: bool, max_rows: int | None
) -> Written:
    if fmt is OutputFormat.table:
        return _write_table(reader, sink, max_rows)
    names = reader.schema.names
    rows = 0
    first = True
    if fmt is OutputFormat.csv:
        sink.write(_csv_header(names, terminal).encode())
    elif fmt is OutputFormat.markdown:
        sink.write(_markdown_header(names, reader.schema.types).encode())
    for chunk, count in _text_chunks(reader, fmt.value, terminal):
        if fmt is OutputFormat.json:
            # Each row's text starts with ",\n": the first row's is "[\n" instead.
            chunk = (b"[\n" + chunk[2:]) if first else chunk
        first = False
        sink.write(chunk)
        rows += count
    if fmt is OutputFormat.json:
        sink.write(b"[]\n" if first else b"\n]\n")
    return Written(rows, rows)


def _text_chunks(reader: pa.RecordBatchReader, fmt: str, terminal: bool) -> Iterator[tuple[bytes, int]]:
    """The rows of ``reader`` as text in ``fmt``, a chunk at a time, with the chunk's row count.

    Each chunk of up to :data:`CHUNK_ROWS` rows is written as text by DuckDB in one materialized
    query (which runs on all its threads; a streamed scan of the batches would run on one).
    """
    import duckdb
    import pyarrow as pa

    from flowlens.engine.sandbox import lock_down
    from flowlens.output.sql import MACROS, row_sql

    columns = pa.schema([field.with_name(f"c{i}") for i, field in enumerate(reader.schema)])
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for macro in MACROS:
            con.execute(macro)
        lock_down(con, [])
        con.register("flowlens_rows", columns.empty_table())
        types = con.sql("SELECT * FROM flowlens_rows").types
        query = (
            f"SELECT {row_sql(reader.schema.names, types, fmt, terminal=terminal)} AS line FROM flowlens_rows"
        )
        for chunk in _chunks(reader, columns):
            con.register("flowlens_rows", chunk)
            text = _arrow_table(con.sql(query))
            con.unregister("flowlens_rows")
            for column in text.column(0).chunks:
                if len(column):
                    yield _text_bytes(column), len(column)
    finally:
        con.close()


def _chunks(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.Table]:
    """The batches of ``reader`` gathered into tables of about :data:`CHUNK_ROWS` rows, renamed to ``schema``."""
    import pyarrow as pa

    batches: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        batches.append(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
        held += batch.num_rows
        if held >= CHUNK_ROWS:
            yield pa.Table.from_batches(batches, schema=schema)
            batches, held = [], 0
    if held:
        yield pa.Table.from_batches(batches, schema=schema)


def _arrow_table(rel: Any) -> pa.Table:
    """The relation's result as an Arrow table (DuckDB 2 renamed the method)."""
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    table: pa.Table = fetch()
    return table


def _text_bytes(column: pa.Array) -> bytes:
    """The UTF-8 text of a string column's values, one after the other, without a copy per value."""
    import numpy as np
    import pyarrow as pa

    if column.null_count:
        raise AssertionError("a row was written as NULL text; every value must have a text form")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        width = np.int64 if pa.types.is_large_string(column.type) else np.int32
        offsets = np.frombuffer(
            column.buffers()[1],
            dtype=width,
            count=len(column) + 1,
            offset=column.offset * np.dtype(width).itemsize,
        )
        data = column.buffers()[2]
        return bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])]) if data is not None else b""
    return "".join(column.to_pylist()).encode()


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(cells: Sequence[str], terminal: bool = False) -> str:
    """One CSV line (flowlens' CSV: fields quoted when they hold a comma, quote, line feed or
    carriage return; formulas defused; a lone empty field written ``""``)."""
    shown = [_csv_field(defuse_formula(visible(c) if terminal else c)) for c in cells]
    if len(cells) == 1 and cells[0] == "":
        shown = ['""']
    return ",".join(shown) + "\n"


def _csv_header(names: Sequence[str], terminal: bool) -> str:
    return csv_line(names, terminal)


def markdown_cell(text: str) -> str:
    """A cell of a Markdown table: control characters visible, ``\\`` and ``|`` escaped, line feeds as ``<br>``."""
    return "<br>".join(visible(part).replace("\\", "\\\\").replace("|", "\\|") for part in text.split("\n"))


def _markdown_header(names: Sequence[str], types: Sequence[pa.DataType]) -> str:
    lines = ["| " + " | ".join(markdown_cell(n) for n in names) + " |"]
    lines.append("|" + "|".join("---:" if is_numeric(t) else "---" for t in types) + "|")
    return "\n".join(lines) + "\n"


def _write_table(reader: pa.RecordBatchReader, sink: IO[bytes], max_rows: int | None) -> Written:
    import pyarrow as pa

    batches = []
    kept = 0
    total = 0
    for batch in reader:
        total += batch.num_rows
        if max_rows is None or kept < max_rows:
            take = batch if max_rows is None else batch.slice(0, max_rows - kept)
            batches.append(take)
            kept += take.num_rows
    table = pa.Table.from_batches(batches, schema=reader.schema)
    sink.write(aligned(table).encode())
    return Written(total, table.num_rows)


def aligned(table: pa.Table) -> str:
    """The table as aligned columns, numbers right-aligned, control characters visible; never
    wraps or cuts a value (stdout may be a pipe)."""
    names = [visible(n) for n in table.column_names]
    flat = [[visible(cell(v)) for v in row.values()] for row in records(table)]
    numeric = [is_numeric(t) for t in table.schema.types]
    widths = [max([len(n), *(len(row[i]) for row in flat)]) for i, n in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in flat]
    return "\n".join(out) + "\n"


def _write_parquet(reader: pa.RecordBatchReader, sink: IO[bytes]) -> Written:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(sink, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    return Written(rows, rows)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` when the block succeeds, and is removed when it fails.

    A path that exists and is not a regular file (``/dev/stdout``, a pipe) is written directly.
    Raises :class:`UsageError` when the file cannot be written.
    """
    direct = path.exists() and not path.is_file()
    partial = path if direct else path.with_name(f".{path.name}.partial")
    try:
        handle = open(partial, "wb")  # noqa: SIM115 - closed below, replaced or removed
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
        if not direct:
            os.replace(partial, path)
    except OSError as exc:
        if not direct:
            partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    except BaseException:
        if not direct:
            partial.unlink(missing_ok=True)
        raise
