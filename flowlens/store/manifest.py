"""The manifest: ``<store>/manifest.json``, what a store holds and what it has ingested.

It holds, under ``version`` :data:`MANIFEST_VERSION`:

* ``generation``: how many commits made the store what it is (each commit adds one); the
  journal (:mod:`flowlens.store.journal`) names its entries by it, which is how a manifest
  restored from an older backup is told from the current one.
* ``files``: every committed data file, by its store-relative path, with its ``kind``
  (``flows``, ``summary`` or ``quarantine``), ``rows``, ``bytes``, ``xxh3_64`` (of the file's
  bytes), the ``commit`` that wrote it, and for flows and quarantine files the ``spans`` of
  source content their rows came from (:class:`Span`: a lineage, the checkpoint reading resumed
  from and the one it reached); a summary names the flows file it summarises (``of``). Readers
  read these files and no others (:class:`flowlens.store.layout.Snapshot`).
* ``retired``: files a commit replaced (compaction) or removed (pruning) that still wait on disk
  until no reader may be using them (:mod:`flowlens.store.lock`); nobody reads them.
* ``sources``: one *lineage* per content a source has had (a ``flows.log`` and its rotated,
  gzipped copies), each with its checkpoints of bytes and lines consumed and a hash of those
  bytes. :mod:`flowlens.ingest.checkpoints` owns what a lineage holds and how a file is matched
  to one; that is how an ingest reads each line once.
* ``ingests``: the summary of each of the last 500 ingests (counts, partitions, time).

A manifest of version 1 (written by flowlens before files were listed) has neither
``generation``, ``files`` nor ``retired``: readers then take every Parquet file on disk, as
flowlens did then, and the first writer lists them (see :func:`flowlens.store.commit.open_writer`).

The manifest is untrusted input like any file: it is read as JSON and checked for its version
and shape. It is only ever replaced whole, by a commit (:mod:`flowlens.store.commit`), so that
it always describes exactly the committed files.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError
from flowlens.store.files import LOCAL, StoreFiles

MANIFEST_VERSION = 2
#: Versions this flowlens reads (1: no file list; upgraded by the first writer).
READABLE_VERSIONS = (1, MANIFEST_VERSION)

#: The kinds of data file, and the folder each lives under.
KINDS = {"flows": "flows", "summary": "summary", "quarantine": "quarantine"}


def empty_manifest() -> dict[str, Any]:
    """The manifest of a store that has ingested nothing."""
    return {
        "version": MANIFEST_VERSION,
        "generation": 0,
        "files": {},
        "retired": [],
        "sources": [],
        "ingests": [],
    }


def is_legacy(manifest: dict[str, Any]) -> bool:
    """Whether ``manifest`` was written before manifests listed files (version 1)."""
    return manifest.get("version") == 1


def read_manifest(path: Path, files: StoreFiles = LOCAL) -> dict[str, Any]:
    """The manifest at ``path`` (read through ``files``), or an empty one when there is none yet."""
    if not files.is_file(path):
        return empty_manifest()
    try:
        data = json.loads(files.read_text(path))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"the store manifest {path} cannot be read ({exc}); run `flowlens verify` to see what "
            "is wrong and `flowlens repair` to rebuild it from the store's journal"
        ) from exc
    if not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS:
        raise StoreError(
            f"{path} is not a flowlens manifest of version {MANIFEST_VERSION}"
            + (
                f" (it says version {data.get('version')}: written by a newer flowlens? upgrade flowlens)"
                if isinstance(data, dict) and isinstance(data.get("version"), int)
                else "; run `flowlens repair` to rebuild it from the store's journal"
            )
        )
    check_shape(data, str(path))
    return data


def check_shape(data: dict[str, Any], where: str) -> None:
    """:class:`StoreError` unless ``data`` has the keys and types a manifest has."""
    problems = []
    if not isinstance(data.get("sources", []), list) or not isinstance(data.get("ingests", []), list):
        problems.append("'sources' and 'ingests' must be lists")
    if data.get("version") == MANIFEST_VERSION:
        if not isinstance(data.get("generation"), int) or isinstance(data.get("generation"), bool):
            problems.append("'generation' must be a number")
        files = data.get("files")
        if not isinstance(files, dict):
            problems.append("'files' must be a mapping")
        else:
            for rel, entry in files.items():
                if not _valid_entry(rel, entry):
                    problems.append(f"the entry of {rel!r} is malformed")
                    break
        if not isinstance(data.get("retired", []), list):
            problems.append("'retired' must be a list")
    if problems:
        raise StoreError(
            f"{where} is not a valid flowlens manifest: {'; '.join(problems)}; run `flowlens repair` "
            "to rebuild it from the store's journal"
        )


def _valid_entry(rel: Any, entry: Any) -> bool:
    if not isinstance(rel, str) or not isinstance(entry, dict):
        return False
    if ".." in rel.split("/") or rel.startswith("/") or rel.split("/", 1)[0] not in KINDS.values():
        return False
    return (
        entry.get("kind") in KINDS
        and isinstance(entry.get("rows"), int)
        and isinstance(entry.get("bytes"), int)
        and isinstance(entry.get("xxh3_64"), str)
    )


@dataclass(frozen=True)
class Span:
    """Source content whose rows a file holds: the lines of lineage ``lineage`` after checkpoint
    ``start`` (None: from its first line) up to checkpoint ``end``. A checkpoint is the manifest's
    ``{"bytes", "lines", <hash>}``."""

    lineage: str
    head: str
    start: dict[str, Any] | None
    end: dict[str, Any]

    @property
    def start_lines(self) -> int:
        return int(self.start["lines"]) if self.start else 0

    @property
    def end_lines(self) -> int:
        return int(self.end["lines"])

    def as_json(self) -> dict[str, Any]:
        return {"lineage": self.lineage, "head": self.head, "from": self.start, "to": self.end}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        return cls(str(data["lineage"]), str(data["head"]), data.get("from"), dict(data["to"]))


def merge_spans(spans: list[Span]) -> list[Span]:
    """``spans`` with the ones of a lineage that touch or overlap joined, sorted."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.lineage, s.start_lines, s.end_lines)):
        last = merged[-1] if merged else None
        if last is not None and last.lineage == span.lineage and span.start_lines <= last.end_lines:
            if span.end_lines > last.end_lines:
                merged[-1] = Span(last.lineage, last.head, last.start, span.end)
            continue
        merged.append(span)
    return merged


@dataclass(frozen=True)
class FileEntry:
    """One committed data file as the manifest lists it."""

    path: str  # relative to the store's root, with forward slashes
    kind: str  # flows, summary or quarantine
    rows: int
    bytes: int
    xxh3_64: str
    commit: str = ""
    spans: tuple[Span, ...] | None = ()  # None: written before spans were kept (unknown)
    of: str | None = None  # a summary: the flows file it summarises
    columns: str = ""  # fingerprint of the file's column names and types ("": not recorded)

    @property
    def day(self) -> str | None:
        """The ``YYYY-MM-DD`` of the partition a flows or summary file is in."""
        for part in self.path.split("/"):
            if part.startswith("date="):
                return part.removeprefix("date=")
        return None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "rows": self.rows,
            "bytes": self.bytes,
            "xxh3_64": self.xxh3_64,
            "commit": self.commit,
        }
        if self.kind != "summary":
            data["spans"] = None if self.spans is None else [s.as_json() for s in self.spans]
        if self.of is not None:
            data["of"] = self.of
        if self.columns:
            data["columns"] = self.columns
        return data

    @classmethod
    def from_json(cls, path: str, data: dict[str, Any]) -> FileEntry:
        spans = data.get("spans", [])
        return cls(
            path=path,
            kind=str(data["kind"]),
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
            xxh3_64=str(data["xxh3_64"]),
            commit=str(data.get("commit", "")),
            spans=None if spans is None else tuple(Span.from_json(s) for s in spans),
            of=data.get("of"),
            columns=str(data.get("columns", "")),
        )


def file_entries(manifest: dict[str, Any]) -> dict[str, FileEntry]:
    """The committed files a manifest lists, by store-relative path (empty for version 1)."""
    return {rel: FileEntry.from_json(rel, data) for rel, data in (manifest.get("files") or {}).items()}


def utc_now_text(now: dt.datetime | None = None) -> str:
    """A timestamp as the manifest and the journal write them."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
