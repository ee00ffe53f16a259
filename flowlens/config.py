"""The ``flowlens.yaml`` configuration file: store, cluster, sources, queries and reports folders.

Example::

    store: /var/lib/flowlens
    cluster: prod-eu-1
    queries: ./my-queries          # extra named queries (optional)
    engine: duckdb                 # or spark (optional; see docs/spark.md)
    reports: ./reports             # where `flowlens report` writes (optional)
    suggest:                       # defaults of `flowlens suggest` (optional; docs/suggest.md)
      min-days: 2
      scan-ports: 10
      admit: ["staging/app=loadtest->staging/app=frontend@tcp/8080"]
    sources:
      - path: /var/log/calico/flowlogs/flows.log*
        format: enterprise         # optional: detected per file when absent
      - path: /exports/goldmane/*.ndjson
    retention: 90d                 # ingest removes partitions older than this (optional)
    compact_files: 24              # ingest compacts a closed day with more small files (0: never)

Relative paths are relative to the folder of the config file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flowlens.errors import UsageError
from flowlens.store.lifecycle import parse_age
from flowlens.store.urls import url_scheme

CONFIG_NAMES = ("flowlens.yaml", "flowlens.yml")
# The input formats' names, kept here so that reading a config does not load the parsers
# (a test checks they equal flowlens.formats.FORMAT_NAMES).
FORMAT_NAMES = ("enterprise", "elasticsearch", "goldmane", "whisker")
# The query engines (flowlens.engine.ENGINES; a test checks they are the same).
ENGINE_NAMES = ("duckdb", "spark")


@dataclass(frozen=True)
class SourceSpec:
    path: str
    format: str | None = None


def _url(value: object) -> str | None:
    """``value`` when it is a Hadoop URL (``hdfs://nn/x``: not a path, which :class:`Path` would
    fold into ``hdfs:/nn/x``), else None."""
    if isinstance(value, str) and url_scheme(value) not in (None, "file"):
        return value
    return None


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    store: Path | str | None = None  # a string: a Hadoop URL (hdfs://nn/x), kept as written
    cluster: str | None = None
    queries: Path | None = None
    reports: Path | None = None
    engine: str | None = None
    sources: tuple[SourceSpec, ...] = field(default_factory=tuple)
    retention_days: int | None = None
    compact_files: int | None = None
    #: the ``suggest:`` mapping as written; :func:`flowlens.suggest.settings.suggest_settings` checks it
    suggest: Mapping[str, Any] = field(default_factory=dict)


def find_config(start: Path) -> Path | None:
    """``flowlens.yaml`` in ``start`` (no walking up: a config applies where it is)."""
    for name in CONFIG_NAMES:
        candidate = start / name
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path) -> Config:
    """Read and check a config file; errors name the file and the key."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the config file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the config must be a mapping of keys (store, cluster, sources, ...)")
    known = {
        "store",
        "cluster",
        "queries",
        "reports",
        "sources",
        "suggest",
        "engine",
        "retention",
        "compact_files",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    base = path.parent

    def as_path(key: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise UsageError(f"{path}: '{key}' must be a path")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    cluster = data.get("cluster")
    if cluster is not None and not isinstance(cluster, str):
        raise UsageError(f"{path}: 'cluster' must be a string")
    engine = data.get("engine")
    if engine is not None and engine not in ENGINE_NAMES:
        raise UsageError(f"{path}: 'engine' must be one of {', '.join(ENGINE_NAMES)}")
    sources: list[SourceSpec] = []
    raw_sources = data.get("sources") or []
    if not isinstance(raw_sources, list):
        raise UsageError(f"{path}: 'sources' must be a list")
    for i, item in enumerate(raw_sources):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise UsageError(f"{path}: sources[{i}] needs a 'path'")
        fmt = item.get("format")
        if fmt is not None and fmt not in FORMAT_NAMES:
            raise UsageError(f"{path}: sources[{i}].format must be one of {', '.join(FORMAT_NAMES)}")
        extra = sorted(set(item) - {"path", "format"})
        if extra:
            raise UsageError(f"{path}: sources[{i}] has unknown key(s) {', '.join(extra)}")
        p = Path(item["path"]).expanduser()
        sources.append(SourceSpec(str(p if p.is_absolute() else base / p), fmt))
    retention_days = None
    if data.get("retention") is not None:
        retention_days = parse_age(data["retention"], option=f"{path}: 'retention'")
    compact_files = data.get("compact_files")
    if compact_files is not None and (
        not isinstance(compact_files, int) or isinstance(compact_files, bool) or compact_files < 0
    ):
        raise UsageError(f"{path}: 'compact_files' must be a whole number, 0 or more (0: never compact)")
    suggest = data.get("suggest")
    if suggest is None:
        suggest = {}
    if not isinstance(suggest, dict):
        raise UsageError(
            f"{path}: 'suggest' must be a mapping of suggest options (min-days, scan-ports, ...)"
        )
    return Config(
        path=path,
        store=_url(data.get("store")) or as_path("store"),
        cluster=cluster,
        queries=as_path("queries"),
        reports=as_path("reports"),
        engine=engine,
        sources=tuple(sources),
        retention_days=retention_days,
        compact_files=compact_files,
        suggest=dict(suggest),
    )
