"""Where each part of a store lives on disk, and which committed files a reader reads.

Layout::

    <store>/flows/date=YYYY-MM-DD/<commit>.parquet            hive-partitioned flow rows
    <store>/summary/v1/date=YYYY-MM-DD/<stem>.<size>.parquet  the hourly summary of one flows file
    <store>/quarantine/<commit>-<n>.parquet                   bad lines: file, line, reason, raw bytes
    <store>/manifest.json                                     the committed files and what was ingested
    <store>/journal/<generation>-<commit>.json                what each commit changed (journal.py)
    <store>/.staging/<commit>/                                a commit being prepared, never read
    <store>/lost+found/<repair>/                              files `flowlens repair` set aside
    <store>/.lock                                             held by the one writer (lock.py)
    <store>/.readers                                          shared by readers (lock.py)

``<commit>`` is the id of the commit that wrote the file (an ingest id and a sequence number).

**Readers see commits, not directories.** A :class:`Snapshot` is the list of committed files one
manifest names (:mod:`flowlens.store.manifest`); every reader (queries, reports, suggestions,
simulations, ``status``) takes its files from one, never from a glob of the folders, so a file
being moved in by a commit that has not yet published its manifest is never read, and a file a
commit removed is never read once that commit is published.
:func:`flowlens.store.integrity.reading` hands a reader a snapshot it has checked (see there).
A store written by a flowlens whose manifest did not list files (version 1) is read from its
folders, as then, until its first writer lists them.

This module imports nothing heavy (no pyarrow, no DuckDB): the command line imports it on every
start.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError
from flowlens.store.files import LOCAL, StoreFiles, UnopenedFiles
from flowlens.store.manifest import FileEntry, file_entries, is_legacy, read_manifest
from flowlens.store.urls import local_path, remote_base, url_scheme

DEFAULT_STORE = ".flowlens"

#: The version of the hourly summaries' grouping (:data:`flowlens.store.summaries.SUMMARY_SQL`),
#: part of their folder: a later flowlens that groups on other keys writes ``v2`` and ignores
#: (falls back to raw records for) files summarised by ``v1``. Change both together.
SUMMARY_VERSION = 1
SUMMARY_DIR = f"summary/v{SUMMARY_VERSION}"
LOST_AND_FOUND = "lost+found"


@dataclass(frozen=True)
class Store:
    """A store rooted at ``root`` (a path, a ``file://`` URL, or a Hadoop URL as a string).

    Write to it through :func:`flowlens.store.open_writer` (the lock, recovery and atomic commits);
    read it through :func:`flowlens.store.reading` (a checked :class:`Snapshot`); describe it with
    :func:`flowlens.store.describe`.

    ``files`` does the file operations (:mod:`flowlens.store.files`). A store at a URL of another
    scheme (:meth:`at`, ``hdfs://nn/data/store``) has the URL's path as its ``root`` and files
    that refuse every operation until the Spark engine opens it
    (:func:`flowlens.store.hadoop.open_hadoop`)."""

    root: Path
    files: StoreFiles = field(default=LOCAL)

    def __post_init__(self) -> None:
        # A file:// URL is the folder it names (flowlens.store.urls).
        text = str(self.root)
        if url_scheme(text) is not None and not self.files.remote:
            object.__setattr__(self, "root", Path(local_path(text, "the store")))
        elif not isinstance(self.root, Path):
            object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def at(cls, location: str | Path) -> Store:
        """The store at ``location``: a folder, a ``file://`` URL, or (as a string: pathlib folds
        a URL's ``//``) a Hadoop URL such as ``hdfs://nn:8020/data/store``."""
        text = str(location)
        scheme = url_scheme(text)
        if isinstance(location, str) and scheme is not None and scheme != "file":
            base, path = remote_base(text, "the store")
            return cls(Path(path), UnopenedFiles(base))
        if isinstance(location, str) and scheme == "file":
            # read as a URL before pathlib folds it (``file:///.`` would become ``file:``)
            return cls(Path(local_path(text, "the store")))
        return cls(Path(location))

    @property
    def location(self) -> str:
        """Where the store is, as its user named it: its folder, or its URL."""
        return self.files.uri(self.root) if self.files.remote else str(self.root)

    @property
    def flows_dir(self) -> Path:
        return self.root / "flows"

    @property
    def summary_dir(self) -> Path:
        return self.root / SUMMARY_DIR

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def journal_dir(self) -> Path:
        return self.root / "journal"

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    @property
    def lost_dir(self) -> Path:
        return self.root / LOST_AND_FOUND

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @property
    def readers_path(self) -> Path:
        return self.root / ".readers"

    def exists(self) -> bool:
        is_dir = self.files.is_dir
        return is_dir(self.flows_dir) or self.files.is_file(self.manifest_path) or is_dir(self.journal_dir)

    def read_manifest(self) -> dict[str, Any]:
        """The manifest (an empty one for a new store); see :mod:`flowlens.store.manifest`."""
        return read_manifest(self.manifest_path, self.files)

    def snapshot(self) -> Snapshot:
        """The committed files the manifest names, unchecked (see :func:`flowlens.store.reading`)."""
        return Snapshot.of(self, self.read_manifest())

    def unmanaged(self) -> bool:
        """Whether the store has data files but neither a manifest nor a journal, and none of the
        files is named as flowlens' commits name theirs: Parquet files written by another tool.
        Readers read its files from disk; the first writer lists them. (Files flowlens wrote
        without their manifest are damage: see :mod:`flowlens.store.integrity`.)"""
        if self.files.exists(self.manifest_path) or self.files.is_dir(self.journal_dir):
            return False
        files = self.disk_files("flows") + self.disk_files("quarantine")
        return bool(files) and not any(written_by_flowlens(p) for p in files)

    def flow_files(self) -> list[Path]:
        """Every committed flows file, sorted."""
        return list(self.snapshot().flows())

    def partition_dates(self) -> list[str]:
        """The ``YYYY-MM-DD`` of every date partition that holds at least one committed file."""
        return self.snapshot().dates()

    def quarantine_files(self) -> list[Path]:
        """Every committed quarantine file, sorted."""
        return list(self.snapshot().quarantine())

    def disk_files(self, kind: str) -> list[Path]:
        """The Parquet files of ``kind`` (flows, summary, quarantine) on disk, committed or not:
        only for checking a store and for reading one written before manifests listed files."""
        if kind == "flows":
            return self.files.glob(self.flows_dir, "date=*/*.parquet")
        if kind == "summary":
            return self.files.glob(self.summary_dir, "date=*/*.parquet")
        return self.files.glob(self.quarantine_dir, "*.parquet")


def day_of(path: Path) -> dt.date:
    """The date of the ``date=YYYY-MM-DD`` partition folder ``path`` is in."""
    try:
        return dt.date.fromisoformat(path.parent.name.removeprefix("date="))
    except ValueError:
        raise StoreError(
            f"partition folder {str(path.parent)!r} is not named date=YYYY-MM-DD; move it out of the store"
        ) from None


@dataclass(frozen=True)
class Snapshot:
    """The committed data files of one manifest: what a reader reads.

    ``entries``: the manifest's file entries by store-relative path (for a store whose manifest
    does not list files, the Parquet files on disk, with ``rows`` -1); ``generation``: the
    manifest's (None for such a store); ``files``: the store's file operations."""

    root: Path
    generation: int | None
    entries: Mapping[str, FileEntry] = field(default_factory=dict)
    files: StoreFiles = field(default=LOCAL)

    @classmethod
    def of(cls, store: Store, manifest: dict[str, Any]) -> Snapshot:
        if is_legacy(manifest) or (manifest.get("generation") == 0 and store.unmanaged()):
            return cls(store.root, None, _disk_entries(store), store.files)
        return cls(store.root, int(manifest.get("generation", 0)), file_entries(manifest), store.files)

    @property
    def store(self) -> Store:
        """The store this snapshot is of."""
        return Store(self.root, self.files)

    @property
    def legacy(self) -> bool:
        return self.generation is None

    def path(self, rel: str) -> Path:
        return self.root / rel

    def _of_kind(self, kind: str) -> list[FileEntry]:
        return sorted((e for e in self.entries.values() if e.kind == kind), key=lambda e: e.path)

    def flow_entries(self, first: dt.date | None = None, last: dt.date | None = None) -> list[FileEntry]:
        """The flows files whose partition date is within ``[first, last]`` (None: unbounded)."""
        chosen = []
        for entry in self._of_kind("flows"):
            if first is not None or last is not None:
                day = day_of(self.path(entry.path))
                if (first is not None and day < first) or (last is not None and day > last):
                    continue
            chosen.append(entry)
        return chosen

    def flows(self, first: dt.date | None = None, last: dt.date | None = None) -> tuple[Path, ...]:
        """The paths of :meth:`flow_entries`."""
        return tuple(self.path(e.path) for e in self.flow_entries(first, last))

    def same_columns(self, paths: Sequence[Path]) -> bool:
        """Whether the manifest records one and the same column fingerprint for every file of
        ``paths``: then a reader can read them as one table without matching columns by name
        (which opens every file's footer before reading and costs several times the scan)."""
        seen = set()
        for path in paths:
            entry = self.entries.get(path.relative_to(self.root).as_posix())
            if entry is None or not entry.columns:
                return False
            seen.add(entry.columns)
        return len(seen) <= 1

    def summaries(self) -> dict[Path, Path]:
        """Each committed flows file that has a committed summary -> that summary."""
        flows = {e.path for e in self._of_kind("flows")}
        return {
            self.path(e.of): self.path(e.path)
            for e in self._of_kind("summary")
            if e.of is not None and e.of in flows
        }

    def quarantine(self) -> tuple[Path, ...]:
        return tuple(self.path(e.path) for e in self._of_kind("quarantine"))

    def dates(self) -> list[str]:
        """The ``YYYY-MM-DD`` of every date partition that holds at least one committed flows file."""
        return sorted({day for e in self._of_kind("flows") if (day := e.day) is not None})

    def rows(self, kind: str = "flows") -> int:
        return sum(max(e.rows, 0) for e in self._of_kind(kind))


def _disk_entries(store: Store) -> dict[str, FileEntry]:
    """The Parquet files on disk of a store whose manifest does not list files (version 1)."""
    entries: dict[str, FileEntry] = {}
    flows = store.disk_files("flows")
    for kind, paths in (("flows", flows), ("quarantine", store.disk_files("quarantine"))):
        for path in paths:
            rel = path.relative_to(store.root).as_posix()
            entries[rel] = FileEntry(rel, kind, -1, -1, "", spans=None)
    for path in flows:
        summary = summary_path(store.root, path, store.files.size(path))
        if store.files.is_file(summary):
            rel = summary.relative_to(store.root).as_posix()
            of = path.relative_to(store.root).as_posix()
            entries[rel] = FileEntry(rel, "summary", -1, -1, "", of=of)
    return entries


_COMMIT_FILE = re.compile(r"^(compact-)?\d{8}T\d{6}Z-[0-9a-f]{8}(-\d{3})+\.parquet$")


def written_by_flowlens(path: Path) -> bool:
    """Whether a data file is named as flowlens' commits name them (``<ingest id>-<n>.parquet``)."""
    return _COMMIT_FILE.match(path.name) is not None


def summary_path(store_root: Path, flows_file: Path, size: int | None = None) -> Path:
    """Where the summary of ``flows_file`` (``<root>/flows/date=…/x.parquet``) is written.

    The name carries the flows file's size in bytes (``x.<size>.parquet``), so a flows file
    replaced by other content no longer finds the summary of the old one. ``size`` defaults to
    the file's current size. The manifest names each summary's flows file (``of``); readers go
    by that.
    """
    if size is None:
        size = flows_file.stat().st_size
    return store_root / SUMMARY_DIR / flows_file.parent.name / f"{flows_file.stem}.{size}.parquet"


def summarised_flows(summary_rel: str) -> str | None:
    """The flows file (store-relative) a summary named as :func:`summary_path` names it summarises."""
    parts = summary_rel.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != SUMMARY_DIR or not parts[2].startswith("date="):
        return None
    stem, _, size = parts[3].removesuffix(".parquet").rpartition(".")
    if not stem or not size.isdigit():
        return None
    return f"flows/{parts[2]}/{stem}.parquet"


def missing_summaries(store_root: Path, flows_files: Sequence[Path]) -> list[Path]:
    """The flows files among ``flows_files`` that have no committed summary."""
    known = Store(store_root).snapshot().summaries()
    return [f for f in flows_files if f not in known]
