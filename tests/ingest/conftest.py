from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flowlens.ingest import IngestOptions, IngestSummary, ingest
from flowlens.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def rows_of(
    store: Store, sql: str = "SELECT * FROM f ORDER BY source_file, source_line"
) -> list[dict[str, Any]]:
    files = store.flow_files()
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("f", con.read_parquet([str(p) for p in files], hive_partitioning=True))
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def quarantine_of(store: Store) -> list[dict[str, Any]]:
    files = store.quarantine_files()
    if not files:
        return []
    con = duckdb.connect()
    con.register("q", con.read_parquet([str(p) for p in files]))
    cur = con.execute("SELECT * FROM q ORDER BY source_file, source_line")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.fixture
def run(store: Store) -> Callable[..., IngestSummary]:
    def _run(*paths: str | Path, **options: Any) -> IngestSummary:
        return ingest(store, [str(p) for p in paths], IngestOptions(**options))

    return _run
