"""The SQL sandbox: what SQL run by the DuckDB engine may touch outside its own memory.

Every query the engine runs (the shipped ones, the user's query folders, ``query --sql``, and the
queries ``report``, ``suggest``, ``simulate`` and ``explain`` run) may read the Parquet files of
the window it was opened on, and nothing else: no other file, no directory listing, no network,
no extension to install or load, no database to attach, nothing written. Flow logs and query
files are untrusted input, and flowlens runs in shared CronJobs and behind web pages, where a
query must not become a way to read the host's files.

Owns:

* :func:`lock_down` — DuckDB's own sandbox on a connection: ``allowed_paths`` (or, for very many
  files, ``allowed_directories``) lists what the views read; ``enable_external_access = false``
  refuses every other file system and network access; automatic extension install and load are
  off; ``lock_configuration = true`` last, so that SQL cannot ``SET`` any of it back.
* :func:`check_statement` — the statement check in front of it: SQL given to the engine is one
  query (``SELECT``, ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``, ``SUMMARIZE``, ``SHOW``,
  ``EXPLAIN``), never ``COPY``, ``ATTACH``, ``INSTALL``, ``LOAD``, ``SET``, ``PRAGMA``, ``CALL``,
  ``EXPORT`` or a second statement. The sandbox holds without it; it gives a clearer message.
* :func:`sandbox_error` — the message for a refused access, naming what was refused.

``allowed_paths`` and ``allowed_directories`` appeared in DuckDB 1.2.0 (flowlens needs 1.3 anyway).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from flowlens.errors import QueryError

if TYPE_CHECKING:
    import duckdb

#: Up to this many files are allowed one by one (``allowed_paths``); beyond it their folders are
#: (``allowed_directories``: the window's date partitions). DuckDB takes about 45 µs to set each
#: allowed path, so listing the 100,000 files of a year of five-minute ingests would cost more
#: than the query; the folders hold only the store's committed files of those dates.
MAX_ALLOWED_PATHS = 2000

#: The statement types a query may have (DuckDB's ``StatementType`` names).
QUERY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})

#: Where the rules are written down for users.
DOCS = "see 'SQL sandbox' in docs/security.md"


def lock_down(con: duckdb.DuckDBPyConnection, readable: Iterable[Path | str]) -> None:
    """Let ``con`` read the files ``readable`` and nothing else outside memory, for good.

    Call it after the views over those files are defined and before any untrusted SQL runs;
    afterwards the connection's configuration cannot be changed. (DuckDB also lets a connection
    use its own temporary folder, where it spills what does not fit in memory.)
    """
    paths = sorted({os.path.abspath(p) for p in readable})
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    if len(paths) <= MAX_ALLOWED_PATHS:
        con.execute("SET allowed_paths = $paths::VARCHAR[]", {"paths": paths})
    else:
        # A trailing separator, so that 'date=2026-11-01' does not also allow 'date=2026-11-01x'.
        folders = sorted({os.path.join(os.path.dirname(p), "") for p in paths})
        con.execute("SET allowed_directories = $folders::VARCHAR[]", {"folders": folders})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def check_statement(con: duckdb.DuckDBPyConnection, text: str, what: str) -> None:
    """:class:`QueryError` unless ``text`` is exactly one query statement (see :data:`QUERY_STATEMENTS`).

    ``what`` names the SQL in the message (``"--sql"``, ``"query 'denied' (path)"``).
    """
    import duckdb

    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryError(f"{what} failed: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(
            f"{what} must be one query; it has {len(statements)} statements. Queries run sandboxed: {DOCS}"
        )
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in QUERY_STATEMENTS:
        # DuckDB's LOAD statement type covers INSTALL too.
        named = "an INSTALL or LOAD" if kind == "LOAD" else f"a {kind}"
        raise QueryError(
            f"{what} must be a query (SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN), "
            f"not {named} statement: SQL here may read the store's flows and nothing else ({DOCS})"
        )


def sandbox_error(exc: Exception, what: str) -> QueryError:
    """The :class:`QueryError` for an access the sandbox refused (a DuckDB ``PermissionException``)."""
    return QueryError(
        f"{what} was refused: {_first_line(exc)}. SQL here may read only the store's flows "
        f"(the flows and flow_summary views), no other file, folder, URL or extension ({DOCS})"
    )


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
