"""CLI commands ``flowlens query`` and ``flowlens queries``: options, output formats, nothing else.

Results go to stdout (or ``--out``) in the chosen format; messages for people go to stderr.
Running queries, binding parameters and the ``flows`` view belong to :mod:`flowlens.engine`.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowlens.cli.common import StoreOpt, resolve_store

if TYPE_CHECKING:
    import pyarrow as pa
from flowlens.errors import QueryError, StoreError, UsageError

QUERIES_ENV = "FLOWLENS_QUERIES"


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    jsonl = "jsonl"
    parquet = "parquet"
    markdown = "markdown"


# --------------------------------------------------------------------------------------------
# Rendering (pure functions: a table in, text out)


def _plain(value: Any) -> Any:
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
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _records(table: pa.Table) -> list[dict[str, Any]]:
    names = table.column_names
    import pyarrow as pa

    maps = {n for n, t in zip(names, table.schema.types, strict=True) if pa.types.is_map(t)}
    out = []
    for row in table.to_pylist(maps_as_pydicts="strict") if maps else table.to_pylist():
        out.append({k: _plain(v) for k, v in row.items()})
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
    rows = _records(table)
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
    return _plain_table(names, cells, [_is_numeric(t) for t in table.schema.types])


def _plain_table(names: Sequence[str], cells: list[list[str]], numeric: Sequence[bool]) -> str:
    """Aligned columns, numbers right-aligned; never wraps or truncates (stdout may be a pipe)."""
    flat = [[c.replace("\n", " ") for c in row] for row in cells]
    widths = [max([len(n), *(len(row[i]) for row in flat)]) for i, n in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in flat]
    return "\n".join(out) + "\n"


def write_output(table: pa.Table, fmt: OutputFormat, out: Path | None) -> None:
    """Write the table to ``out`` or stdout. Parquet needs ``out``."""
    if fmt is OutputFormat.parquet:
        if out is None:
            raise UsageError("--format parquet writes a binary file: give --out FILE")
        import pyarrow.parquet as pq

        try:
            pq.write_table(table, out)
        except OSError as exc:
            raise UsageError(f"cannot write {str(out)!r}: {exc}") from None
        return
    text = render_text(table, fmt)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {str(out)!r}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Option helpers


def _query_dirs(dirs: list[Path] | None) -> list[Path]:
    """Folders of the user's own queries, later ones overriding earlier ones: the config file's
    ``queries``, then $FLOWLENS_QUERIES (os.pathsep-separated), then each --queries."""
    from flowlens.cli.common import config

    found: list[Path] = []
    configured = config().queries
    if configured is not None:
        found.append(configured)
    env = os.environ.get(QUERIES_ENV, "")
    found += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return found + list(dirs or [])


def _parse_params(items: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: write it as NAME=VALUE, e.g. --param namespace=production")
        params[key.strip()] = value
    return params


def _time(value: str | None, option: str) -> dt.datetime | None:
    from flowlens.engine import parse_time

    if value is None:
        return None
    return parse_time(value, dt.datetime.now(dt.UTC), option=option)


QueriesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--queries",
        help=(
            f"A folder of your own *.sql queries (repeatable; also ${QUERIES_ENV} and 'queries' in flowlens.yaml). "
            "A file with the name of a shipped query overrides it."
        ),
        show_default=False,
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("query")
    def query_cmd(
        name: Annotated[str | None, typer.Argument(help="A named query (see `flowlens queries`).")] = None,
        sql: Annotated[
            str | None,
            typer.Option("--sql", help="Ad-hoc SQL against the `flows` view instead of a named query."),
        ] = None,
        namespace: Annotated[
            str | None,
            typer.Option("--namespace", "-n", help="Only flows whose source or destination is here."),
        ] = None,
        since: Annotated[
            str | None, typer.Option("--since", help="Start of the window: 30m, 24h, 7d, or ISO-8601 (UTC).")
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="End of the window (exclusive), same forms.")
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", "-p", help="A query parameter NAME=VALUE (repeatable).")
        ] = None,
        fmt: Annotated[
            OutputFormat, typer.Option("--format", "-f", help="Output format.")
        ] = OutputFormat.table,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
        ] = None,
        limit: Annotated[int | None, typer.Option("--limit", min=0, help="At most N rows.")] = None,
        store: StoreOpt = None,
        queries: QueriesOpt = None,
    ) -> None:
        """Run a named query (or --sql) over the flow store and print the rows.

        A record is in the window when its start_time is in [--since, --until); date partitions
        outside the window are not read. Values given with --namespace and --param are bound as
        query parameters, never pasted into SQL.
        """
        from flowlens.engine import connect, load_queries

        if name is not None and sql is not None:
            raise UsageError("give a query NAME or --sql, not both")
        params: dict[str, Any] = dict(_parse_params(param))
        if namespace is not None:
            params["namespace"] = namespace
        dirs = _query_dirs(queries)
        if name is None and sql is None:
            names = ", ".join(load_queries(dirs))
            raise UsageError(f"name a query or give --sql; queries: {names}")
        since_at, until_at = _time(since, "--since"), _time(until, "--until")
        root = resolve_store(store).root
        if not root.is_dir():
            raise StoreError(
                f"no store at {str(root)!r}: ingest flow logs first (flowlens ingest), "
                "or point --store, $FLOWLENS_STORE or 'store' in flowlens.yaml at one"
            )
        with connect(root, since=since_at, until=until_at, query_dirs=dirs) as engine:
            if sql is not None:
                table = engine.sql(sql, params, limit=limit)
            else:
                assert name is not None
                spec = engine.query(name)
                if namespace is not None and spec.param("namespace") is None:
                    raise QueryError(f"query {name!r} has no namespace parameter; drop --namespace")
                table = engine.run(name, params, limit=limit)
        write_output(table, fmt, out)
        if table.num_rows == 0 and fmt is OutputFormat.table:
            typer.echo("(no rows)", err=True)

    @app.command("queries")
    def queries_cmd(
        name: Annotated[str | None, typer.Argument(help="Show this query's full header and SQL.")] = None,
        fmt: Annotated[
            OutputFormat, typer.Option("--format", "-f", help="Output format.")
        ] = OutputFormat.table,
        queries: QueriesOpt = None,
        show_all: Annotated[
            bool,
            typer.Option(
                "--all",
                help="Also list helper queries that other commands run (they need a table those create).",
            ),
        ] = False,
    ) -> None:
        """List the named queries with their descriptions and parameters."""
        from flowlens.engine import check_query, load_queries

        specs = load_queries(_query_dirs(queries))
        if name is not None:
            if name not in specs:
                raise QueryError(f"no query named {name!r}; valid names: {', '.join(specs)}")
            spec = specs[name]
            lines = [f"{spec.name}: {spec.description}", "", spec.explanation, "", "parameters:"]
            lines += [
                f"  {p.signature()}  -- {p.doc}" if p.doc else f"  {p.signature()}" for p in spec.params
            ]
            if not spec.params:
                lines.append("  (none)")
            lines += ["", f"-- from {spec.origin}", spec.sql]
            problems = check_query(spec)
            if problems:
                typer.echo("warning: " + "; ".join(problems), err=True)
            sys.stdout.write("\n".join(lines) + "\n")
            return
        if fmt is OutputFormat.parquet:
            raise UsageError(
                "flowlens queries does not write parquet; use table, csv, json, jsonl or markdown"
            )
        import pyarrow as pa

        shown = [spec for spec in specs.values() if show_all or not spec.requires]
        columns = {
            "name": [s.name for s in shown],
            "description": [s.description for s in shown],
            "parameters": [", ".join(p.signature() for p in s.params) for s in shown],
        }
        if show_all:
            columns["requires"] = [", ".join(s.requires) for s in shown]
        table = pa.table(columns)
        write_output(table, fmt, None)
