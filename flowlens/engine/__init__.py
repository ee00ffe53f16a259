"""The query engine: named SQL queries over the flow store, in a time window.

``flowlens.engine.connect(store, since="24h").run("denied", {"namespace": "shop"})`` opens the
store's records of the window and runs a named query, returning an Arrow table.

Modules:

* :mod:`~flowlens.engine.base` — :class:`Engine`, what the rest of flowlens needs from an engine
  (run a named query or SQL with bound parameters, the window, temporary tables);
* :mod:`~flowlens.engine.duckdb` — the DuckDB engine and :func:`connect`: the connection, its
  ``flows`` and ``flow_summary`` views;
* :mod:`~flowlens.engine.choice` — :func:`open_engine`: the engine a command chose (``--engine
  duckdb|spark``) over a window;
* :mod:`~flowlens.engine.settings` — :class:`SparkSettings` (``--spark-master``, ``--spark-conf``);
* :mod:`~flowlens.engine.spark` — the Spark engine (``pip install 'flowlens[spark]'``): the same
  views and query files on Spark SQL, loaded only when chosen;
* :mod:`~flowlens.engine.functions` — the SQL functions every engine defines for the queries
  (``endpoint_name``: how every query names an endpoint), one definition each;
* :mod:`~flowlens.engine.queries` — the named-query library (``queries/*.sql`` and the user's own
  folders), engine-neutral: headers, parameters, checks, binding;
* :mod:`~flowlens.engine.window` — ``--since``/``--until`` parsing and which files and stored
  summaries a window reads.
"""

from __future__ import annotations

from flowlens.engine.base import FLOWS_SCHEMA, VIEWS, Engine
from flowlens.engine.choice import ENGINES, EngineChoice, open_engine
from flowlens.engine.duckdb import DuckDBEngine, connect
from flowlens.engine.functions import SqlFunction, inline_functions, load_functions
from flowlens.engine.queries import (
    PARAM_TYPES,
    QueryParam,
    QuerySpec,
    bind_params,
    check_query,
    coerce_param_value,
    describe_query,
    list_queries,
    load_queries,
    package_queries_dir,
    parse_query,
    used_params,
)
from flowlens.engine.settings import SparkSettings
from flowlens.engine.window import parse_time, resolve_window, select_files, window_files

__all__ = [
    "ENGINES",
    "FLOWS_SCHEMA",
    "PARAM_TYPES",
    "VIEWS",
    "DuckDBEngine",
    "Engine",
    "EngineChoice",
    "QueryParam",
    "QuerySpec",
    "SparkSettings",
    "SqlFunction",
    "bind_params",
    "check_query",
    "coerce_param_value",
    "connect",
    "describe_query",
    "inline_functions",
    "list_queries",
    "load_functions",
    "load_queries",
    "open_engine",
    "package_queries_dir",
    "parse_query",
    "parse_time",
    "resolve_window",
    "select_files",
    "used_params",
    "window_files",
]
