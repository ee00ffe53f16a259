"""DuckDB connections as every part of flowlens opens them.

DuckDB is imported when a connection is made, not when this module is: the command line imports
the store package on every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


def duckdb_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection as every part of flowlens uses it: UTC session time zone, and no
    progress bar (the library never prints; stderr belongs to the command line)."""
    import duckdb

    con = duckdb.connect(config={"threads": threads} if threads is not None else {})
    return configure_session(con)


def configure_session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """UTC and no progress bar on a connection or cursor (session settings are not inherited)."""
    con.execute("SET TimeZone = 'UTC'")  # constant text, no values
    con.execute("SET enable_progress_bar = false")
    return con
