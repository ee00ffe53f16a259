"""The store on disk: layout, manifest, atomic commit, lock, quarantine.

Layout::

    <store>/flows/date=YYYY-MM-DD/<ingest_id>-<n>.parquet   hive-partitioned flow rows
    <store>/quarantine/<ingest_id>.parquet                  bad lines: file, line, reason, raw text
    <store>/manifest.json                                   what was ingested, per source content
    <store>/.staging/<ingest_id>/                           an ingest in progress (never read)
    <store>/.lock                                           held by the one writer
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_STORE = ".flowlens"


@dataclass(frozen=True)
class Store:
    """A store rooted at ``root``."""

    root: Path

    @property
    def flows_dir(self) -> Path:
        return self.root / "flows"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    def flow_files(self) -> list[Path]:
        """Every committed Parquet file, sorted."""
        if not self.flows_dir.is_dir():
            return []
        return sorted(self.flows_dir.glob("date=*/*.parquet"))

    def partition_dates(self) -> list[str]:
        """The ``YYYY-MM-DD`` of every date partition that holds at least one file."""
        return sorted({p.parent.name.removeprefix("date=") for p in self.flow_files()})
