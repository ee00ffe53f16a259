"""The journal: ``<store>/journal/``, what each commit changed, to check and rebuild the manifest.

Every commit writes, in the same atomic step as its files and its manifest, one journal entry
``<generation>-<commit>.json`` (the generation zero-padded, so that names sort in commit order):
the files it added (with their manifest entries) and removed, the lineages it changed or dropped,
the ingest it records. Every :data:`CHECKPOINT_EVERY` generations, and whenever the journal does
not continue the manifest, the entry is a *checkpoint* (``<generation>-<commit>.full.json``)
carrying the whole manifest; entries older than the newest checkpoint are then deleted, so the
journal holds at most about :data:`CHECKPOINT_EVERY` entries.

The journal is how flowlens knows a manifest is wrong: a manifest whose generation is older than
the journal's newest entry was restored from an older backup (or is left from a commit that was
never finished); a missing manifest beside a journal was removed. :func:`replay` rebuilds the
manifest exactly from the newest checkpoint and the entries after it (``flowlens repair``).
Entries are untrusted input: read as JSON, checked for their shape, and only ever used to
rebuild a manifest that is then checked against the files on disk.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowlens.store.files import LOCAL, StoreFiles
from flowlens.store.manifest import MANIFEST_VERSION, check_shape, empty_manifest

JOURNAL_VERSION = 1
CHECKPOINT_EVERY = 64
MAX_INGESTS = 500
_NAME = re.compile(r"^(\d{10})-([A-Za-z0-9_.-]+?)(\.full)?\.json$")


@dataclass(frozen=True)
class EntryName:
    """A journal entry's file, as its name describes it."""

    path: Path
    generation: int
    commit: str
    full: bool


def entry_name(generation: int, commit: str, full: bool) -> str:
    return f"{generation:010d}-{commit}{'.full' if full else ''}.json"


def list_entries(journal_dir: Path, files: StoreFiles = LOCAL) -> list[EntryName]:
    """The journal's entries, oldest first (names that are not entries are left out)."""
    found: list[EntryName] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in files.children(journal_dir):
            match = _NAME.match(path.name)
            if match:
                found.append(EntryName(path, int(match.group(1)), match.group(2), bool(match.group(3))))
    return sorted(found, key=lambda e: (e.generation, e.full, e.path.name))


def newest_generation(journal_dir: Path, files: StoreFiles = LOCAL) -> int | None:
    """The generation of the journal's newest entry (None: no journal)."""
    entries = list_entries(journal_dir, files)
    return entries[-1].generation if entries else None


def _lineages(manifest: dict[str, Any]) -> dict[str, Any]:
    return {str(lineage.get("id")): lineage for lineage in manifest.get("sources", [])}


def make_entry(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    commit: str,
    kind: str,
    time: str,
    added: dict[str, Any],
    removed: list[str],
    full: bool,
) -> dict[str, Any]:
    """The journal entry of the commit that turns manifest ``old`` into ``new``."""
    entry: dict[str, Any] = {
        "journal": JOURNAL_VERSION,
        "generation": new["generation"],
        "commit": commit,
        "kind": kind,
        "time": time,
        "added": added,
        "removed": removed,
        "retired": new.get("retired", []),
    }
    if full:
        entry["manifest"] = new
        return entry
    before, after = _lineages(old), _lineages(new)
    entry["lineages"] = [lineage for key, lineage in after.items() if before.get(key) != lineage]
    entry["forgotten"] = sorted(key for key in before if key not in after)
    known = {json.dumps(i, sort_keys=True) for i in old.get("ingests", [])}
    entry["ingests"] = [i for i in new.get("ingests", []) if json.dumps(i, sort_keys=True) not in known]
    others = {k: v for k, v in new.items() if k not in _MANAGED and old.get(k) != v}
    if others:
        entry["set"] = others
    return entry


# Keys of the manifest an entry records in its own way; any other key a writer keeps (a live
# collector's positions) is recorded whole when it changes ("set").
_MANAGED = {"version", "generation", "files", "retired", "sources", "ingests"}


class JournalError(ValueError):
    """The journal cannot rebuild a manifest (an entry is missing, unreadable or malformed)."""


def _read(path: Path, files: StoreFiles = LOCAL) -> dict[str, Any]:
    try:
        data = json.loads(files.read_text(path))
    except (OSError, ValueError) as exc:
        raise JournalError(f"{path.name} cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("journal") != JOURNAL_VERSION:
        raise JournalError(f"{path.name} is not a flowlens journal entry of version {JOURNAL_VERSION}")
    if not isinstance(data.get("added", {}), dict) or not isinstance(data.get("removed", []), list):
        raise JournalError(f"{path.name} is malformed")
    return data


def apply_entry(manifest: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with the delta ``entry`` applied (a new dict)."""
    files = dict(manifest.get("files", {}))
    for rel in entry.get("removed", []):
        files.pop(rel, None)
    files.update(entry.get("added", {}))
    sources = [dict(s) for s in manifest.get("sources", [])]
    forgotten = set(entry.get("forgotten", []))
    sources = [s for s in sources if str(s.get("id")) not in forgotten]
    for lineage in entry.get("lineages", []):
        at = next((i for i, s in enumerate(sources) if s.get("id") == lineage.get("id")), None)
        if at is None:
            sources.append(lineage)
        else:
            sources[at] = lineage
    result = {
        **manifest,
        **entry.get("set", {}),
        "version": MANIFEST_VERSION,
        "generation": int(entry["generation"]),
        "files": files,
        "retired": list(entry.get("retired", [])),
        "sources": sources,
        "ingests": [*manifest.get("ingests", []), *entry.get("ingests", [])][-MAX_INGESTS:],
    }
    return result


def replay(journal_dir: Path, files: StoreFiles = LOCAL) -> dict[str, Any]:
    """The manifest the journal describes: its newest checkpoint with every later entry applied.

    Raises :class:`JournalError` when there is no checkpoint, an entry after it is missing (the
    generations do not follow each other) or unreadable."""
    entries = list_entries(journal_dir, files)
    checkpoints = [e for e in entries if e.full]
    if not checkpoints:
        if not entries:
            raise JournalError("the journal is empty")
        raise JournalError("the journal has no checkpoint entry (*.full.json)")
    start = checkpoints[-1]
    data = _read(start.path, files)
    manifest = data.get("manifest")
    if not isinstance(manifest, dict):
        raise JournalError(f"{start.path.name} carries no manifest")
    check_shape(manifest, start.path.name)
    expected = start.generation + 1
    for entry in entries:
        if entry.generation <= start.generation:
            continue
        if entry.generation != expected:
            raise JournalError(
                f"entry {expected} is missing (the next is {entry.path.name})"
                if entry.generation > expected
                else f"two entries for generation {entry.generation}"
            )
        delta = _read(entry.path, files)
        manifest = (
            delta["manifest"]
            if entry.full and isinstance(delta.get("manifest"), dict)
            else apply_entry(manifest, delta)
        )
        expected += 1
    check_shape(manifest, "the manifest the journal rebuilds")
    return manifest


def replay_or_empty(journal_dir: Path) -> dict[str, Any]:
    """:func:`replay`, or an empty manifest when there is no journal at all."""
    if not list_entries(journal_dir):
        return empty_manifest()
    return replay(journal_dir)
