"""A store at a Hadoop URL: its file operations through Hadoop's ``FileSystem`` API, in the JVM of
a Spark session.

Owns :class:`HadoopFiles`, the :class:`~flowlens.store.files.StoreFiles` of a store at a URL
whose scheme a Hadoop file system serves (``hdfs://``, ``s3a://``, ``gs://``, ``abfss://``,
``viewfs://``, ``webhdfs://``, ...), and :func:`open_hadoop`, which gives a :class:`Store` made
from such a URL these files. The driver reads the manifest, the journal and the pending commits
through them; Spark reads the Parquet files at their URLs (:meth:`HadoopFiles.uri`).

Nothing here imports pyspark: the session is handed in by the Spark engine, and its JVM is
reached through py4j (``spark._jvm``), with the session's Hadoop configuration (``--spark-conf
spark.hadoop.KEY=VALUE`` sets it, as for any Spark job).

Readers take no lease on a Hadoop store (Hadoop's file systems have no shared locks): the files
compaction and pruning remove there are deleted only after a grace
(:data:`flowlens.store.hadoop_commit.RETIRED_GRACE`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError, UsageError
from flowlens.store.files import StoreFiles, UnopenedFiles, no_lease
from flowlens.store.layout import Store

_NOT_FOUND = ("java.io.FileNotFoundException",)


class HadoopError(StoreError, OSError):
    """A Hadoop file system failed (not a missing file): an :class:`OSError` for the store's code,
    which handles one as it would on a local disk, and one line for the user where nothing does."""


def _missing(exc: BaseException) -> bool:
    """Whether a py4j error is Hadoop's "no such file"."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        return False
    try:
        return str(java.getClass().getName()) in _NOT_FOUND
    except Exception:  # the JVM is gone: not a missing file
        return False


class HadoopFiles(StoreFiles):
    """The files under ``base`` (``scheme://authority``) through the Hadoop ``FileSystem`` of the
    Spark session ``spark``'s JVM and Hadoop configuration."""

    remote = True

    def __init__(self, spark: Any, base: str) -> None:
        self.base = base
        self._jvm = spark._jvm
        self._gateway = spark.sparkContext._gateway
        self._context: Any = None  # the FileContext of renames that replace (made when first needed)
        # The session's Hadoop configuration with its ``spark.hadoop.*`` settings, including those
        # set on a running session (--spark-conf), as Spark's own reads see them.
        self._conf = spark._jsparkSession.sessionState().newHadoopConf()
        try:
            self._fs = self._path(Path("/")).getFileSystem(self._conf)
        except Exception as exc:  # no file system for the scheme, a bad configuration
            why = _first_line(exc)
            hint = (
                ": add its connector's jars to Spark (--spark-conf spark.jars.packages=...; see "
                "docs/spark.md, 'Stores and sources as URLs')"
                if "No FileSystem for scheme" in why or "ClassNotFoundException" in why
                else ""
            )
            raise UsageError(f"cannot reach {base}/ through Hadoop ({why}){hint}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HadoopFiles) and other.base == self.base

    def __hash__(self) -> int:
        return hash((HadoopFiles, self.base))

    def _path(self, path: Path) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(self.uri(path))

    def _status(self, path: Path) -> Any | None:
        try:
            return self._fs.getFileStatus(self._path(path))
        except Exception as exc:
            if _missing(exc):
                return None
            raise HadoopError(f"{self.uri(path)}: {_first_line(exc)}") from None

    def _call(self, path: Path, action: Callable[[], Any]) -> Any:
        """``action()``, a call into Hadoop about ``path``, its failures as Python's."""
        try:
            return action()
        except Exception as exc:
            if _missing(exc):
                raise FileNotFoundError(self.uri(path)) from None
            raise HadoopError(f"{self.uri(path)}: {_first_line(exc)}") from None

    def _local(self, status: Any) -> Path:
        return Path(str(status.getPath().toUri().getPath()))

    def uri(self, path: Path) -> str:
        return self.base + path.as_posix()

    def is_file(self, path: Path) -> bool:
        status = self._status(path)
        return status is not None and bool(status.isFile())

    def is_dir(self, path: Path) -> bool:
        status = self._status(path)
        return status is not None and bool(status.isDirectory())

    def exists(self, path: Path) -> bool:
        return self._status(path) is not None

    def size(self, path: Path) -> int:
        status = self._status(path)
        if status is None or not status.isFile():
            raise FileNotFoundError(self.uri(path))
        return int(status.getLen())

    def read_bytes(self, path: Path) -> bytes:
        return self.read_prefix(path, None)

    def children(self, folder: Path) -> list[Path]:
        status = self._status(folder)
        if status is None:
            raise FileNotFoundError(self.uri(folder))
        if not status.isDirectory():
            raise NotADirectoryError(self.uri(folder))
        return sorted(
            self._local(s) for s in self._call(folder, lambda: self._fs.listStatus(self._path(folder)))
        )

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        pattern_path = self._jvm.org.apache.hadoop.fs.Path(f"{self.uri(folder)}/{pattern}")
        found = self._call(folder, lambda: self._fs.globStatus(pattern_path))
        return sorted(self._local(s) for s in found) if found is not None else []

    def total_size(self, folder: Path) -> int:
        if self._status(folder) is None:
            return 0
        return int(self._call(folder, lambda: self._fs.getContentSummary(self._path(folder)).getLength()))

    def lease(self, readers_path: Path) -> contextlib.AbstractContextManager[bool]:
        return no_lease()

    def modified(self, path: Path) -> float:
        status = self._status(path)
        if status is None:
            raise FileNotFoundError(self.uri(path))
        return int(status.getModificationTime()) / 1000.0

    # Writing (flowlens.store.hadoop_commit) ---------------------------------------------------

    def write_bytes(self, path: Path, data: bytes) -> None:
        def write() -> None:
            out = self._fs.create(self._path(path), True)
            try:
                out.write(bytearray(data))
            finally:
                out.close()

        self._call(path, write)

    def upload(self, local: Path, path: Path) -> None:
        source = self._jvm.org.apache.hadoop.fs.Path(f"file://{local.resolve()}")
        self._call(path, lambda: self._fs.copyFromLocalFile(False, True, source, self._path(path)))

    def download(self, path: Path, local: Path) -> None:
        target = self._jvm.org.apache.hadoop.fs.Path(f"file://{local.resolve()}")
        # (the raw local file system: no .crc file beside the copy)
        self._call(path, lambda: self._fs.copyToLocalFile(False, self._path(path), target, True))

    def create_exclusive(self, path: Path, data: bytes) -> bool:
        try:
            out = self._fs.create(self._path(path), False)
        except Exception as exc:
            if self._status(path) is not None:
                return False  # (FileAlreadyExistsException, or the file system's own way to say so)
            raise HadoopError(f"{self.uri(path)}: {_first_line(exc)}") from None

        def write() -> None:
            try:
                out.write(bytearray(data))
            finally:
                out.close()

        self._call(path, write)
        return True

    def rename(self, src: Path, dst: Path, *, overwrite: bool = False) -> None:
        if overwrite:
            # FileSystem.rename never replaces a file; FileContext.rename with OVERWRITE does, in one
            # step on HDFS (on a file system without atomic rename, as a delete and a rename).
            if self._context is None:
                self._context = self._call(
                    dst,
                    lambda: self._jvm.org.apache.hadoop.fs.FileContext.getFileContext(
                        self._path(Path("/")).toUri(), self._conf
                    ),
                )
            rename = self._jvm.org.apache.hadoop.fs.Options.Rename
            options = self._gateway.new_array(rename, 1)
            options[0] = rename.OVERWRITE
            self._call(src, lambda: self._context.rename(self._path(src), self._path(dst), options))
            return
        if self._call(src, lambda: self._fs.rename(self._path(src), self._path(dst))):
            return
        if self._status(src) is None:
            raise FileNotFoundError(self.uri(src))
        if self._status(dst) is not None:
            raise FileExistsError(self.uri(dst))
        raise HadoopError(f"{self.uri(src)}: Hadoop did not rename it to {self.uri(dst)}")

    def delete(self, path: Path, *, recursive: bool = False) -> bool:
        return bool(self._call(path, lambda: self._fs.delete(self._path(path), recursive)))

    def mkdirs(self, folder: Path) -> None:
        if not self._call(folder, lambda: self._fs.mkdirs(self._path(folder))):
            raise HadoopError(f"{self.uri(folder)}: Hadoop did not create the folder")

    # Sources at Hadoop URLs (flowlens.ingest.spark_sources) -----------------------------------

    def read_prefix(self, path: Path, size: int | None) -> bytes:
        """The first ``size`` bytes of a file (all of it when it is shorter, or ``size`` is None)."""
        stream = self._call(path, lambda: self._fs.open(self._path(path)))
        try:
            read = stream.readAllBytes if size is None else lambda: stream.readNBytes(size)
            return bytes(self._call(path, read))
        finally:
            stream.close()

    def qualified(self, path: Path) -> str:
        """The URL Spark's file sources name ``path`` by (scheme and authority made explicit)."""
        return str(self._call(path, lambda: self._fs.makeQualified(self._path(path)).toString()))

    def matches(self, pattern: Path) -> list[Path] | None:
        """The paths Hadoop's glob ``pattern`` matches, sorted (None: a plain path that does not exist)."""
        found = self._call(pattern, lambda: self._fs.globStatus(self._path(pattern)))
        return sorted(self._local(s) for s in found) if found is not None else None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    java = [line for line in lines if "Exception:" in line]
    return (java or lines or [type(exc).__name__])[0].lstrip(": ")


def open_hadoop(store: Store, spark: Any) -> Store:
    """``store`` with :class:`HadoopFiles` on the session ``spark`` when it is at a Hadoop URL no
    engine has opened yet; any other store as it is."""
    if isinstance(store.files, UnopenedFiles):
        return dataclasses.replace(store, files=HadoopFiles(spark, store.files.base))
    return store
