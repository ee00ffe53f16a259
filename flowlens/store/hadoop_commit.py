"""Commits into a store at a URL (``hdfs://``, ``viewfs://``, ...): ``flowlens ingest --engine spark``.

The same commit as a local store's (:mod:`flowlens.store.commit`): the same plan, manifest,
journal entry and file names, built by the same :class:`~flowlens.store.commit.StoreWriter`
code, and the same recovery rule (a commit whose ``commit.json`` exists is finished, one without
it is thrown away). What differs is how the steps reach the files, through the store's
:class:`~flowlens.store.files.StoreFiles` (Hadoop's ``FileSystem``):

1. the lock is an exclusively created ``.lock`` with an owner and an expiry
   (:mod:`flowlens.store.url_lock`), not a ``flock``;
2. the commit is staged in a local folder of the driver (the tasks' files reach it: see
   :mod:`flowlens.ingest.spark_upload`), where the writer computes the files' facts, the
   manifest and the journal entry as for a local store;
3. the files the plan moves are uploaded under ``<store>/.staging/<commit>/``; then the writer
   checks that its lock still holds and creates ``commit.json`` there *exclusively*: the decision;
4. the data files, then the journal entry, are renamed into place; ``manifest.json`` is replaced
   last by one rename that overwrites (``FileContext.rename`` with ``OVERWRITE``, atomic on HDFS):
   the commit point;
5. journal entries older than a new checkpoint are deleted, then the staging folder.

Compaction and pruning (:mod:`flowlens.store.compact`, :mod:`flowlens.store.lifecycle`) run here
with the same plans and the same :class:`~flowlens.store.commit.StoreWriter` code: a
:class:`UrlWriter` hands compaction local copies of the files it rewrites
(:meth:`UrlWriter.readable`) and uploads the new ones. No reader holds a lease on a file system
behind a URL, so the files such a commit removes are not deleted by it: they stay on disk, listed
as retired, with the time they were retired (the manifest's :data:`RETIRED_SINCE`), and the first
writer that opens the store :data:`RETIRED_GRACE` seconds later deletes them
(:meth:`UrlWriter.remove_waiting`): a query that started on the old manifest reads them meanwhile.

Why beside, not inside, :func:`flowlens.store.commit.apply_commit`: the local commit's promise
rests on ``fsync`` of files and folders, ``os.replace`` and ``flock``-ed reader leases, which
Hadoop's file systems do not have; keeping it as it is keeps the local store's behaviour exactly
as its tests pin it down, and this module shares everything before the decision with it.

Which file systems are written: those whose rename is atomic (:data:`ATOMIC_RENAME_SCHEMES`);
another scheme (``s3a://``, ``gs://``, ``abfss://``, ...) only when the user declares its rename
atomic (:data:`ATOMIC_RENAME_OPTION`), as for ABFS with a hierarchical namespace. Object stores
where a rename is a copy and a delete are refused: see docs/spark.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError, UsageError
from flowlens.store.commit import StoreWriter, _read_plan, _step, finish_or_discard, inside, write_failure
from flowlens.store.compact import maintain
from flowlens.store.files import StoreFiles
from flowlens.store.hadoop import open_hadoop
from flowlens.store.integrity import require_intact
from flowlens.store.layout import Snapshot, Store
from flowlens.store.lifecycle import Lifecycle
from flowlens.store.manifest import is_legacy, utc_now_text
from flowlens.store.scratch import scratch_folder
from flowlens.store.url_lock import UrlLock, url_writer_lock

#: URL schemes whose Hadoop file system renames a file in one step (HDFS, its HTTP clients, a
#: ViewFs mount table, the local file system): flowlens writes stores there.
ATOMIC_RENAME_SCHEMES = frozenset({"hdfs", "viewfs", "webhdfs", "swebhdfs", "file"})

#: The Spark setting that declares the store's file system renames atomically (``true``), for a
#: scheme not in :data:`ATOMIC_RENAME_SCHEMES` (ABFS with a hierarchical namespace).
ATOMIC_RENAME_OPTION = "spark.flowlens.store.atomicRename"


def check_writable(store: Store, declared: bool) -> None:
    """:class:`UsageError` unless flowlens may commit into ``store`` (its scheme renames
    atomically, or the user ``declared`` it does)."""
    scheme = store.location.split(":", 1)[0].lower()
    if scheme in ATOMIC_RENAME_SCHEMES or declared:
        return
    raise UsageError(
        f"the store {store.location!r}: flowlens writes a store only where a file is renamed in one "
        f"step (HDFS, viewfs://, webhdfs://); on {scheme}:// a rename may be a copy and a delete, "
        "which a reader can see half done. If this file system renames atomically (ABFS with a "
        f"hierarchical namespace), say so with --spark-conf {ATOMIC_RENAME_OPTION}=true; otherwise "
        "ingest into HDFS or a local store and copy it there (docs/spark.md, 'Writing a store at a URL')"
    )


def open_for_writing(store: Store, spark: Any) -> Store:
    """``store`` opened on the session ``spark`` for a commit when it is at a URL (through Hadoop:
    :func:`flowlens.store.hadoop.open_hadoop`, its scheme checked by :func:`check_writable`);
    any other store as it is."""
    if not store.files.remote:
        return store
    check_writable(store, str(spark.conf.get(ATOMIC_RENAME_OPTION, "false")).lower() == "true")
    return open_hadoop(store, spark)


#: Seconds a file that a commit at a URL retired (compaction, pruning) stays on disk before a
#: writer deletes it: readers of a store at a URL hold no lease, so a query that read the manifest
#: before the commit reads the old files for up to this long.
RETIRED_GRACE = 3600.0

#: The manifest key of a store at a URL that says when each retired file was retired
#: (``{path: "2026-12-07T20:00:00+00:00"}``); a local writer carries it along unread.
RETIRED_SINCE = "retired_since"

#: File operations a commit runs at once: each is a round trip to the file system (to HDFS'
#: NameNode), so a commit of many small files waits on latency, not bandwidth.
PARALLEL = 8


def _each(action: Callable[[Path], object], items: Iterable[Path]) -> None:
    """``action`` on every item, :data:`PARALLEL` at a time; the first failure raised."""
    chosen = list(items)
    if len(chosen) <= 1:
        for item in chosen:
            action(item)
        return
    with ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="flowlens-commit") as pool:
        for future in [pool.submit(action, item) for item in chosen]:
            future.result()


def _move(files: StoreFiles, src: Path, dst: Path) -> None:
    try:
        files.rename(src, dst)
    except FileNotFoundError:
        return  # (moved by an earlier attempt)
    except FileExistsError:
        files.rename(src, dst, overwrite=True)


def apply_url_commit(store: Store, stage: Path, plan: dict[str, Any]) -> None:
    """Apply a decided commit staged at ``stage`` (under the store's ``.staging``; idempotent)."""
    files = store.files
    if "manifest" in plan:
        raise StoreError(
            f"{store.location}: a commit decided by an older flowlens waits in {stage.name}; mount the "
            "store and run a flowlens writer there (`flowlens compact`), which finishes it"
        )
    moves = {inside(store, dst_rel): stage / src_rel for src_rel, dst_rel in plan["moves"]}
    manifest = moves.pop(store.manifest_path, None)
    # the data files and the journal entry, in any order (no reader sees them before the manifest)
    _each(files.mkdirs, {dst.parent for dst in moves} - {store.root})

    def move(dst: Path) -> None:
        _move(files, moves[dst], dst)
        _step("moved")

    _each(move, moves)
    if manifest is not None:  # last: the commit point
        with contextlib.suppress(FileNotFoundError):  # (renamed by an earlier attempt)
            files.rename(manifest, store.manifest_path, overwrite=True)
        _step("published")
    for rel, lost_rel in plan.get("set_aside", []):
        files.mkdirs(inside(store, lost_rel).parent)
        _move(files, inside(store, rel), inside(store, lost_rel))
    # plan["remove"]: files the commit retired. No reader holds a lease here, so they stay (listed
    # as retired, with when) for a writer RETIRED_GRACE later to delete (UrlWriter.remove_waiting).
    for name in plan.get("journal_drop", []):
        files.delete(inside(store, f"journal/{name}"))
    _step("removed")
    files.delete(stage, recursive=True)
    _step("done")


def recover_url(store: Store) -> list[str]:
    """Finish commits that were decided, discard the others (:func:`flowlens.store.commit.recover`
    through the store's files). Call with the lock held."""
    files = store.files
    if not files.is_dir(store.staging_dir):
        return []
    return finish_or_discard(
        store,
        [stage for stage in files.children(store.staging_dir) if files.is_dir(stage)],
        lambda stage: _read_plan(stage, files),
        lambda stage, plan: apply_url_commit(store, stage, plan),
        lambda stage: files.delete(stage, recursive=True),
    )


class UrlWriter(StoreWriter):
    """A :class:`StoreWriter` of a store at a URL: it stages in the local folder ``local_root``,
    uploads what a commit moves, and decides and applies the commit through the store's files."""

    def __init__(self, store: Store, recovered: list[str], lock: UrlLock, local_root: Path) -> None:
        super().__init__(store, recovered)
        self.lock = lock
        self.local_root = local_root
        self._decided: set[str] = set()
        self._deleted: set[str] = set()

    def stage(self, commit_id: str) -> Path:
        path = self.local_root / commit_id
        path.mkdir(parents=True, exist_ok=False)
        return path

    def remote_stage(self, stage: Path) -> Path:
        """Where the commit staged locally at ``stage`` is uploaded."""
        return self.store.staging_dir / stage.name

    def _decide(self, stage: Path, plan: dict[str, Any]) -> None:
        files = self.store.files
        remote = self.remote_stage(stage)
        sources = [Path(src_rel) for src_rel, _ in plan["moves"]]
        _each(files.mkdirs, {remote / rel.parent for rel in sources})
        _each(lambda rel: files.upload(stage / rel, remote / rel), sources)
        _step("uploaded")
        self.lock.check()  # a writer that lost its lock decides nothing
        if not files.create_exclusive(remote / "commit.json", json.dumps(plan, sort_keys=True).encode()):
            raise StoreError(
                f"{files.uri(remote / 'commit.json')} exists already: another writer staged this commit; "
                "run the command again"
            )
        self._decided.add(stage.name)

    def _apply(self, stage: Path, plan: dict[str, Any]) -> None:
        apply_url_commit(self.store, self.remote_stage(stage), plan)
        shutil.rmtree(stage, ignore_errors=True)

    def abort(self, stage: Path) -> None:
        """Throw away the local stage, and what was uploaded of a commit that was not decided."""
        shutil.rmtree(stage, ignore_errors=True)
        if stage.name in self._decided:
            return  # decided: the next writer finishes it
        remote = self.remote_stage(stage)
        with contextlib.suppress(OSError):
            if not self.store.files.exists(remote / "commit.json"):
                self.store.files.delete(remote, recursive=True)

    def commit(self, stage: Path, manifest: Mapping[str, Any], **options: Any) -> list[str]:
        """:meth:`StoreWriter.commit`, with the manifest's :data:`RETIRED_SINCE` saying when each
        file the commit retires (``remove``) was retired, and keeping it for those retired before
        (a retired file without a time, as a local writer leaves one, is given this commit's)."""
        when = utc_now_text()
        known = _retired_since(self.manifest)
        since = {
            rel: known.get(rel, when) for rel in self.manifest.get("retired", []) if rel not in self._deleted
        }
        since.update({rel: when for rel in options.get("remove", ()) if rel not in since})
        rest = {key: value for key, value in manifest.items() if key != RETIRED_SINCE}
        return super().commit(stage, {**rest, RETIRED_SINCE: since} if since else rest, **options)

    def remove_waiting(self) -> None:
        """:meth:`delete_retired` (no reader leases here: the grace instead)."""
        self.delete_retired()

    def delete_retired(self, now: float | None = None) -> list[str]:
        """Delete the retired files that were retired :data:`RETIRED_GRACE` seconds or more before
        ``now`` (the partition folders they leave empty too); their store-relative paths. The
        manifest keeps listing them until the next commit, which drops what is gone."""
        limit = (time.time() if now is None else now) - RETIRED_GRACE
        since = _retired_since(self.manifest)
        listed = self.manifest.get("files", {})  # (never a file the manifest lists, whatever it says)
        due = [
            rel
            for rel in self.manifest.get("retired", [])
            if rel not in self._deleted
            and rel not in listed
            and (at := _epoch(since.get(rel))) is not None
            and at <= limit
        ]
        files = self.store.files
        _each(files.delete, [inside(self.store, rel) for rel in due])
        self._deleted.update(due)
        for folder in sorted({inside(self.store, rel).parent for rel in due}):
            with contextlib.suppress(OSError):
                if folder != self.store.root and files.is_dir(folder) and not files.children(folder):
                    files.delete(folder)
        return due

    @contextlib.contextmanager
    def readable(self, paths: Sequence[Path]) -> Iterator[dict[Path, Path]]:
        """Local copies of the committed files ``paths``, downloaded :data:`PARALLEL` at a time
        into the writer's local folder and deleted after the block."""
        folder = Path(tempfile.mkdtemp(prefix="read-", dir=self.local_root))
        try:
            local = {path: folder / path.relative_to(self.store.root) for path in paths}
            for copy in set(local.values()):
                copy.parent.mkdir(parents=True, exist_ok=True)
            _each(lambda path: self.store.files.download(path, local[path]), list(local))
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def stored_flows(self, days: set[str]) -> list[Path]:
        """Local copies of the committed flows files of ``days`` (``YYYY-MM-DD``), downloaded once
        per run: what the record-by-record checks (:mod:`flowlens.ingest.dedupe`) read."""
        snapshot = Snapshot.of(self.store, self.manifest)
        cache = self.local_root / "stored"
        copies = []
        for entry in snapshot.flow_entries():
            if entry.day not in days:
                continue
            local = cache / entry.path
            if not local.is_file() or local.stat().st_size != entry.bytes:
                local.parent.mkdir(parents=True, exist_ok=True)
                self.store.files.download(self.store.root / entry.path, local)
            copies.append(local)
        return copies


@contextlib.contextmanager
def open_url_writer(store: Store, *, wait: float = 0.0, ttl: float | None = None) -> Iterator[UrlWriter]:
    """:func:`flowlens.store.commit.open_writer` for a store at a URL: the lock, recovery, the
    integrity check, and a :class:`UrlWriter` staging in a temporary local folder."""
    files = store.files
    try:
        files.mkdirs(store.root)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {store.location} ({exc})") from None
    with url_writer_lock(files, store.lock_path, store.location, wait, ttl) as lock:
        recovered = list(lock.notes)
        try:
            recovered += recover_url(store)
        except OSError as exc:
            raise write_failure(exc, store, decided=True) from None
        require_intact(store)
        local = scratch_folder("flowlens-stage-")  # (its owner named: flowlens.store.scratch)
        try:
            writer = UrlWriter(store, recovered, lock, local)
            if is_legacy(writer.manifest):
                raise UsageError(
                    f"the store {store.location!r} was written by another tool or an older flowlens (no "
                    "file list in its manifest): list its files first with a local flowlens on a mount "
                    "of it (`flowlens verify`)"
                )
            removed = writer.delete_retired()
            if removed:
                writer.recovered.append(
                    f"deleted {len(removed)} file(s) retired more than {RETIRED_GRACE:g} seconds ago"
                )
            yield writer
        finally:
            shutil.rmtree(local, ignore_errors=True)


def url_maintain(writer: StoreWriter, lifecycle: Lifecycle, now: dt.datetime) -> list[str]:
    """What runs after a Spark ingest's commit into a store at a URL: compaction of the closed days
    and retention, as after a local ingest (:func:`flowlens.store.compact.maintain`), then a line
    for the summaries' backfill, which runs on a local (or mounted) store only."""
    notes = maintain(writer, lifecycle, now)
    snapshot = Snapshot.of(writer.store, writer.manifest)
    unsummarised = len(snapshot.flows()) - len(snapshot.summaries())
    if unsummarised > 0:
        notes.append(
            f"{unsummarised} older flows file(s) have no hourly summary: the backfill runs on a local "
            "(or mounted) store only; queries read their records instead"
        )
    return notes


def _epoch(text: Any) -> float | None:
    """Seconds since the epoch of a time :data:`RETIRED_SINCE` holds (None: none, or unreadable)."""
    try:
        return dt.datetime.fromisoformat(text).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None


def _retired_since(manifest: Mapping[str, Any]) -> dict[str, str]:
    found = manifest.get(RETIRED_SINCE)
    return {str(k): v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}
