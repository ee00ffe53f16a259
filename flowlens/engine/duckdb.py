"""The DuckDB engine: a DuckDB connection with the ``flows`` and ``flow_summary`` views of a window.

Owns:

* :func:`connect` — a :class:`DuckDBEngine` (session time zone UTC) whose ``flows`` view covers
  the committed Parquet files of a time window: those the store's manifest lists, under a
  reader's lease held until the engine is closed (:func:`flowlens.store.reading`). Files are
  chosen by their ``date=YYYY-MM-DD`` partition (:func:`flowlens.engine.window.window_files`),
  so partitions outside the window are never opened; rows are then filtered on ``start_time`` with bound values. An empty
  store, or a window with no files, still has a ``flows`` view with the full schema
  (:data:`flowlens.engine.base.FLOWS_SCHEMA`).
* the ``flow_summary`` view: the same window's records grouped by hour and by the keys the grouping
  queries use (:mod:`flowlens.store.summaries`), read from the stored hourly summaries for whole hours and
  grouped from the records for the rest (:func:`flowlens.engine.window.plan_summary`), so that it
  is the same with or without them.
* the SQL functions of :mod:`flowlens.engine.functions` (``endpoint_name``), as DuckDB macros;
* running named queries and ad-hoc SQL on that connection, with DuckDB binding every value, in
  the sandbox of :mod:`flowlens.engine.sandbox` (the window's files and nothing else) unless the
  caller asks for external access.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from flowlens.engine.base import FLOWS_SCHEMA, Engine, check_limit
from flowlens.engine.functions import SqlFunction, load_functions
from flowlens.engine.queries import QuerySpec, load_queries
from flowlens.engine.sandbox import check_statement, lock_down, sandbox_error
from flowlens.engine.window import SummaryPlan, plan_summary, resolve_window, window_files
from flowlens.errors import QueryError, StoreError
from flowlens.store import Store, duckdb_connection, reading
from flowlens.store.summaries import SUMMARY_COLUMNS, summary_sql

#: Rows per record batch of a streamed result.
STREAM_BATCH_ROWS = 64 * 1024


class DuckDBEngine(Engine):
    """A DuckDB connection with the ``flows`` and ``flow_summary`` views and the named queries."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        store: Store,
        files: Sequence[Path],
        since: dt.datetime | None,
        until: dt.datetime | None,
        queries: Mapping[str, QuerySpec],
        relations: tuple[duckdb.DuckDBPyRelation, ...],
        *,
        sandboxed: bool = True,
        release: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(store, files, since, until, queries)
        self.con = con
        #: True when SQL may read the window's files and nothing else (see flowlens.engine.sandbox).
        self.sandboxed = sandboxed
        # Keep the relations behind the views alive for as long as the connection.
        self._relations = relations
        self._release = release  # the reader's lease on the store's files

    def close(self) -> None:
        self.con.close()
        if self._release is not None:
            self._release()
            self._release = None

    def relation(self, name: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        """The named query as a DuckDB relation (for callers who want to go on in SQL)."""
        values = self.bind(name, params)
        spec = self.query(name)
        what = f"query {name!r} ({spec.origin})"
        if self.sandboxed:
            check_statement(self.con, spec.sql, what)
        try:
            return self.con.sql(spec.sql, params=values or None)
        except duckdb.PermissionException as exc:
            raise sandbox_error(exc, what) from None
        except duckdb.CatalogException as exc:
            raise QueryError(
                f"query {name!r} ({spec.origin}) reads a table this connection does not have: {exc}. "
                "Named queries read the `flows` view; a query that reads another table (such as "
                "coverage_facts) is a helper that its own command runs after registering that table"
            ) from None
        except duckdb.Error as exc:
            raise QueryError(f"query {name!r} ({spec.origin}) failed: {exc}") from None

    def run(
        self, name: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run a named query with bound parameters; at most ``limit`` rows, in the query's order."""
        rel = self.relation(name, params)
        return self._fetch(rel, limit, f"query {name!r}")

    def sql_relation(
        self, text: str, params: Mapping[str, Any] | None = None
    ) -> duckdb.DuckDBPyRelation | None:
        """Ad-hoc SQL as a DuckDB relation (None for a statement without a result)."""
        if self.sandboxed:
            check_statement(self.con, text, "SQL")
        try:
            return self.con.sql(text, params=dict(params) if params else None)
        except duckdb.PermissionException as exc:
            raise sandbox_error(exc, "SQL") from None
        except duckdb.Error as exc:
            raise QueryError(f"SQL failed: {exc}") from None

    def sql(
        self, text: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run ad-hoc SQL against the ``flows`` view, with bound parameters."""
        rel = self.sql_relation(text, params)
        if rel is None:
            return pa.table({})
        return self._fetch(rel, limit, "SQL")

    def stream(
        self, name: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.RecordBatchReader:
        """The named query's rows as record batches, computed as they are read (nothing held whole)."""
        return self._stream(self.relation(name, params), limit, f"query {name!r}")

    def stream_sql(
        self, text: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.RecordBatchReader:
        """Ad-hoc SQL's rows as record batches, computed as they are read."""
        rel = self.sql_relation(text, params)
        if rel is None:
            return pa.table({}).to_reader()
        return self._stream(rel, limit, "SQL")

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    @staticmethod
    def _fetch(rel: duckdb.DuckDBPyRelation, limit: int | None, what: str) -> pa.Table:
        check_limit(limit)
        try:
            if limit is not None:
                rel = rel.limit(limit)
            return rel.to_arrow_table()
        except duckdb.PermissionException as exc:
            raise sandbox_error(exc, what) from None
        except duckdb.Error as exc:
            raise QueryError(f"{what} failed: {exc}") from None

    @staticmethod
    def _stream(rel: duckdb.DuckDBPyRelation, limit: int | None, what: str) -> pa.RecordBatchReader:
        check_limit(limit)

        def failed(exc: duckdb.Error) -> QueryError:
            if isinstance(exc, duckdb.PermissionException):
                return sandbox_error(exc, what)
            return QueryError(f"{what} failed: {exc}")

        try:
            if limit is not None:
                rel = rel.limit(limit)
            # DuckDB 2 renamed fetch_arrow_reader to to_arrow_reader.
            fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
            reader: pa.RecordBatchReader = fetch(STREAM_BATCH_ROWS)
        except duckdb.Error as exc:
            raise failed(exc) from None

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except duckdb.Error as exc:
                raise failed(exc) from None

        return pa.RecordBatchReader.from_batches(reader.schema, batches())


def connect(
    store: Store | Path | str,
    *,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
    threads: int | None = None,
    query_dirs: Iterable[Path | str] = (),
    now: dt.datetime | None = None,
    summaries: bool = True,
    external_access: bool = False,
) -> DuckDBEngine:
    """A :class:`DuckDBEngine` over the store's committed files in ``[since, until)``.

    ``since``/``until`` are aware datetimes (naive ones are UTC) or text, read as
    :func:`~flowlens.engine.window.resolve_window` reads it against ``now`` (default: the current
    time).
    ``summaries=False`` builds the ``flow_summary`` view from the records alone, ignoring the
    stored hourly summaries (the result is the same; this is for checking that it is).

    SQL on the engine may read the window's files and nothing else (:mod:`flowlens.engine.sandbox`);
    ``external_access=True`` leaves DuckDB's defaults instead (any file, the network, extensions),
    for SQL the caller trusts.
    """
    if not isinstance(store, Store):
        store = Store.at(store)
    since_at, until_at = resolve_window(since, until, now or dt.datetime.now(dt.UTC))
    queries = load_queries(query_dirs)
    # The reader's lease on the files of the snapshot, held until the engine is closed: a
    # compaction meanwhile publishes its files but deletes the old ones only after.
    lease = contextlib.ExitStack()
    snapshot = lease.enter_context(reading(store))
    con = None
    try:
        files = window_files(snapshot, since_at, until_at)
        con = duckdb_connection(threads)
        # Files of one set of columns are read without matching columns by name (several times
        # faster over many files); a store of older files with fewer columns is matched by name.
        by_name = not snapshot.same_columns(files)
        flows = _flows_relation(con, files, since_at, until_at, by_name=by_name)
        flows.create_view("flows")
        plan = plan_summary(store, files, since_at, until_at, summaries, snapshot=snapshot)
        summary = _summary_relation(con, plan, by_name=by_name)
        summary.create_view("flow_summary")
        for function in load_functions().values():
            _define(con, function)
        if not external_access:
            lock_down(con, [*files, *(path for _, path in plan.summarised)])
    except duckdb.Error as exc:
        _close(con, lease)
        raise StoreError(f"cannot read the store at {str(store.root)!r}: {exc}") from None
    except BaseException:
        _close(con, lease)
        raise
    return DuckDBEngine(
        con,
        store,
        files,
        since_at,
        until_at,
        queries,
        (flows, summary),
        sandboxed=not external_access,
        release=lease.close,
    )


def _close(con: duckdb.DuckDBPyConnection | None, lease: contextlib.ExitStack) -> None:
    if con is not None:
        con.close()
    lease.close()


def _define(con: duckdb.DuckDBPyConnection, function: SqlFunction) -> None:
    """``function`` as a DuckDB macro, which DuckDB expands in place where a query calls it."""
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO {function.name}({', '.join(function.params)}) AS {function.body}"
    )


def _in_range(
    rel: duckdb.DuckDBPyRelation, column: str, low: dt.datetime | None, high: dt.datetime | None
) -> duckdb.DuckDBPyRelation:
    """``rel`` limited to ``low <= column < high`` (a None bound is no limit), values bound."""
    value = duckdb.ColumnExpression(column)
    if low is not None:
        rel = rel.filter(value >= duckdb.ConstantExpression(low))
    if high is not None:
        rel = rel.filter(value < duckdb.ConstantExpression(high))
    return rel


def _flows_relation(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[Path],
    since: dt.datetime | None,
    until: dt.datetime | None,
    *,
    by_name: bool = True,
) -> duckdb.DuckDBPyRelation:
    columns = [duckdb.ColumnExpression(name) for name in FLOWS_SCHEMA.names]
    if not files:
        return con.from_arrow(FLOWS_SCHEMA.empty_table()).select(*columns)
    # Absolute paths: the sandbox allows them as such (DuckDB before 1.4 compares paths as given).
    rel = con.read_parquet([os.path.abspath(f) for f in files], hive_partitioning=True, union_by_name=by_name)
    return _in_range(rel, "start_time", since, until).select(*columns)


def _summary_relation(
    con: duckdb.DuckDBPyConnection, plan: SummaryPlan, *, by_name: bool = True
) -> duckdb.DuckDBPyRelation:
    """The ``flow_summary`` view: :func:`flowlens.store.summaries.summary_sql` over the window's records,
    put together as ``plan`` says (see :class:`flowlens.engine.window.SummaryPlan`)."""
    raw_parts: list[duckdb.DuckDBPyRelation] = []
    summarised = [flows_file for flows_file, _ in plan.summarised]
    if summarised and plan.edges:
        # Records of summarised files outside the whole hours: the window's partial edge hours.
        rel = _flows_relation(con, summarised, plan.since, plan.until, by_name=by_name)
        start = duckdb.ColumnExpression("start_time")
        outside = None
        for low, high in plan.edges:
            part = (start >= duckdb.ConstantExpression(low)) & (start < duckdb.ConstantExpression(high))
            outside = part if outside is None else outside | part
        assert outside is not None
        raw_parts.append(rel.filter(outside))
    if plan.group_unsummarised:
        raw_parts.append(_flows_relation(con, plan.unsummarised, plan.since, plan.until, by_name=by_name))
    grouped: list[duckdb.DuckDBPyRelation] = []
    for index, raw in enumerate(raw_parts):
        name = f"flowlens_summary_raw_{index}"
        raw.create_view(name)
        grouped.append(con.sql(summary_sql(name)))
    if plan.summarised:
        stored = con.read_parquet([os.path.abspath(path) for _, path in plan.summarised])
        stored = _in_range(stored, "hour", plan.hours_from, plan.hours_until)
        grouped.append(stored.select(*[duckdb.ColumnExpression(c) for c in SUMMARY_COLUMNS]))
    result = grouped[0]
    for other in grouped[1:]:
        result = result.union(other)
    return result
