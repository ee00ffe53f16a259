"""CLI commands ``flowlens query`` and ``flowlens queries``: options and printing, nothing else.

Results go to stdout (or ``--out``) in the chosen format; messages for people go to stderr.
Running queries, binding parameters and the ``flows`` view belong to :mod:`flowlens.engine`;
writing a result in a format belongs to :mod:`flowlens.output`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from flowlens.cli.common import (
    EngineOpt,
    LimitOpt,
    NamespaceOpt,
    OutFileOpt,
    OutputFormatOpt,
    QueriesOpt,
    SinceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    StoreOpt,
    UntilOpt,
    engine_choice,
    err,
    existing_store,
    query_dirs,
    window,
)
from flowlens.errors import QueryError, UsageError
from flowlens.output import TERMINAL_ROWS, OutputFormat, write_reader, write_result


def _parse_params(items: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--param {item!r}: write it as NAME=VALUE, e.g. --param namespace=production")
        params[key.strip()] = value
    return params


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("query")
    def query_cmd(
        name: Annotated[str | None, typer.Argument(help="A named query (see `flowlens queries`).")] = None,
        sql: Annotated[
            str | None,
            typer.Option("--sql", help="Ad-hoc SQL against the `flows` view instead of a named query."),
        ] = None,
        namespace: NamespaceOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", "-p", help="A query parameter NAME=VALUE (repeatable).")
        ] = None,
        fmt: OutputFormatOpt = OutputFormat.table,
        out: OutFileOpt = None,
        limit: LimitOpt = None,
        store: StoreOpt = None,
        queries: QueriesOpt = None,
        allow_external: Annotated[
            bool,
            typer.Option(
                "--allow-external",
                help=(
                    "Run the SQL outside the sandbox: it may then read and write any file you can, "
                    "attach databases, install extensions and reach the network. Only for SQL you trust."
                ),
            ),
        ] = False,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Run a named query (or --sql) over the flow store and print the rows.

        A record is in the window when its start_time is in [--since, --until); date partitions
        outside the window are not read. Values given with --namespace and --param are bound as
        query parameters, never pasted into SQL.

        Queries run sandboxed: one query statement (SELECT, WITH, FROM, ...) that may read the
        store's flows (the flows and flow_summary views) and no other file, folder, URL or
        extension; --allow-external lifts this for SQL you trust.
        """
        from flowlens.engine import load_queries, open_engine

        if name is not None and sql is not None:
            raise UsageError("give a query NAME or --sql, not both")
        params: dict[str, Any] = dict(_parse_params(param))
        if namespace is not None:
            params["namespace"] = namespace
        dirs = query_dirs(queries)
        if name is None and sql is None:
            names = ", ".join(load_queries(dirs))
            raise UsageError(f"name a query or give --sql; queries: {names}")
        since_at, until_at = window(since, until)
        rows = limit or None
        choice = engine_choice(engine, spark_master, spark_conf)
        root = existing_store(store, choice)
        if sql is not None and choice.name == "spark" and not allow_external:
            raise UsageError(
                "--sql on --engine spark runs outside any sandbox (Spark SQL reads every path the "
                "cluster can): add --allow-external for SQL you trust, or use the DuckDB engine"
            )
        if allow_external:
            err(
                "flowlens: warning: --allow-external: this SQL runs outside the sandbox and can read and "
                "write any file you can, attach databases, install extensions and reach the network"
            )
        with open_engine(
            root, choice, since=since_at, until=until_at, query_dirs=dirs, external_access=allow_external
        ) as opened:
            if sql is not None:
                reader = opened.stream_sql(sql, params, limit=rows)
            else:
                assert name is not None
                spec = opened.query(name)
                if namespace is not None and spec.param("namespace") is None:
                    raise QueryError(f"query {name!r} has no namespace parameter; drop --namespace")
                reader = opened.stream(name, params, limit=rows)
            terminal = out is None and sys.stdout.isatty()
            written = write_reader(
                reader,
                fmt,
                out,
                sys.stdout,
                terminal=terminal,
                max_rows=TERMINAL_ROWS if terminal and fmt is OutputFormat.table else None,
            )
        if written.cut:
            err(
                f"… {written.cut:,} more rows (of {written.rows:,}): "
                "use --limit, --format csv or --out FILE to see them all"
            )
        if written.rows == 0 and fmt is OutputFormat.table:
            typer.echo("(no rows)", err=True)

    @app.command("queries")
    def queries_cmd(
        name: Annotated[str | None, typer.Argument(help="Show this query's full header and SQL.")] = None,
        fmt: OutputFormatOpt = OutputFormat.table,
        queries: QueriesOpt = None,
        show_all: Annotated[
            bool,
            typer.Option(
                "--all",
                help="Also list the helper queries other commands run (marked with who runs them).",
            ),
        ] = False,
    ) -> None:
        """List the named queries with their descriptions and parameters.

        Helper queries, which other commands run (simulate, explain, suggest, report), are listed
        only with --all.
        """
        from flowlens.engine import check_query, describe_query, list_queries, load_queries

        specs = load_queries(query_dirs(queries))
        if name is not None:
            if name not in specs:
                raise QueryError(f"no query named {name!r}; valid names: {', '.join(specs)}")
            problems = check_query(specs[name])
            if problems:
                typer.echo("warning: " + "; ".join(problems), err=True)
            sys.stdout.write(describe_query(specs[name]))
            return
        if fmt is OutputFormat.parquet:
            raise UsageError(
                "flowlens queries does not write parquet; use table, csv, json, jsonl or markdown"
            )
        import pyarrow as pa

        write_result(pa.table(list_queries(specs, helpers=show_all)), fmt, None, sys.stdout)
