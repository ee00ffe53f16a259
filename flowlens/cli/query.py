"""CLI commands ``flowlens query`` and ``flowlens queries``: options and printing, nothing else.

Results go to stdout (or ``--out``) in the chosen format; messages for people go to stderr.
Running queries, binding parameters and the ``flows`` view belong to :mod:`flowlens.engine`;
writing a result in a format belongs to :mod:`flowlens.output`.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flowlens.cli.common import StoreOpt, resolve_store
from flowlens.errors import QueryError, StoreError, UsageError
from flowlens.output import OutputFormat, write_result

QUERIES_ENV = "FLOWLENS_QUERIES"


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
        write_result(table, fmt, out, sys.stdout)
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
        write_result(table, fmt, None, sys.stdout)
