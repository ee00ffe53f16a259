"""The file operations of a store, on the local file system or behind a Hadoop URL.

Owns :class:`StoreFiles`, the one small interface through which the store's code reads (and a
writer commits) its files, and its local implementation :class:`LocalFiles`. Paths stay
:class:`~pathlib.Path` objects everywhere: for a store at a URL (``hdfs://nn/data/store``) they
are the URL's path part (``/data/store/manifest.json``), and the store's :class:`StoreFiles` knows
the rest of the URL (:meth:`StoreFiles.uri`).

* :class:`LocalFiles`: the folders of this machine (or a mount), as flowlens has always read them.

The write operations (:meth:`StoreFiles.write_bytes`, :meth:`~StoreFiles.upload`,
:meth:`~StoreFiles.download`, :meth:`~StoreFiles.create_exclusive`, :meth:`~StoreFiles.rename`, :meth:`~StoreFiles.delete`,
:meth:`~StoreFiles.mkdirs`) are those a commit at a URL needs (:mod:`flowlens.store.hadoop_commit`).
The local commit (:mod:`flowlens.store.commit`) keeps its own ``fsync``-ed writes and ``flock``.
* :class:`UnopenedFiles`: a store at a URL of another scheme before an engine that can reach it
  opened it: every operation refuses with one line that says to use ``--engine spark`` or mount
  it. The DuckDB engine reads local paths only; the Spark engine replaces it with Hadoop's
  ``FileSystem`` (:mod:`flowlens.store.hadoop`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from flowlens.errors import UsageError
from flowlens.store.lock import reader_lease


class StoreFiles:
    """What a store does with its files. Missing files raise :class:`FileNotFoundError` (as
    :mod:`pathlib` does), so that the store's code reads the same over every implementation."""

    #: Whether the files are behind a URL (no ``flock``, no local path to hand DuckDB).
    remote = False

    def uri(self, path: Path) -> str:
        """``path`` as the URL Spark and Hadoop read it at."""
        raise NotImplementedError

    def is_file(self, path: Path) -> bool:
        raise NotImplementedError

    def is_dir(self, path: Path) -> bool:
        raise NotImplementedError

    def exists(self, path: Path) -> bool:
        return self.is_file(path) or self.is_dir(path)

    def size(self, path: Path) -> int:
        """The size of a file in bytes (:class:`FileNotFoundError` when there is none)."""
        raise NotImplementedError

    def read_bytes(self, path: Path) -> bytes:
        raise NotImplementedError

    def read_text(self, path: Path) -> str:
        return self.read_bytes(path).decode("utf-8")

    def children(self, folder: Path) -> list[Path]:
        """The entries of ``folder``, sorted (:class:`FileNotFoundError` when it is missing)."""
        raise NotImplementedError

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        """The paths under ``folder`` that match ``pattern`` (``date=*/*.parquet``), sorted."""
        raise NotImplementedError

    def total_size(self, folder: Path) -> int:
        """The bytes of every file under ``folder``."""
        raise NotImplementedError

    def lease(self, readers_path: Path) -> contextlib.AbstractContextManager[bool]:
        """A reader's lease on the store's files (:func:`flowlens.store.lock.reader_lease`);
        yields whether it is held."""
        raise NotImplementedError

    def modified(self, path: Path) -> float:
        """When a file was last written (seconds since the epoch; :class:`FileNotFoundError`)."""
        raise NotImplementedError

    # Writing (a commit at a URL: flowlens.store.hadoop_commit) -----------------------------

    def write_bytes(self, path: Path, data: bytes) -> None:
        """Create or replace the file ``path`` with ``data`` (not atomically: for files no reader
        reads until a commit names them)."""
        raise NotImplementedError

    def upload(self, local: Path, path: Path) -> None:
        """Copy the local file ``local`` to ``path`` (created or replaced, not atomically)."""
        raise NotImplementedError

    def download(self, path: Path, local: Path) -> None:
        """Copy the file ``path`` to the local file ``local`` (created or replaced)."""
        raise NotImplementedError

    def create_exclusive(self, path: Path, data: bytes) -> bool:
        """Create ``path`` holding ``data`` only if nothing is there; whether it was created."""
        raise NotImplementedError

    def rename(self, src: Path, dst: Path, *, overwrite: bool = False) -> None:
        """Rename the file ``src`` to ``dst``; ``overwrite``: replace a file at ``dst`` in the same
        step (:class:`FileExistsError` without it when ``dst`` exists)."""
        raise NotImplementedError

    def delete(self, path: Path, *, recursive: bool = False) -> bool:
        """Delete a file (or a folder and everything under it: ``recursive``); whether it was there."""
        raise NotImplementedError

    def mkdirs(self, folder: Path) -> None:
        """Create ``folder`` and its parents (nothing when it exists)."""
        raise NotImplementedError


class LocalFiles(StoreFiles):
    """The local file system (or a mounted one)."""

    def uri(self, path: Path) -> str:
        # Hadoop paths are not percent-encoded: ``date=2026-11-24`` stays as it is.
        return f"file://{path.resolve()}"

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def exists(self, path: Path) -> bool:
        return path.exists()

    def size(self, path: Path) -> int:
        return path.stat().st_size

    def read_bytes(self, path: Path) -> bytes:
        return path.read_bytes()

    def read_text(self, path: Path) -> str:
        return path.read_text(encoding="utf-8")

    def children(self, folder: Path) -> list[Path]:
        return sorted(folder.iterdir())

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        return sorted(folder.glob(pattern)) if folder.is_dir() else []

    def total_size(self, folder: Path) -> int:
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    def lease(self, readers_path: Path) -> contextlib.AbstractContextManager[bool]:
        return reader_lease(readers_path)

    def modified(self, path: Path) -> float:
        return path.stat().st_mtime

    def write_bytes(self, path: Path, data: bytes) -> None:
        path.write_bytes(data)

    def upload(self, local: Path, path: Path) -> None:
        shutil.copyfile(local, path)

    def download(self, path: Path, local: Path) -> None:
        shutil.copyfile(path, local)

    def create_exclusive(self, path: Path, data: bytes) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True

    def rename(self, src: Path, dst: Path, *, overwrite: bool = False) -> None:
        if not overwrite and dst.exists():
            raise FileExistsError(str(dst))
        os.replace(src, dst)

    def delete(self, path: Path, *, recursive: bool = False) -> bool:
        if recursive and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            return True
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def mkdirs(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalFiles)

    def __hash__(self) -> int:
        return hash(LocalFiles)


LOCAL = LocalFiles()


class UnopenedFiles(StoreFiles):
    """A store at ``base`` (``scheme://authority``) that no engine has opened: every operation
    refuses (:class:`UsageError`) with what to do."""

    remote = True

    def __init__(self, base: str, what: str = "the store") -> None:
        self.base = base
        self.what = what

    def _refuse(self, path: Path | None = None) -> UsageError:
        url = self.base + (path.as_posix() if path is not None else "")
        scheme = self.base.split(":", 1)[0]
        return UsageError(
            f"{self.what} {url!r}: {scheme}:// is read and written by the Spark engine only "
            "(Hadoop's file systems): add --engine spark, or mount it and give the mounted folder"
        )

    def uri(self, path: Path) -> str:
        return self.base + path.as_posix()

    def is_file(self, path: Path) -> bool:
        raise self._refuse(path)

    def is_dir(self, path: Path) -> bool:
        raise self._refuse(path)

    def size(self, path: Path) -> int:
        raise self._refuse(path)

    def read_bytes(self, path: Path) -> bytes:
        raise self._refuse(path)

    def children(self, folder: Path) -> list[Path]:
        raise self._refuse(folder)

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        raise self._refuse(folder)

    def total_size(self, folder: Path) -> int:
        raise self._refuse(folder)

    def lease(self, readers_path: Path) -> contextlib.AbstractContextManager[bool]:
        raise self._refuse(readers_path)

    def modified(self, path: Path) -> float:
        raise self._refuse(path)

    def write_bytes(self, path: Path, data: bytes) -> None:
        raise self._refuse(path)

    def upload(self, local: Path, path: Path) -> None:
        raise self._refuse(path)

    def download(self, path: Path, local: Path) -> None:
        raise self._refuse(path)

    def create_exclusive(self, path: Path, data: bytes) -> bool:
        raise self._refuse(path)

    def rename(self, src: Path, dst: Path, *, overwrite: bool = False) -> None:
        raise self._refuse(dst)

    def delete(self, path: Path, *, recursive: bool = False) -> bool:
        raise self._refuse(path)

    def mkdirs(self, folder: Path) -> None:
        raise self._refuse(folder)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnopenedFiles) and other.base == self.base

    def __hash__(self) -> int:
        return hash((UnopenedFiles, self.base))


@contextlib.contextmanager
def no_lease() -> Iterator[bool]:
    """The lease of a store whose file system has no shared locks: none (yields False)."""
    yield False
