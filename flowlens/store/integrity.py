"""A store that checks itself: its files against its manifest, its manifest against its journal.

:func:`check` compares what is on disk with what the manifest lists and returns an
:class:`IntegrityReport` of every :class:`Problem`, each saying exactly what is wrong with which
file. The quick check (``flowlens status``, and every writer before it writes) looks at each
listed file's size and at every file in the data folders; the deep one (``flowlens verify``)
also re-reads every file: its XXH3-64 and its Parquet footer's row count.

A problem is *blocking* when reading would answer short or writing could store rows twice:

* ``missing``, ``empty``, ``resized``, ``checksum``, ``rows``, ``unreadable``: a listed flows or
  quarantine file is gone, zero bytes, of another size, of other bytes, of another row count,
  or not Parquet;
* ``unlisted``: a Parquet file in a data folder that no manifest names (left by a manifest
  restored from an older backup, copied in by hand, or a zero-byte file);
* ``manifest-missing`` (data or a journal but no manifest), ``manifest-unreadable``,
  ``manifest-stale`` (the journal goes on past the manifest's generation).

Other problems are notices: a listed summary that is missing or damaged (summaries are a cache:
readers use the records instead), a journal behind the manifest (the next commit writes a
checkpoint), a commit left in ``.staging`` (the next writer finishes or discards it), retired
files waiting for readers, a file in a data folder that is not Parquet.

Writers stop on a blocking problem (:func:`require_intact`, exit code 4, naming
``flowlens repair``); readers check the manifest against the journal and the size of each file of
their window (:func:`reading`, :func:`require_present`), so a deleted or truncated file makes a
query fail instead of answering short.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.errors import StoreDamagedError, StoreError
from flowlens.store.facts import FileFacts, file_facts
from flowlens.store.journal import JournalError, list_entries, newest_generation, replay
from flowlens.store.layout import SUMMARY_DIR, Snapshot, Store, written_by_flowlens
from flowlens.store.manifest import FileEntry, file_entries, is_legacy

BLOCKING = frozenset(
    {
        "missing",
        "empty",
        "resized",
        "checksum",
        "rows",
        "unreadable",
        "unlisted",
        "manifest-missing",
        "manifest-unreadable",
        "manifest-stale",
    }
)
REPAIR_HINT = "run `flowlens verify` to see every problem and `flowlens repair` to fix them"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store: ``code`` (see the module), the store-relative ``path`` it is
    about ('' for the store as a whole) and what exactly is wrong."""

    code: str
    path: str
    message: str
    blocking: bool

    def line(self) -> str:
        return f"{self.code}: {self.path + ': ' if self.path else ''}{self.message}"


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`check` found."""

    root: str
    generation: int | None
    journal_generation: int | None
    files_checked: int
    deep: bool
    problems: tuple[Problem, ...]

    @property
    def damaged(self) -> bool:
        return any(p.blocking for p in self.problems)

    @property
    def blocking(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.blocking)

    @property
    def notices(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.blocking)

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.root,
            "generation": self.generation,
            "journal_generation": self.journal_generation,
            "files_checked": self.files_checked,
            "deep": self.deep,
            "damaged": self.damaged,
            "problems": [
                {"code": p.code, "path": p.path, "message": p.message, "blocking": p.blocking}
                for p in self.problems
            ],
        }


def _problem(code: str, path: str, message: str, *, blocking: bool | None = None) -> Problem:
    return Problem(code, path, message, code in BLOCKING if blocking is None else blocking)


def pending_commits(store: Store) -> dict[int, set[str]]:
    """Commits that were decided but not yet applied (a writer was stopped between the two): their
    generation -> the store-relative paths they move in. The next writer finishes them."""
    pending: dict[int, set[str]] = {}
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for stage in store.files.children(store.staging_dir):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                plan = json.loads(store.files.read_text(stage / "commit.json"))
                pending[int(plan["generation"])] = {str(dst) for _, dst in plan["moves"]}
    return pending


def _data_files_on_disk(store: Store) -> tuple[list[Path], list[Path]]:
    """(Parquet files, other entries) in the data folders."""
    parquet: list[Path] = []
    other: list[Path] = []
    files = store.files
    for folder, partitioned in (
        (store.flows_dir, True),
        (store.summary_dir, True),
        (store.quarantine_dir, False),
    ):
        if not files.is_dir(folder):
            continue
        children = files.children(folder)
        top = {child.name for child in children}
        for child in children:
            if partitioned and child.name.startswith("date=") and files.is_dir(child):
                leaves = files.children(child)
                names = {leaf.name for leaf in leaves}
                for leaf in leaves:
                    if _hadoop_checksum(leaf.name, names):
                        continue
                    (parquet if leaf.suffix == ".parquet" and files.is_file(leaf) else other).append(leaf)
            elif _hadoop_checksum(child.name, top):
                continue
            elif not partitioned and child.suffix == ".parquet" and files.is_file(child):
                parquet.append(child)
            else:
                other.append(child)
    return sorted(parquet), sorted(other)


def _hadoop_checksum(name: str, names: set[str]) -> bool:
    """Whether ``name`` is the checksum Hadoop's local file system keeps beside a file it wrote
    (``.x.parquet.crc`` beside ``x.parquet``: a store written through ``file://`` or a mount of it):
    the file system's, not the store's."""
    return name.startswith(".") and name.endswith(".crc") and name[1:-4] in names


def check_file(store: Store, entry: FileEntry, deep: bool) -> Problem | None:
    """What is wrong with one listed file (None: nothing): its size, and with ``deep`` its bytes,
    rows and whether it is Parquet at all."""
    path = store.root / entry.path
    blocking = entry.kind != "summary"
    what = "summary" if entry.kind == "summary" else f"{entry.kind} file"
    tail = (
        " (summaries are a cache: queries read the records instead, and repair drops it)"
        if not blocking
        else f" ({entry.rows:,} rows listed)"
    )
    try:
        size = store.files.size(path)
    except FileNotFoundError:
        return _problem("missing", entry.path, f"the {what} is missing{tail}", blocking=blocking)
    except OSError as exc:
        return _problem("unreadable", entry.path, f"cannot be read ({exc.strerror})", blocking=blocking)
    if size == 0 and entry.bytes > 0:
        return _problem(
            "empty", entry.path, f"the {what} is zero bytes, {entry.bytes:,} listed{tail}", blocking=blocking
        )
    if size != entry.bytes:
        return _problem(
            "resized",
            entry.path,
            f"the {what} is {size:,} bytes, {entry.bytes:,} listed{tail}",
            blocking=blocking,
        )
    if not deep:
        return None
    try:
        found = _facts(store, path)
    except (OSError, ValueError) as exc:
        return _problem("unreadable", entry.path, f"not readable Parquet ({exc})", blocking=blocking)
    if found.xxh3_64 != entry.xxh3_64:
        return _problem(
            "checksum",
            entry.path,
            f"its bytes changed (XXH3 {found.xxh3_64}, {entry.xxh3_64} listed)",
            blocking=blocking,
        )
    if found.rows != entry.rows:
        return _problem(
            "rows", entry.path, f"holds {found.rows:,} rows, {entry.rows:,} listed", blocking=blocking
        )
    return None


def _facts(store: Store, path: Path) -> FileFacts:
    """The facts of a listed file, read from a local copy when the store is at a URL (Python cannot
    open one: the copy comes through the store's files, one file at a time)."""
    if not store.files.remote:
        return file_facts(path)
    with tempfile.TemporaryDirectory(prefix="flowlens-verify-") as folder:
        copy = Path(folder) / path.name
        store.files.download(path, copy)
        return file_facts(copy)


def check(
    store: Store, *, deep: bool = False, progress: Callable[[int, int], None] | None = None
) -> IntegrityReport:
    """Every problem of ``store``: the quick check, or with ``deep`` every file re-read.

    ``progress(done, total)`` is called as listed files are checked."""
    problems: list[Problem] = []
    journal_gen = newest_generation(store.journal_dir, store.files)
    pending = pending_commits(store)
    pending_paths = set().union(*pending.values()) if pending else set()
    manifest: dict[str, Any] | None = None
    if store.files.exists(store.manifest_path):
        try:
            manifest = store.read_manifest()
        except StoreError as exc:
            problems.append(_problem("manifest-unreadable", "manifest.json", str(exc)))
    parquet, other = _data_files_on_disk(store)
    generation = None
    entries: dict[str, FileEntry] = {}
    if manifest is None and not problems:
        ours = [p for p in parquet if written_by_flowlens(p)]
        if journal_gen is not None or ours:
            problems.append(
                _problem(
                    "manifest-missing",
                    "manifest.json",
                    f"the manifest is missing but the store holds {len(parquet):,} data file(s)"
                    + (f" and a journal up to generation {journal_gen}" if journal_gen is not None else "")
                    + "; an ingest now would store every source again",
                )
            )
        elif parquet:
            problems.append(
                _problem(
                    "unmanaged",
                    "",
                    f"{len(parquet):,} Parquet file(s) written by another tool and no manifest: readers read "
                    "them all; the next writer lists them",
                    blocking=False,
                )
            )
    elif manifest is not None and is_legacy(manifest):
        problems.append(
            _problem(
                "legacy",
                "manifest.json",
                "written by an older flowlens that did not list files; the next writer lists them",
                blocking=False,
            )
        )
    elif manifest is not None:
        generation = int(manifest.get("generation", 0))
        entries = file_entries(manifest)
        stale_by = [g for g in range(generation + 1, (journal_gen or 0) + 1) if g not in pending]
        if journal_gen is not None and journal_gen > generation and stale_by:
            problems.append(
                _problem(
                    "manifest-stale",
                    "manifest.json",
                    f"the manifest is of generation {generation} but the journal goes on to {journal_gen}: "
                    "it was restored from an older copy or not written; readers would miss files and an "
                    "ingest would store again what was stored since",
                )
            )
        elif generation > 0 and (journal_gen is None or journal_gen < generation):
            problems.append(
                _problem(
                    "journal-behind",
                    "journal",
                    f"the journal ends at generation {journal_gen or 0}, the manifest is at {generation}: "
                    "a lost manifest could not be rebuilt; the next commit (or `flowlens repair`) writes a full entry",
                    blocking=False,
                )
            )
        for done, entry in enumerate(sorted(entries.values(), key=lambda e: e.path), 1):
            found = check_file(store, entry, deep)
            if found is not None:
                problems.append(found)
            if progress is not None:
                progress(done, len(entries))
        retired = set(manifest.get("retired", []))
        waiting = [r for r in sorted(retired) if store.files.exists(store.root / r)]
        if waiting:
            problems.append(
                _problem(
                    "retired",
                    "",
                    f"{len(waiting)} replaced or pruned file(s) wait until no reader uses them; a later "
                    "writer deletes them",
                    blocking=False,
                )
            )
        if deep:
            problems.extend(_check_journal(store, manifest))
    if manifest is not None and not is_legacy(manifest):
        listed = set(entries) | set(manifest.get("retired", []))
        for path in parquet:
            rel = path.relative_to(store.root).as_posix()
            if rel in listed or rel in pending_paths:
                continue
            if rel.startswith(SUMMARY_DIR + "/"):
                problems.append(
                    _problem(
                        "unlisted-summary",
                        rel,
                        "a summary no manifest names (readers ignore it; repair sets it aside)",
                        blocking=False,
                    )
                )
                continue
            size = store.files.size(path)
            problems.append(
                _problem(
                    "unlisted",
                    rel,
                    ("a zero-byte file" if size == 0 else f"{size:,} bytes")
                    + " that no manifest names: readers ignore it, and its rows (if it has any) are not known to be ingested",
                )
            )
    for path in other:
        rel = path.relative_to(store.root).as_posix()
        if rel.startswith("summary/") and not rel.startswith(SUMMARY_DIR + "/"):
            continue  # summaries of another version of flowlens
        problems.append(
            _problem("foreign", rel, "not a flowlens data file (readers ignore it)", blocking=False)
        )
    for generation_pending in sorted(pending):
        problems.append(
            _problem(
                "pending",
                ".staging",
                f"the commit of generation {generation_pending} was decided but not finished; the next writer finishes it",
                blocking=False,
            )
        )
    return IntegrityReport(
        root=store.location,
        generation=generation,
        journal_generation=journal_gen,
        files_checked=len(entries),
        deep=deep,
        problems=tuple(problems),
    )


def _check_journal(store: Store, manifest: dict[str, Any]) -> list[Problem]:
    """Whether the journal rebuilds exactly this manifest (the deep check)."""
    if not list_entries(store.journal_dir, store.files):
        return []  # reported as journal-behind
    try:
        rebuilt = replay(store.journal_dir, store.files)
    except (JournalError, StoreError) as exc:
        return [
            _problem(
                "journal-unreadable",
                "journal",
                f"{exc}; `flowlens repair` writes a full entry",
                blocking=False,
            )
        ]
    if rebuilt.get("generation") != manifest.get("generation"):
        return []  # stale or behind: reported already
    differs = [key for key in ("files", "sources") if rebuilt.get(key) != manifest.get(key)]
    if not differs:
        return []
    return [
        _problem(
            "journal-differs",
            "manifest.json",
            f"the manifest's {' and '.join(differs)} differ from what the journal records for the same "
            "generation (edited by hand?); `flowlens repair` writes a full journal entry from the manifest",
            blocking=False,
        )
    ]


def require_intact(
    store: Store, report: IntegrityReport | None = None, *, action: str = "write to"
) -> IntegrityReport:
    """The quick check of ``store``; :class:`StoreDamagedError` naming the first problems and
    ``flowlens repair`` when any is blocking."""
    report = report or check(store)
    if report.damaged:
        raise StoreDamagedError(damage_message(store, report.blocking, action))
    return report


def damage_message(store: Store, problems: Iterable[Problem], action: str) -> str:
    found = list(problems)
    shown = "; ".join(p.line() for p in found[:3])
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return (
        f"the store {store.root} is damaged, so flowlens will not {action} it: {shown}{more}; {REPAIR_HINT}"
    )


# --- readers ------------------------------------------------------------------------------


def read_snapshot(store: Store) -> Snapshot:
    """The committed files as a reader must see them: :class:`StoreDamagedError` when the manifest
    is missing beside data, unreadable, or older than the journal (restored from a backup)."""
    files = store.files
    for _ in range(5):
        journal_before = newest_generation(store.journal_dir, files)
        if not files.exists(store.manifest_path):
            disk = store.disk_files("flows") + store.disk_files("quarantine")
            if journal_before is not None or any(written_by_flowlens(p) for p in disk):
                if _first_commit_in_progress(store, disk, journal_before):
                    return Snapshot(store.root, 0, {}, files)  # nothing is committed until its manifest is
                if files.exists(store.manifest_path):
                    continue  # (the first commit's manifest came in meanwhile)
                raise StoreDamagedError(
                    f"the store {store.root} has data but no manifest.json, so flowlens cannot tell which files "
                    f"are committed; {REPAIR_HINT}"
                )
            return store.snapshot()  # files of another tool, or none
        try:
            manifest = store.read_manifest()
        except StoreError as exc:
            raise StoreDamagedError(str(exc)) from None
        snapshot = Snapshot.of(store, manifest)
        if snapshot.legacy or journal_before is None or journal_before <= (snapshot.generation or 0):
            return snapshot
        # The journal is ahead: a commit being applied now (its journal entry moved in before its
        # manifest), or a stale manifest. Read again once the commit is done.
        pending = pending_commits(store)
        if all(g in pending for g in range((snapshot.generation or 0) + 1, journal_before + 1)):
            return snapshot
        if (
            newest_generation(store.journal_dir, files) == journal_before
            and store.read_manifest().get("generation") == snapshot.generation
        ):
            raise StoreDamagedError(
                f"the manifest of the store {store.root} is of generation {snapshot.generation} but its "
                f"journal goes on to {journal_before}: the manifest was restored from an older copy and "
                f"queries would miss what was stored since; {REPAIR_HINT}"
            )
    raise StoreError(f"the store {store.root} kept changing while being read; run the command again")


def _first_commit_in_progress(store: Store, disk: list[Path], journal: int | None) -> bool:
    """Whether the data of a store without a manifest is that of its first commits, decided and
    being applied (their files move in before the manifest does): every journal generation and
    every flowlens data file on disk belongs to a pending commit. A reader then sees the store as
    it was before them: empty."""
    pending = pending_commits(store)
    if not pending:
        return False
    if journal is not None and not all(g in pending for g in range(1, journal + 1)):
        return False
    moving_in = set().union(*pending.values())
    return all(p.relative_to(store.root).as_posix() in moving_in for p in disk if written_by_flowlens(p))


@contextlib.contextmanager
def reading(store: Store) -> Iterator[Snapshot]:
    """A checked :class:`Snapshot` (see :func:`read_snapshot`) whose files stay on disk for the
    block: the reader's lease (:func:`flowlens.store.lock.reader_lease`) is held throughout."""
    if not store.files.is_dir(store.root):
        yield Snapshot(store.root, 0, {}, store.files)
        return
    with store.files.lease(store.readers_path):
        yield read_snapshot(store)


def require_present(snapshot: Snapshot, entries: Iterable[FileEntry], *, store: Store | None = None) -> None:
    """:class:`StoreDamagedError` unless every file of ``entries`` is on disk with its listed size
    (a reader's quick check of the files of its window)."""
    if snapshot.legacy:
        return
    root = snapshot.store
    problems = [p for e in entries if (p := check_file(root, e, deep=False)) is not None]
    if problems:
        raise StoreDamagedError(damage_message(store or root, problems, "answer from"))


def usable_summaries(snapshot: Snapshot, flows: Iterable[Path]) -> dict[Path, Path]:
    """The committed summaries of ``flows`` that are on disk with their listed size (a summary
    that is not is left out: the records are read instead)."""
    wanted = set(flows)
    by_path = {snapshot.path(rel): entry for rel, entry in snapshot.entries.items()}
    usable: dict[Path, Path] = {}
    for flows_file, summary in snapshot.summaries().items():
        if flows_file not in wanted:
            continue
        entry = by_path.get(summary)
        try:
            size = snapshot.files.size(summary)
        except OSError:
            continue
        if entry is None or entry.bytes < 0 or size == entry.bytes:
            usable[flows_file] = summary
    return usable
