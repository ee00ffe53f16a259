"""Atomic commits: the one way anything is written into a store.

A commit is made visible in three steps: its files are written under ``.staging/<commit>/``,
then a ``commit.json`` naming every move and the new manifest is written atomically, then the
moves and the manifest are applied. Whoever opens the store for writing next finishes a commit
whose ``commit.json`` exists (every step is idempotent) and throws away one without it. A
SIGKILL at any moment therefore leaves either the old or the new state, never a duplicate or a
loss.

Every writer goes through :func:`open_writer` (the lock of :mod:`flowlens.store.lock`, then
:func:`recover`) and a :class:`StoreWriter` (``stage``, ``commit``, ``abort``): file ingest
(:mod:`flowlens.ingest`) and the summaries' backfill (:mod:`flowlens.store.summaries`) today;
the live collectors, compaction and pruning next, so that all of them share one lock, one
recovery and one kind of commit. A commit journal, when it replaces ``commit.json``, lives here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flowlens.store.layout import Store
from flowlens.store.lock import writer_lock


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def new_ingest_id(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def recover(store: Store) -> list[str]:
    """Finish commits that were decided, discard the others. Call with the lock held."""
    done: list[str] = []
    if not store.staging_dir.is_dir():
        return done
    for stage in sorted(store.staging_dir.iterdir()):
        commit = stage / "commit.json"
        if commit.is_file():
            try:
                plan = json.loads(commit.read_text(encoding="utf-8"))
            except ValueError:
                plan = None
            if plan is not None:
                apply_commit(store, stage, plan)
                done.append(f"finished interrupted commit {stage.name}")
                continue
        shutil.rmtree(stage, ignore_errors=True)
        done.append(f"discarded unfinished ingest {stage.name}")
    return done


def apply_commit(store: Store, stage: Path, plan: dict[str, Any]) -> None:
    """Apply a decided commit: move its files in, then replace the manifest (idempotent)."""
    moved_into: set[Path] = set()
    for src_rel, dst_rel in plan["moves"]:
        src, dst = stage / src_rel, store.root / dst_rel
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved_into.add(dst.parent)
    for folder in sorted(moved_into):  # each folder once, before the manifest names the files
        _fsync_dir(folder)
    write_atomic(store.manifest_path, json.dumps(plan["manifest"], indent=1, sort_keys=True).encode())
    shutil.rmtree(stage, ignore_errors=True)


class StoreWriter:
    """Stages Parquet files and commits them, together with a new manifest, atomically."""

    def __init__(self, store: Store, recovered: list[str] | None = None) -> None:
        self.store = store
        self.manifest = store.read_manifest()
        self.recovered = recovered or []

    def stage(self, commit_id: str) -> Path:
        path = self.store.staging_dir / commit_id
        path.mkdir(parents=True, exist_ok=False)
        return path

    def commit(self, stage: Path, manifest: dict[str, Any]) -> list[str]:
        """Move every file staged under ``stage`` into the store and replace the manifest.

        Returns the store-relative paths of the new files."""
        moves: list[tuple[str, str]] = []
        for path in sorted(stage.rglob("*.parquet")):
            rel = path.relative_to(stage).as_posix()
            moves.append((rel, rel))
        plan = {"moves": moves, "manifest": manifest}
        write_atomic(stage / "commit.json", json.dumps(plan, sort_keys=True).encode())
        apply_commit(self.store, stage, plan)
        self.manifest = manifest
        return [dst for _, dst in moves]

    def abort(self, stage: Path) -> None:
        """Throw away a commit that was not decided; a decided one is left for recovery to finish."""
        if not (stage / "commit.json").is_file():
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def open_writer(store: Store, *, wait: float = 0.0) -> Iterator[StoreWriter]:
    """Hold the store's lock (waiting up to ``wait`` seconds for another writer to release it),
    finish or discard interrupted commits, and yield a writer."""
    store.root.mkdir(parents=True, exist_ok=True)
    with writer_lock(store.lock_path, store.root, wait):
        yield StoreWriter(store, recover(store))
