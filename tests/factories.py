"""Hand-made flow rows and stores for tests: every row is a full schema row with sane defaults."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.formats.hits import parse_hit
from flowlens.schema import ARROW_SCHEMA, COLUMNS, POLICY_COLUMNS

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

_DEFAULTS: dict[str, Any] = {
    "cluster": "default",
    "start_time": T0,
    "end_time": T0 + dt.timedelta(minutes=5),
    "source_ip": None,
    "source_name": "-",
    "source_name_aggr": "client-5d8f7b9c6-*",
    "source_namespace": "default",
    "source_port": None,
    "source_type": "wep",
    "source_labels": {"app": "client"},
    "dest_ip": None,
    "dest_name": "-",
    "dest_name_aggr": "server-6c7d8e9f0-*",
    "dest_namespace": "default",
    "dest_port": 80,
    "dest_type": "wep",
    "dest_labels": {"app": "server"},
    "dest_service_namespace": "-",
    "dest_service_name": "-",
    "dest_service_port": "-",
    "dest_service_port_num": None,
    "proto": "tcp",
    "action": "allow",
    "reporter": "src",
    "enforced_policies": ["0|__PROFILE__|pro:kns.default|allow|0"],
    "pending_policies": ["0|__PROFILE__|pro:kns.default|allow|0"],
    "bytes_in": 1000,
    "bytes_out": 500,
    "packets_in": 10,
    "packets_out": 5,
    "num_flows": 1,
    "num_flows_started": 1,
    "num_flows_completed": 1,
    "host": "node-1",
    "format": "enterprise",
    "ingest_id": "test",
    "source_file": "test.log",
    "source_line": 1,
}


def flow_row(**overrides: Any) -> dict[str, Any]:
    """A full row of the store schema. Policy columns take hit strings in any Calico format."""
    row: dict[str, Any] = {c.name: None for c in COLUMNS}
    row.update(_DEFAULTS)
    row.update(overrides)
    for col in POLICY_COLUMNS:
        value = row[col]
        if value is not None:
            row[col] = [parse_hit(h).as_row() if isinstance(h, str) else h for h in value]
    for col in ("source_labels", "dest_labels"):
        if isinstance(row[col], dict):
            row[col] = list(row[col].items())
    return row


def write_store(root: Path, rows: list[dict[str, Any]], name: str = "part-0") -> Path:
    """Write rows into ``<root>/flows/date=YYYY-MM-DD/<name>.parquet`` and return ``root``."""
    by_date: dict[dt.date, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_date[row["start_time"].astimezone(dt.UTC).date()].append(row)
    for day, day_rows in by_date.items():
        part = root / "flows" / f"date={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(day_rows, schema=ARROW_SCHEMA)
        pq.write_table(table, part / f"{name}.parquet")
    (root / "flows").mkdir(parents=True, exist_ok=True)
    return root
