"""Small builders for query tests: endpoints and flow rows between them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flowlens.engine import Engine, connect
from flowlens.store import Store
from flowlens.store.summaries import summarise_store
from tests.factories import T0, flow_row, write_store

Endpoint = tuple[str, str, str, dict[str, str] | None]


def wep(namespace: str, name: str, labels: dict[str, str] | None = None) -> Endpoint:
    return ("wep", namespace, name, labels if labels is not None else {"app": name.split("-")[0]})


def net(kind: str) -> Endpoint:
    return ("net", "-", kind, {})


def hep(host: str) -> Endpoint:
    return ("hep", "-", host, {"role": "node"})


def netset(namespace: str, name: str) -> Endpoint:
    return ("ns", namespace, name, {"kind": "set"})


def flow(src: Endpoint, dst: Endpoint, **overrides: Any) -> dict[str, Any]:
    """A flow row from ``src`` to ``dst``; ``minute=N`` shifts the 5-minute interval by N minutes."""
    start = T0 + dt.timedelta(minutes=int(overrides.pop("minute", 0)))
    row: dict[str, Any] = {
        "source_type": src[0],
        "source_namespace": src[1],
        "source_name_aggr": src[2],
        "source_labels": src[3],
        "dest_type": dst[0],
        "dest_namespace": dst[1],
        "dest_name_aggr": dst[2],
        "dest_labels": dst[3],
        "start_time": start,
        "end_time": start + dt.timedelta(minutes=5),
    }
    row.update(overrides)
    return flow_row(**row)


def engine_for(tmp_path: Path, rows: list[dict[str, Any]], name: str = "store") -> Engine:
    root = tmp_path / name
    write_store(root, rows)
    return connect(root)


def summarise(root: Path) -> int:
    """Write the hourly summaries a store written by hand lacks (as ``flowlens ingest`` does)."""
    return summarise_store(Store(root))


def run(tmp_path: Path, rows: list[dict[str, Any]], query: str, **params: Any) -> list[dict[str, Any]]:
    """The query's rows on a store of ``rows``, checked to be the same with and without the
    stored hourly summaries (queries that group read them through the flow_summary view)."""
    name = f"store-{len(list(tmp_path.glob('store-*')))}"  # a test may call run() more than once
    with engine_for(tmp_path, rows, name) as engine:
        raw = engine.run(query, params).to_pylist()
    assert summarise(tmp_path / name) == len(Store(tmp_path / name).flow_files())
    with connect(tmp_path / name) as engine:
        summarised = engine.run(query, params).to_pylist()
    assert summarised == raw, f"{query}: the summaries change the answer"
    return raw


def pick(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)
