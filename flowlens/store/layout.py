"""Where each part of a store lives on disk, and which committed files it holds.

Layout::

    <store>/flows/date=YYYY-MM-DD/<commit>.parquet          hive-partitioned flow rows
    <store>/summary/v1/date=YYYY-MM-DD/<stem>.<size>.parquet  the hourly summary of one flows file
    <store>/quarantine/<commit>-<n>.parquet                 bad lines: file, line, reason, raw bytes
    <store>/manifest.json                                   what was ingested (see manifest.py)
    <store>/.staging/<commit>/                              a commit being prepared, never read
    <store>/.lock                                           held by the one writer (see lock.py)

``<commit>`` is the id of the commit that wrote the file (an ingest id and a sequence number).
A commit moves its files in before it writes the manifest (see commit.py), so every file under
``flows/``, ``summary/`` and ``quarantine/`` is committed: :meth:`Store.flow_files` lists them
from the folders. Readers take their file list from here and nowhere else, so that when the
manifest comes to list every committed file (with its rows and checksum), these methods read
that list and no reader changes.

This module imports nothing heavy (no pyarrow, no DuckDB): the command line imports it on every
start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.store.manifest import read_manifest

DEFAULT_STORE = ".flowlens"

#: The version of the hourly summaries' grouping (:data:`flowlens.store.summaries.SUMMARY_SQL`),
#: part of their folder: a later flowlens that groups on other keys writes ``v2`` and ignores
#: (falls back to raw records for) files summarised by ``v1``. Change both together.
SUMMARY_VERSION = 1
SUMMARY_DIR = f"summary/v{SUMMARY_VERSION}"


@dataclass(frozen=True)
class Store:
    """A store rooted at ``root`` (a path or a string).

    Write to it through :func:`flowlens.store.open_writer` (the lock, recovery and atomic commits);
    describe it with :func:`flowlens.store.describe`."""

    root: Path

    def __post_init__(self) -> None:
        if not isinstance(self.root, Path):
            object.__setattr__(self, "root", Path(self.root))

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

    def exists(self) -> bool:
        return self.flows_dir.is_dir() or self.manifest_path.is_file()

    def flow_files(self) -> list[Path]:
        """Every committed Parquet file, sorted."""
        if not self.flows_dir.is_dir():
            return []
        return sorted(self.flows_dir.glob("date=*/*.parquet"))

    def partition_dates(self) -> list[str]:
        """The ``YYYY-MM-DD`` of every date partition that holds at least one file."""
        return sorted({p.parent.name.removeprefix("date=") for p in self.flow_files()})

    def quarantine_files(self) -> list[Path]:
        if not self.quarantine_dir.is_dir():
            return []
        return sorted(self.quarantine_dir.glob("*.parquet"))

    def read_manifest(self) -> dict[str, Any]:
        """The manifest (an empty one for a new store); see :mod:`flowlens.store.manifest`."""
        return read_manifest(self.manifest_path)


def summary_path(store_root: Path, flows_file: Path, size: int | None = None) -> Path:
    """Where the summary of ``flows_file`` (``<root>/flows/date=…/x.parquet``) lives.

    The name carries the flows file's size in bytes (``x.<size>.parquet``), so a flows file
    replaced by other content no longer finds the summary of the old one. ``size`` defaults to
    the file's current size.
    """
    if size is None:
        size = flows_file.stat().st_size
    return store_root / SUMMARY_DIR / flows_file.parent.name / f"{flows_file.stem}.{size}.parquet"


def missing_summaries(store_root: Path, flows_files: Sequence[Path]) -> list[Path]:
    """The flows files among ``flows_files`` that have no summary yet."""
    return [f for f in flows_files if not summary_path(store_root, f).is_file()]
