"""What flowlens needs from a query engine: the :class:`Engine` interface every engine implements.

An engine is opened over a store and a time window (:mod:`flowlens.engine.window`) and offers the
views :data:`VIEWS` over the window's records and the SQL functions of
:mod:`flowlens.engine.functions` (``endpoint_name``); it runs the named queries of
:mod:`flowlens.engine.queries` with bound parameters, and ad-hoc SQL, and returns Arrow tables.
Commands that need a table of their own for helper queries (``coverage_facts``) register it for
a while with :meth:`Engine.temporary_table`.

:mod:`flowlens.engine.duckdb` is the engine flowlens uses; another engine (Apache Spark over the
same Parquet store) implements the same methods and runs the same query files.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pyarrow as pa

from flowlens.engine.queries import QuerySpec, bind_params
from flowlens.errors import QueryError
from flowlens.schema import ARROW_SCHEMA, PARTITION_COLUMN
from flowlens.store import Store

#: The full schema of the ``flows`` view: the stored columns, then the ``date`` partition column.
FLOWS_SCHEMA = ARROW_SCHEMA.append(pa.field(PARTITION_COLUMN.name, PARTITION_COLUMN.type))

#: The views every engine defines over the window's records. ``flows``: one row per flow-log
#: record, :data:`FLOWS_SCHEMA`. ``flow_summary``: the same records grouped by hour and by the
#: keys of :data:`flowlens.store.summaries.SUMMARY_COLUMNS`.
VIEWS = ("flows", "flow_summary")


class Engine(ABC):
    """A query engine over one store and one time window ``[since, until)``. Use as a context manager.

    ``files`` are the committed Parquet files the window selects; ``queries`` the named queries
    it can run (shipped ones and the user's own).
    """

    def __init__(
        self,
        store: Store,
        files: Sequence[Path],
        since: dt.datetime | None,
        until: dt.datetime | None,
        queries: Mapping[str, QuerySpec],
    ) -> None:
        self.store = store
        self.files: tuple[Path, ...] = tuple(files)
        self.since = since
        self.until = until
        self.queries: Mapping[str, QuerySpec] = dict(queries)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def query(self, name: str) -> QuerySpec:
        """The named query; :class:`QueryError` listing the valid names when there is none."""
        try:
            return self.queries[name]
        except KeyError:
            raise QueryError(f"no query named {name!r}; valid names: {', '.join(self.queries)}") from None

    def bind(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameter values a run of ``name`` binds: given values checked and typed, defaults filled."""
        return bind_params(self.query(name), params)

    @abstractmethod
    def run(
        self, name: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run a named query with bound parameters; at most ``limit`` rows, in the query's order."""

    @abstractmethod
    def sql(
        self, text: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run ad-hoc SQL against the engine's views, with bound parameters."""

    @abstractmethod
    def register(self, name: str, table: pa.Table) -> None:
        """Make ``table`` readable as ``name`` by the queries this engine runs next."""

    @abstractmethod
    def unregister(self, name: str) -> None:
        """Forget a table :meth:`register` made readable."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine's resources; it runs nothing after this."""

    @contextmanager
    def temporary_table(self, name: str, table: pa.Table) -> Iterator[None]:
        """``table`` readable as ``name`` inside the ``with`` block (helper queries read it)."""
        self.register(name, table)
        try:
            yield
        finally:
            self.unregister(name)


def check_limit(limit: int | None) -> None:
    """:class:`QueryError` unless ``limit`` is None or a count of rows."""
    if limit is not None and limit < 0:
        raise QueryError(f"limit must be 0 or more, not {limit}")
