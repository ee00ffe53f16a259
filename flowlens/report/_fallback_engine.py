"""Temporary stand-in for flowlens.engine while it is being written (removed once it lands)."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

from flowlens.schema import ARROW_SCHEMA
from flowlens.store import Store


class FallbackEngine:
    def __init__(self, store: Store, since: dt.datetime | None, until: dt.datetime | None) -> None:
        self.con = duckdb.connect()
        files = [str(p) for p in store.flow_files()]
        if files:
            self.con.execute(
                "CREATE VIEW flows_all AS SELECT * FROM read_parquet($files, hive_partitioning = true)",
                {"files": files},
            )
        else:
            self.con.register("flows_empty", ARROW_SCHEMA.empty_table())
            self.con.execute("CREATE VIEW flows_all AS SELECT * FROM flows_empty")
        lo = since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        hi = until or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
        self.con.execute(
            f"CREATE VIEW flows AS SELECT * FROM flows_all WHERE start_time >= '{lo.isoformat()}'::TIMESTAMPTZ "
            f"AND start_time < '{hi.isoformat()}'::TIMESTAMPTZ"
        )

    def run(self, name: str, params: dict[str, Any] | None = None) -> pa.Table:
        text = resources.files("flowlens").joinpath("queries", f"{name}.sql").read_text()
        return self.sql(text, params)

    def sql(self, text: str, params: dict[str, Any] | None = None) -> pa.Table:
        used = {k: v for k, v in (params or {}).items() if f"${k}" in text}
        return self.con.execute(text, used).fetch_arrow_table()


def connect(store: Store, *, since: dt.datetime | None = None, until: dt.datetime | None = None) -> Any:
    try:
        from flowlens.engine import connect as real_connect
    except ImportError:
        return FallbackEngine(store, since, until)
    return real_connect(store, since=since, until=until)
