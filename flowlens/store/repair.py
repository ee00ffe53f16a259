"""``flowlens repair``: a damaged store made consistent again, with nothing doubled and nothing
deleted.

:func:`repair` takes the writer's lock (without the check that stops other writers), then:

1. **The manifest.** A missing, unreadable or stale manifest (older than the journal) is rebuilt
   from the journal (:func:`flowlens.store.journal.replay`): every file, lineage and checkpoint
   exactly as the last commit left them. When the journal cannot rebuild it, the manifest that
   is there (or an empty one) is the base, and what it does not know is treated as untrusted.
2. **Damaged files.** Every file the manifest lists is checked whole (size, XXH3-64, Parquet
   footer). A flows or quarantine file that is missing, truncated, rewritten or unreadable is
   *lost*; its rows can come back only from their sources. Each of its spans says which lines
   of which lineage it held, so repair *forgets that progress*: the lineage's checkpoints after
   the span's start are dropped. Every other file holding lines of that lineage after that point
   is set aside too (re-ingesting would store them again), which may forget more; this repeats
   until nothing changes. Re-ingesting the sources then restores exactly the lost rows, once.
3. **Untrusted files.** Parquet files no manifest lists (a stale manifest's newer files the
   journal could not vouch for, files copied in, zero-byte files), summaries of lost files and
   damaged summaries are set aside. ``adopt=True`` instead lists files no manifest names as
   committed as they are (for files of another tool; flowlens cannot know which source lines
   they hold, so re-ingesting their sources would store those rows twice).

Nothing is deleted: whatever is set aside is moved to ``<store>/lost+found/<repair>/`` under its
path in the store. The new manifest, with a full journal entry, is published by one commit, and
:class:`RepairResult` says, one line each, what was done and which sources to ingest again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flowlens.errors import StoreError
from flowlens.store.commit import StoreWriter, new_ingest_id, open_writer
from flowlens.store.facts import file_facts
from flowlens.store.integrity import IntegrityReport, check, check_file, pending_commits
from flowlens.store.journal import JournalError, newest_generation, replay
from flowlens.store.layout import LOST_AND_FOUND, Store
from flowlens.store.manifest import FileEntry, Span, empty_manifest, file_entries, is_legacy


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair` did: one line per action, the files set aside (store-relative paths
    in ``lost+found``), the sources to ingest again, and the check afterwards."""

    actions: tuple[str, ...]
    set_aside: tuple[str, ...]
    reingest: tuple[str, ...]
    rows_set_aside: int
    after: IntegrityReport

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def as_dict(self) -> dict[str, Any]:
        """What ``flowlens repair --json`` prints."""
        return {
            "actions": list(self.actions),
            "set_aside": list(self.set_aside),
            "ingest_again": list(self.reingest),
            "rows_set_aside": self.rows_set_aside,
            "after": self.after.as_dict(),
        }


def _base_manifest(store: Store, actions: list[str]) -> dict[str, Any]:
    """The manifest to repair from: the current one, or the journal's when the current one is
    missing, unreadable or stale."""
    current: dict[str, Any] | None = None
    problem = ""
    if store.manifest_path.exists():
        try:
            current = store.read_manifest()
        except StoreError as exc:
            problem = f"unreadable ({exc})"
    else:
        problem = "missing"
    journal_gen = newest_generation(store.journal_dir)
    if current is not None and is_legacy(current):
        return current
    if current is not None and (journal_gen is None or journal_gen <= int(current.get("generation", 0))):
        return current
    if current is not None:
        problem = f"stale (generation {current.get('generation')}, the journal goes on to {journal_gen})"
    if journal_gen is not None:
        try:
            rebuilt = replay(store.journal_dir)
        except (JournalError, StoreError) as exc:
            actions.append(f"the manifest is {problem} and the journal cannot rebuild it ({exc})")
        else:
            actions.append(
                f"rebuilt the manifest from the journal (generation {rebuilt['generation']}): it was {problem}"
            )
            return rebuilt
    if current is not None:
        actions.append("kept the stale manifest: files it does not list are set aside")
        return current
    actions.append(
        f"the manifest is {problem}: starting from an empty one, files it does not list are set aside"
    )
    return empty_manifest()


def _lines(checkpoint: dict[str, Any] | None) -> int:
    return int(checkpoint["lines"]) if checkpoint else 0


def _cascade(entries: dict[str, FileEntry], lost: set[str]) -> tuple[set[str], dict[str, Span]]:
    """``lost`` grown by every file holding lines a lost file's lineages must read again, and per
    lineage the span whose start reading resumes from (the earliest such start)."""
    resume: dict[str, Span] = {}
    lost = set(lost)
    while True:
        for rel in sorted(lost):
            for span in entries[rel].spans or ():
                known = resume.get(span.lineage)
                if known is None or span.start_lines < known.start_lines:
                    resume[span.lineage] = span
        grown = {
            rel
            for rel, entry in entries.items()
            if rel not in lost
            and entry.kind != "summary"
            and any(
                s.lineage in resume and s.end_lines > resume[s.lineage].start_lines for s in entry.spans or ()
            )
        }
        if not grown:
            return lost, resume
        lost |= grown


def _forget(manifest: dict[str, Any], resume: dict[str, Span]) -> list[tuple[str, int, int]]:
    """Drop each lineage's progress past its resume point; (source path, from line, was at line)."""
    forgotten = []
    sources = []
    for lineage in manifest.get("sources", []):
        span = resume.get(str(lineage.get("id")))
        if span is None:
            sources.append(lineage)
            continue
        was = max((_lines(cp) for cp in lineage.get("checkpoints", [])), default=0)
        path = str(lineage.get("path", "?"))
        forgotten.append((path, span.start_lines, was))
        if span.start is None:
            continue  # read again from its first line: the lineage starts anew
        start_bytes = int(span.start["bytes"])
        kept = [cp for cp in lineage.get("checkpoints", []) if int(cp["bytes"]) < start_bytes]
        sources.append({**lineage, "checkpoints": [*kept, dict(span.start)]})
    manifest["sources"] = sources
    return forgotten


def repair(store: Store, *, adopt: bool = False, now: dt.datetime | None = None) -> RepairResult:
    """Make ``store`` consistent (see the module); what was done."""
    clock = now or dt.datetime.now(dt.UTC)
    if not store.exists():
        raise StoreError(f"no flowlens store at {store.root}")
    with open_writer(store, check=False) as writer:
        return _repair(writer, adopt=adopt, now=clock)


def _repair(writer: StoreWriter, *, adopt: bool, now: dt.datetime) -> RepairResult:
    store = writer.store
    actions: list[str] = list(writer.recovered)
    if store.unmanaged() or is_legacy(writer.manifest):
        writer.list_legacy_files()
        actions = list(writer.recovered)
    before = check(store, deep=True)
    if not any(p.code not in ("retired", "pending") for p in before.problems):
        return RepairResult(tuple(actions), (), (), 0, before)
    base = _base_manifest(store, actions)
    entries = file_entries(base)
    commit_id = f"repair-{new_ingest_id(now)}"

    damaged = {rel: p for rel, e in entries.items() if (p := check_file(store, e, deep=True)) is not None}
    lost_data = {rel for rel in damaged if entries[rel].kind != "summary"}
    lost, resume = _cascade(entries, lost_data)
    manifest = dict(base)
    forgotten = _forget(manifest, resume)
    lost_summaries = {
        rel for rel, e in entries.items() if e.kind == "summary" and (e.of in lost or rel in damaged)
    }
    unlisted = _unlisted(store, set(entries) | set(base.get("retired", [])))
    adopted = _adopt(store, unlisted, commit_id) if adopt else {}
    aside = sorted((lost | lost_summaries | set(unlisted)) - set(adopted))
    moves = [(rel, f"{LOST_AND_FOUND}/{commit_id}/{rel}") for rel in aside if (store.root / rel).exists()]
    rows_aside = sum(max(entries[rel].rows, 0) for rel in lost)

    actions.extend(p.line() for p in damaged.values())
    if lost:
        whole = len(lost) - len(lost_data)
        actions.append(
            f"set aside {len(lost)} data file(s) ({rows_aside:,} rows listed)"
            + (f"; {whole} of them whole, but holding lines that must be read again" if whole else "")
        )
    for path, start, was in forgotten:
        actions.append(
            f"forgot the progress of {path} after line {start:,} (it was at line {was:,}): ingest it again "
            "to restore its rows"
        )
    unknown = sorted(rel for rel in lost_data if entries[rel].spans is None)
    if unknown:
        actions.append(
            f"{len(unknown)} lost file(s) were written before flowlens kept the source lines of each file: "
            "their rows cannot be restored by ingesting again without storing others twice"
        )
    if lost_summaries:
        actions.append(f"dropped {len(lost_summaries)} summary file(s) (the next ingest writes them again)")
    if set(unlisted) - set(adopted):
        actions.append(f"set aside {len(set(unlisted) - set(adopted))} file(s) no manifest lists")
    if adopted:
        actions.append(
            f"listed {len(adopted)} file(s) no manifest listed, as they are (their source lines are unknown)"
        )
    if moves:
        actions.append(f"moved what was set aside to {store.root / LOST_AND_FOUND / commit_id}")
    # Publish from the repaired base; the generation continues past the journal's.
    generation = max(int(base.get("generation", 0)), newest_generation(store.journal_dir) or 0)
    writer.manifest = {**base, "generation": generation}
    stage = writer.stage(commit_id)
    try:
        writer.commit(
            stage,
            {**manifest, "generation": generation},
            kind="repair",
            adopt=adopted,
            set_aside=moves,
            remove=aside,  # set aside when on disk, else only dropped from the list
            full_journal=True,
            now=now,
        )
    except BaseException:
        writer.abort(stage)
        raise
    if len(actions) == len(writer.recovered):
        actions.append("wrote the manifest and a full journal entry again")
    return RepairResult(
        actions=tuple(actions),
        set_aside=tuple(dst for _, dst in moves),
        reingest=tuple(sorted({path for path, _, _ in forgotten})),
        rows_set_aside=rows_aside,
        after=check(store),
    )


def _unlisted(store: Store, listed: set[str]) -> list[str]:
    """Data files on disk that ``listed`` does not name (nor a commit about to be finished)."""
    pending = set().union(*pending_commits(store).values())
    return [
        rel
        for kind in ("flows", "summary", "quarantine")
        for p in store.disk_files(kind)
        if (rel := p.relative_to(store.root).as_posix()) not in listed and rel not in pending
    ]


def _adopt(store: Store, unlisted: list[str], commit_id: str) -> dict[str, FileEntry]:
    """Entries listing the unlisted flows and quarantine files that are readable Parquet."""
    adopted = {}
    for rel in unlisted:
        kind = rel.split("/", 1)[0]
        if kind not in ("flows", "quarantine"):
            continue
        try:
            facts = file_facts(store.root / rel)
        except (OSError, ValueError):
            continue
        adopted[rel] = FileEntry(
            rel, kind, facts.rows, facts.bytes, facts.xxh3_64, commit_id, spans=None, columns=facts.columns
        )
    return adopted
