"""Sources at Hadoop URLs for ``flowlens ingest --engine spark``: found, and their first lines read,
on the driver through Hadoop's ``FileSystem`` API.

Owns :class:`HadoopSources`: the finder :func:`flowlens.ingest.runs.check_request` takes for a
Spark ingest, which finds local sources as every ingest does and sources at Hadoop URLs
(``hdfs://nn/logs/``, ``s3a://bucket/flows.log.gz``, ``viewfs://...``) through the Spark session's
Hadoop file systems, with the same rules: a folder is walked recursively, hidden names are passed
over and so are files that are not logs (README, YAML, ...) inside folders and globs; a file named
explicitly is always read; a glob is Hadoop's (``*``, ``?``, ``[...]``, ``{a,b}``). It also gives
what the driver needs to plan the run's rounds (each source's first lines, its size) and the
whole bytes of a source the driver reads itself (one a task handed back).

The executors read the bytes of sources at URLs with Spark's ``binaryFile`` source
(:func:`flowlens.ingest.spark.url_rounds`), never with Python's ``open``.
"""

from __future__ import annotations

import contextlib
import glob
import io
from pathlib import Path
from typing import Any

from flowlens.formats import detect
from flowlens.ingest.checkpoints import head_key
from flowlens.ingest.options import IngestOptions
from flowlens.ingest.paths import FoundSources
from flowlens.ingest.runs import local_sources
from flowlens.ingest.sources import HEAD_BYTES, Source, Unreadable
from flowlens.store.hadoop import HadoopFiles
from flowlens.store.urls import remote_base, url_scheme

#: Raw bytes read for a source's first lines: enough for :data:`HEAD_BYTES` decompressed from a
#: gzip file (deflate adds a few bytes per block to data it cannot compress).
_HEAD_RAW = HEAD_BYTES + HEAD_BYTES // 8 + 4096


def is_url(path: str) -> bool:
    """Whether ``path`` is a Hadoop URL (a scheme other than ``file``)."""
    scheme = url_scheme(path)
    return scheme is not None and scheme != "file"


class HadoopSources:
    """Sources at Hadoop URLs, through the file systems of the Spark session ``spark``."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self._files: dict[str, HadoopFiles] = {}

    def _at(self, url: str) -> tuple[HadoopFiles, Path]:
        base, path = remote_base(url, "the source")
        if base not in self._files:
            self._files[base] = HadoopFiles(self.spark, base)
        return self._files[base], Path(path)

    def find(self, paths: list[str | tuple[str, str | None]]) -> FoundSources:
        """The sources of ``paths`` (see the module's docstring), in the order given, each once."""
        found = FoundSources()
        add = found.add
        for item in paths:
            raw, fmt = item if isinstance(item, tuple) else (item, None)
            if not is_url(raw):
                local = local_sources([item])
                for name, kind in local.files:
                    add(name, kind, explicit=True)  # (local_sources passed over what it should)
                found.passed += local.passed
                found.problems += local.problems
                continue
            files, path = self._at(raw)
            magic = glob.has_magic(raw)
            try:
                matches = files.matches(path) if magic else [path]
            except OSError as exc:
                found.problems.append((raw, f"cannot be listed ({exc})"))
                continue
            if not matches:
                found.problems.append((raw, "no file matches this pattern"))
                continue
            for match in matches:
                try:
                    if files.is_dir(match):
                        for child in self._walk(files, match):
                            add(files.uri(child), fmt, explicit=False)
                    elif files.is_file(match):
                        add(files.uri(match), fmt, explicit=not magic)
                    else:
                        found.problems.append((files.uri(match), "no such file or directory"))
                except OSError as exc:
                    found.problems.append((files.uri(match), f"cannot be read ({exc})"))
        return found

    def _walk(self, files: HadoopFiles, folder: Path) -> list[Path]:
        """The files under ``folder``, recursively, hidden names left out, in sorted order."""
        result: list[Path] = []
        for child in files.children(folder):
            if child.name.startswith("."):
                continue
            if files.is_dir(child):
                result += self._walk(files, child)
            else:
                result.append(child)
        return result

    def size(self, url: str) -> int:
        files, path = self._at(url)
        try:
            return files.size(path)
        except OSError:
            return 0

    def qualified(self, url: str) -> str:
        """The URL Spark's ``binaryFile`` source names this source by."""
        files, path = self._at(url)
        return files.qualified(path)

    def content(self, url: str) -> bytes:
        """The whole bytes of a source (for the driver, which reads a handed-back source)."""
        files, path = self._at(url)
        return files.read_bytes(path)

    def head_key(self, url: str, fmt: str | None, options: IngestOptions) -> tuple[str, str | None]:
        """:func:`flowlens.ingest.checkpoints.head_key` of the source's first lines and its format
        (``fmt``, or as its first bytes tell it), as :func:`flowlens.ingest.spark._head_key` gives
        them for a local file."""
        files, path = self._at(url)
        try:
            raw = files.read_prefix(path, _HEAD_RAW)
            try:
                head = _head(url, raw, options)
            except Exception:  # a prefix cut inside a gzip member: read the whole file
                if len(raw) < _HEAD_RAW:
                    raise
                head = _head(url, files.read_bytes(path), options)
        except (Unreadable, OSError, ValueError) as exc:
            return f"unreadable:{url}:{exc}", None
        except Exception:  # a cut gzip: SourceCut; its task reads what there is
            return f"cut:{url}", None
        return head_key(head), fmt or detect(head)


def _head(url: str, raw: bytes, options: IngestOptions) -> bytes:
    source = Source(url, None, max_expansion=options.max_expansion, content=io.BytesIO(raw))
    with contextlib.closing(source), source.open() as stream:
        return stream.read(HEAD_BYTES)
