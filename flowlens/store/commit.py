"""Atomic commits: the one way anything is written into a store.

A commit is made visible in these steps (:data:`COMMIT_STEPS`):

1. ``staged``: its data files are written under ``.staging/<commit>/``, and beside them its new
   manifest (listing each new file with its rows, size and XXH3-64) and its journal entry
   (:mod:`flowlens.store.journal`);
2. ``decided``: a ``commit.json`` naming every move is written atomically (write, fsync, rename);
3. ``moved``: the data files, then the journal entry, are moved into the store (``os.replace``),
   their folders fsynced;
4. ``published``: the staged manifest replaces ``manifest.json`` with one rename: from here on
   readers see the new files (they read the files a manifest names, never a folder);
5. ``removed``: files the commit replaced or removed (compaction, pruning) are deleted once no
   reader holds a lease (:mod:`flowlens.store.lock`), else left to a later writer; journal
   entries older than a new checkpoint are deleted;
6. ``done``: the staging folder is removed.

Whoever opens the store for writing next finishes a commit whose ``commit.json`` exists (every
step is idempotent) and throws away one without it. A SIGKILL at any moment therefore leaves
either the old or the new state, never a duplicate or a loss, and a reader sees one or the other.
:data:`FAULT_HOOK` is called at each step so that a test harness can stop a real process there.

Every writer goes through :func:`open_writer` (the lock of :mod:`flowlens.store.lock`, then
:func:`recover`, then the quick integrity check of :mod:`flowlens.store.integrity`, which stops
a writer on a damaged store) and a :class:`StoreWriter` (``stage``, ``commit``, ``abort``): file
ingest (:mod:`flowlens.ingest`), the summaries' backfill (:mod:`flowlens.store.summaries`), the
live collectors, compaction, pruning and repair; so all of them share one lock, one recovery and
one kind of commit.

A full disk or an I/O error while writing becomes one :class:`flowlens.errors.StoreWriteError`
that says whether anything was committed; the staged files are removed by the caller's
``abort`` and no temporary file stays behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError, StoreWriteError, UsageError
from flowlens.store.facts import FileFacts, file_facts
from flowlens.store.files import LOCAL, StoreFiles
from flowlens.store.integrity import require_intact
from flowlens.store.journal import CHECKPOINT_EVERY, entry_name, list_entries, make_entry
from flowlens.store.layout import Snapshot, Store, summarised_flows
from flowlens.store.lock import readers_gone, writer_lock
from flowlens.store.manifest import (
    KINDS,
    MANIFEST_VERSION,
    FileEntry,
    Span,
    empty_manifest,
    is_legacy,
    utc_now_text,
)

#: The steps of a commit, in order, as :data:`FAULT_HOOK` is told of them (``moved`` once after
#: each file moved in).
COMMIT_STEPS = ("staged", "decided", "moved", "published", "removed", "done")

#: Test-only: a function called with the name of each step of a commit as it is reached (a test
#: harness sets it to stop the process there). The library never sets it.
FAULT_HOOK: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(name)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix.
    On failure (a full disk) the old content stays and no temporary file is left."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def new_ingest_id(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full, as the OS or pyarrow says it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def write_failure(exc: OSError, store: Store, *, decided: bool) -> StoreWriteError:
    """The one error a failed write of ``store`` becomes (``decided``: after the commit's decision)."""
    what = "no space left on device" if is_disk_full(exc) else f"an I/O error ({exc})"
    if decided:
        return StoreWriteError(
            f"writing the store {store.root} stopped with {what} after the commit was decided; the store "
            "reads as before it until the next writer finishes that commit: free space and run again"
        )
    return StoreWriteError(
        f"writing the store {store.root} stopped with {what}: nothing of this run was committed and "
        "the store is as it was; free space and run the command again"
    )


# --- recovery -------------------------------------------------------------------------------


def recover(store: Store) -> list[str]:
    """Finish commits that were decided, discard the others. Call with the lock held."""
    done: list[str] = []
    for leftover in store.root.glob(".manifest.json.*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()
    if not store.staging_dir.is_dir():
        return done
    return done + finish_or_discard(
        store,
        sorted(store.staging_dir.iterdir()),
        _read_plan,
        lambda stage, plan: apply_commit(store, stage, plan),
        lambda stage: shutil.rmtree(stage, ignore_errors=True),
    )


def finish_or_discard(
    store: Store,
    stages: Iterable[Path],
    read_plan: Callable[[Path], dict[str, Any] | None],
    apply: Callable[[Path, dict[str, Any]], None],
    remove: Callable[[Path], object],
) -> list[str]:
    """The recovery rule, whatever holds the files: a staged commit whose plan (``commit.json``)
    exists was decided and is finished (``apply``), unless the manifest shows it applied already;
    one without a plan is thrown away (``remove``). What was done, a line per commit."""
    done: list[str] = []
    generation = _current_generation(store)
    for stage in stages:
        plan = read_plan(stage)
        if plan is not None and "generation" in plan and int(plan["generation"]) <= generation:
            remove(stage)  # applied already; only its folder was left
            continue
        if plan is not None:
            apply(stage, plan)
            done.append(f"finished interrupted commit {stage.name}")
            generation = _current_generation(store)
            continue
        remove(stage)
        done.append(f"discarded unfinished commit {stage.name}")
    return done


def _current_generation(store: Store) -> int:
    try:
        manifest = store.read_manifest()
    except StoreError:
        return -1
    return int(manifest.get("generation", 0)) if not is_legacy(manifest) else 0


def _read_plan(stage: Path, files: StoreFiles = LOCAL) -> dict[str, Any] | None:
    commit = stage / "commit.json"
    if not files.is_file(commit):
        return None
    try:
        plan = json.loads(files.read_text(commit))
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and isinstance(plan.get("moves"), list) else None


def inside(store: Store, rel: str) -> Path:
    """``rel`` under the store's root, refusing a path that leaves it (plans are untrusted input)."""
    path = store.root / rel
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        raise StoreError(f"a commit in {store.staging_dir} names a path outside the store: {rel!r}")
    return path


def apply_commit(store: Store, stage: Path, plan: dict[str, Any]) -> None:
    """Apply a decided commit (idempotent): move its files in, publish its manifest, then remove
    what it replaced and its staging folder."""
    if "manifest" in plan:  # a commit decided by a flowlens before the journal: moves, then the manifest
        for src_rel, dst_rel in plan["moves"]:
            src, dst = stage / src_rel, inside(store, dst_rel)
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        write_atomic(store.manifest_path, json.dumps(plan["manifest"], indent=1, sort_keys=True).encode())
        shutil.rmtree(stage, ignore_errors=True)
        return
    moved_into: set[Path] = set()
    for src_rel, dst_rel in plan["moves"]:
        src, dst = stage / src_rel, inside(store, dst_rel)
        if dst_rel == "manifest.json":
            for folder in sorted(moved_into):  # each folder once, before the manifest names the files
                _fsync_dir(folder)
            if src.exists():
                os.replace(src, dst)
                _fsync_dir(store.root)
            _step("published")
            continue
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            moved_into.add(dst.parent)
        _step("moved")
    for rel, lost_rel in plan.get("set_aside", []):
        src, dst = inside(store, rel), inside(store, lost_rel)
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    remove_retired(store, plan.get("remove", []))
    for name in plan.get("journal_drop", []):
        with contextlib.suppress(FileNotFoundError):
            inside(store, f"journal/{name}").unlink()
    _step("removed")
    shutil.rmtree(stage, ignore_errors=True)
    _step("done")


def remove_retired(store: Store, rels: Sequence[str]) -> bool:
    """Delete the files ``rels`` (and partition folders left empty) when no reader holds a lease;
    whether they were deleted."""
    existing = [rel for rel in rels if inside(store, rel).exists()]
    if not existing:
        return True
    with readers_gone(store.readers_path) as free:
        if not free:
            return False
        for rel in existing:
            path = inside(store, rel)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty
    return True


# --- the writer -----------------------------------------------------------------------------


class StoreWriter:
    """Stages data files and commits them, with a new manifest and its journal entry, atomically."""

    def __init__(self, store: Store, recovered: list[str] | None = None, *, tolerant: bool = False) -> None:
        self.store = store
        try:
            self.manifest = store.read_manifest()
        except StoreError:
            if not tolerant:
                raise
            self.manifest = empty_manifest()  # repair: it rebuilds the manifest
        if store.unmanaged():  # files of another tool: listed like those of a version 1 store
            self.manifest = {"version": 1, "sources": [], "ingests": []}
        self.recovered = recovered or []
        entries = list_entries(store.journal_dir, store.files)
        self._journal_newest = entries[-1].generation if entries else None
        self._checkpointed = any(e.full for e in entries)

    @property
    def generation(self) -> int:
        return int(self.manifest.get("generation", 0)) if not is_legacy(self.manifest) else 0

    def stage(self, commit_id: str) -> Path:
        path = self.store.staging_dir / commit_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except OSError as exc:
            if isinstance(exc, FileExistsError):
                raise
            raise write_failure(exc, self.store, decided=False) from None
        return path

    def commit(
        self,
        stage: Path,
        manifest: Mapping[str, Any],
        *,
        kind: str = "ingest",
        spans: Sequence[Span] = (),
        file_spans: Mapping[str, Sequence[Span] | None] | None = None,
        remove: Sequence[str] = (),
        adopt: Mapping[str, FileEntry] | None = None,
        set_aside: Sequence[tuple[str, str]] = (),
        full_journal: bool = False,
        now: dt.datetime | None = None,
    ) -> list[str]:
        """Move every file staged under ``stage`` into the store, with ``manifest`` (its lineages,
        ingests and any key of the caller's; the file list is the writer's), atomically.

        ``spans``: the source content the staged flows and quarantine files hold
        (``file_spans`` per file overrides it); ``remove``: committed files this commit replaces or
        removes; ``adopt``: entries of files already in the store to list (repair); ``set_aside``:
        ``(file, lost+found path)`` moves made once the manifest no longer lists the files
        (repair); the files are dropped from the list and moved, not deleted; ``full_journal``:
        write the journal entry as a checkpoint. Returns the store-relative paths of the new files."""
        if is_legacy(self.manifest):
            raise StoreError("internal: a store of manifest version 1 is listed before it is written")
        old = self.manifest
        commit_id = stage.name
        try:
            added: dict[str, FileEntry] = {}
            for path in sorted(stage.rglob("*.parquet")):
                rel = path.relative_to(stage).as_posix()
                top = rel.split("/", 1)[0]
                if top not in KINDS.values():
                    continue
                chosen = file_spans[rel] if file_spans is not None and rel in file_spans else spans
                added[rel] = _entry(rel, file_facts(path), commit_id, chosen)
            added.update(adopt or {})
            aside = {rel for rel, _ in set_aside}
            removed = sorted((set(remove) | aside) - set(added))
            files = {rel: data for rel, data in old.get("files", {}).items() if rel not in set(removed)}
            files.update({rel: entry.as_json() for rel, entry in added.items()})
            # A summary goes with its flows file.
            orphans = sorted(rel for rel, data in files.items() if data.get("of") and data["of"] not in files)
            for rel in orphans:
                files.pop(rel)
            removed = sorted({*removed, *orphans})
            exists = self.store.files.exists
            retired = [
                r for r in old.get("retired", []) if r not in files and exists(self.store.root / r)
            ] + [
                r
                for r in removed
                if r not in old.get("retired", []) and r not in aside and exists(self.store.root / r)
            ]
            generation = self.generation + 1
            new = {
                **manifest,
                "version": MANIFEST_VERSION,
                "generation": generation,
                "files": dict(sorted(files.items())),
                "retired": sorted(set(retired)),
            }
            new.setdefault("sources", [])
            new.setdefault("ingests", [])
            full = (
                full_journal
                or generation % CHECKPOINT_EVERY == 0
                or not self._checkpointed
                or self._journal_newest != self.generation
            )
            journal = entry_name(generation, commit_id, full)
            entry = make_entry(
                old,
                new,
                commit=commit_id,
                kind=kind,
                time=utc_now_text(now),
                added={rel: e.as_json() for rel, e in added.items() if (stage / rel).exists()},
                removed=removed,
                full=full,
            )
            meta = stage / ".commit"
            meta.mkdir(exist_ok=True)
            _write_synced(meta / journal, json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())
            _write_synced(
                meta / "manifest.json", json.dumps(new, sort_keys=True, separators=(",", ":")).encode()
            )
            moves = [[rel, rel] for rel in sorted(added) if (stage / rel).exists()]
            plan = {
                "generation": generation,
                "moves": [
                    *moves,
                    [f".commit/{journal}", f"journal/{journal}"],
                    [".commit/manifest.json", "manifest.json"],
                ],
                "remove": new["retired"],
                "set_aside": [list(pair) for pair in set_aside],
                "journal_drop": [
                    e.path.name
                    for e in list_entries(self.store.journal_dir, self.store.files)
                    if full and e.generation < generation
                ],
            }
            _step("staged")
            self._decide(stage, plan)
        except OSError as exc:
            raise write_failure(exc, self.store, decided=False) from None
        _step("decided")
        try:
            self._apply(stage, plan)
        except OSError as exc:
            raise write_failure(exc, self.store, decided=True) from None
        # A copy: the caller goes on changing its manifest (a run's next lineages), and the next
        # commit's journal entry is the difference from this one.
        self.manifest = json.loads(json.dumps(new))
        self._journal_newest = generation
        self._checkpointed = self._checkpointed or full
        return [dst for _, dst in moves]

    def stored_flows(self, days: set[str]) -> list[Path]:
        """Local paths of the committed flows files that rows of ``days`` (``YYYY-MM-DD``) are
        checked against, record by record (:mod:`flowlens.ingest.dedupe`): all of them, for the
        caller to pick the days' own."""
        return self.store.flow_files()

    @contextlib.contextmanager
    def readable(self, paths: Sequence[Path]) -> Iterator[dict[Path, Path]]:
        """Each committed file of ``paths`` -> a path this process can read it at, for the block
        (compaction reads the files it rewrites through it): the file itself in a local store."""
        yield {path: path for path in paths}

    def _decide(self, stage: Path, plan: dict[str, Any]) -> None:
        """Decide the commit staged at ``stage``: its ``commit.json``, written atomically."""
        write_atomic(stage / "commit.json", json.dumps(plan, sort_keys=True).encode())

    def _apply(self, stage: Path, plan: dict[str, Any]) -> None:
        """Apply the decided commit (:func:`apply_commit`)."""
        apply_commit(self.store, stage, plan)

    def abort(self, stage: Path) -> None:
        """Throw away a commit that was not decided; a decided one is left for recovery to finish."""
        if not (stage / "commit.json").is_file():
            shutil.rmtree(stage, ignore_errors=True)

    def list_legacy_files(self) -> None:
        """List the files of a store whose manifest does not (version 1), in a commit of its own."""
        if not is_legacy(self.manifest):
            return
        legacy = Snapshot.of(self.store, self.manifest)
        adopt: dict[str, FileEntry] = {}
        for rel, entry in legacy.entries.items():
            try:
                found = file_facts(self.store.root / rel)
            except (OSError, ValueError) as exc:
                raise StoreError(
                    f"{self.store.root / rel} is not readable Parquet ({exc}); move it out of the store "
                    "and run again"
                ) from None
            adopt[rel] = FileEntry(
                rel,
                entry.kind,
                found.rows,
                found.bytes,
                found.xxh3_64,
                rel.rsplit("/", 1)[-1].split(".")[0],
                spans=None if entry.kind != "summary" else (),
                of=entry.of,
                columns=found.columns,
            )
        self.manifest = {
            **self.manifest,
            "version": MANIFEST_VERSION,
            "generation": 0,
            "files": {},
            "retired": [],
        }
        stage = self.stage(f"list-{new_ingest_id(dt.datetime.now(dt.UTC))}")
        try:
            self.commit(stage, self.manifest, kind="upgrade", adopt=adopt)
        except BaseException:
            self.abort(stage)
            raise
        self.recovered.append(f"listed the {len(adopt)} data file(s) the manifest did not list yet")

    def remove_waiting(self) -> None:
        """Delete retired files that waited for readers, when none holds a lease now."""
        remove_retired(self.store, self.manifest.get("retired", []) if not is_legacy(self.manifest) else [])


def _entry(rel: str, found: FileFacts, commit_id: str, spans: Sequence[Span] | None) -> FileEntry:
    kind = next(k for k, folder in KINDS.items() if rel.split("/", 1)[0] == folder)
    return FileEntry(
        path=rel,
        kind=kind,
        rows=found.rows,
        bytes=found.bytes,
        xxh3_64=found.xxh3_64,
        commit=commit_id,
        spans=() if kind == "summary" else (None if spans is None else tuple(spans)),
        of=summarised_flows(rel) if kind == "summary" else None,
        columns=found.columns,
    )


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def open_writer(store: Store, *, check: bool = True, wait: float = 0.0) -> Iterator[StoreWriter]:
    """Hold the store's lock (waiting up to ``wait`` seconds for another writer to release it),
    finish or discard interrupted commits, check the store (``check``:
    :class:`flowlens.errors.StoreDamagedError` when it is damaged; only repair opens a damaged
    store) and yield a writer. A store at a Hadoop URL is refused (:class:`UsageError`): Spark
    ingest, ``compact`` and ``prune`` write one through
    :func:`flowlens.store.hadoop_commit.open_url_writer`."""
    if store.files.remote:
        raise UsageError(
            f"the store {store.location!r}: a store at a Hadoop URL is written by `flowlens ingest`, "
            "`compact` and `prune` with --engine spark only; this writes local (or mounted) stores: "
            "mount it and give the mounted folder (see docs/spark.md, 'Writing a store at a URL')"
        )
    try:
        store.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {store.root} ({exc.strerror})") from None
    with writer_lock(store.lock_path, store.root, wait):
        try:
            recovered = recover(store)
        except OSError as exc:
            raise write_failure(exc, store, decided=True) from None
        if check:
            require_intact(store)
        writer = StoreWriter(store, recovered, tolerant=not check)
        if check:
            writer.list_legacy_files()
            writer.remove_waiting()
        yield writer
