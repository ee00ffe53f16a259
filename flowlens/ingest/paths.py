"""Which files an ingest reads: paths, folders, globs and ``-``, without ever walking in a circle.

:func:`find_sources` turns what the user named into the files to read, passing over what lives
beside logs and is not one (README, YAML, ...). Folders are walked recursively and globs
(``**`` included) are matched by flowlens itself rather than by :mod:`glob`, so that a symbolic
link back to a parent folder is followed at most once: each real folder is entered once per
folder or glob named, and a link loop ends there instead of hanging the run. A path that does not
exist, a glob that matches nothing and a folder that cannot be listed are *problems* of that
path alone: the run reads everything else and reports them (see
:mod:`flowlens.ingest.pipeline`).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath

STDIN = "-"

# Files that live beside logs and are not logs: passed over with a note, never quarantined.
NOT_LOGS = {
    ".yaml",
    ".yml",
    ".md",
    ".txt",
    ".rst",
    ".py",
    ".toml",
    ".cfg",
    ".ini",
    ".sh",
    ".png",
    ".svg",
    ".html",
}


@dataclass
class FoundSources:
    """What :func:`find_sources` found: files to read with their format (None: detect), files
    passed over as not logs, and ``(path, problem)`` for each path that yields nothing."""

    files: list[tuple[str, str | None]] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False, compare=False)

    def add(self, path: str, fmt: str | None, explicit: bool = False) -> None:
        """Add ``path`` once: to the files, or (found in a folder or a glob, not named
        ``explicit``-ly) to the passed when its name says it is no log."""
        if path in self._seen:
            return
        self._seen.add(path)
        if not explicit and is_not_log(PurePath(path)):
            self.passed.append(path)
        else:
            self.files.append((path, fmt))


def is_not_log(path: PurePath) -> bool:
    """Whether a file's name says it is documentation or a manifest (README, *.yaml, *.md, ...)
    or hidden: passed over inside folders and globs."""
    suffixes = [s.lower() for s in path.suffixes]
    return bool(suffixes and suffixes[-1] in NOT_LOGS) or path.name.startswith(("README", "."))


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _dir_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def walk_files(root: str, problems: list[tuple[str, str]]) -> Iterator[str]:
    """The files under ``root`` (following links), hidden ones and hidden folders left out, in
    sorted order; every real folder is entered once, so a link loop cannot make it endless."""
    seen: set[tuple[int, int]] = set()

    def visit(folder: str) -> Iterator[str]:
        ident = _dir_id(folder)
        if ident is None or ident in seen:
            return
        seen.add(ident)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append((folder, f"the folder cannot be listed ({exc.strerror or exc})"))
            return
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_dir:
                yield from visit(entry.path)
            elif is_file:
                yield entry.path

    yield from visit(root)


def _folders_below(root: str) -> Iterator[str]:
    """``root`` and every folder below it (following links, each real folder once), for ``**``;
    hidden folders are left out, as :mod:`glob` does."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        ident = _dir_id(folder or ".")
        if ident is None or ident in seen:
            continue
        seen.add(ident)
        yield folder
        try:
            with os.scandir(folder or ".") as it:
                names = sorted(
                    (e.name for e in it if not _is_hidden(e.name) and _safe_is_dir(e)), reverse=True
                )
        except OSError:
            continue
        stack.extend(os.path.join(folder, name) for name in names)


def _safe_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def match_glob(pattern: str) -> list[str]:
    """The paths matching ``pattern`` (``*``, ``?``, ``[...]`` within a name, ``**`` across
    folders), sorted, with the rules of :func:`glob.glob` for hidden names; links are followed
    but no real folder is entered twice by one ``**``."""
    absolute = pattern.startswith(os.sep)
    parts = [p for p in pattern.split(os.sep) if p]
    results: set[str] = set()

    def step(base: str, index: int) -> None:
        if index == len(parts):
            if base and os.path.lexists(base):
                results.add(base)
            return
        part = parts[index]
        last = index == len(parts) - 1
        if part == "**":
            for folder in _folders_below(base):
                if last:
                    if folder:
                        results.add(folder if folder != base else os.path.join(folder, ""))
                    for name in _names(folder, "*"):
                        results.add(os.path.join(folder, name))
                else:
                    step(folder, index + 1)
            return
        if not glob.has_magic(part):
            candidate = os.path.join(base, part) if base else part
            if last or os.path.isdir(candidate):
                step(candidate, index + 1)
            return
        for name in _names(base, part):
            candidate = os.path.join(base, name) if base else name
            if last or os.path.isdir(candidate):
                step(candidate, index + 1)

    step(os.sep if absolute else "", 0)
    return sorted(results)


def _names(folder: str, part: str) -> list[str]:
    try:
        with os.scandir(folder or ".") as it:
            names = [e.name for e in it]
    except OSError:
        return []
    hidden_ok = part.startswith(".")
    return sorted(n for n in names if (hidden_ok or not _is_hidden(n)) and fnmatch.fnmatchcase(n, part))


def find_sources(paths: Iterable[str | tuple[str, str | None]]) -> FoundSources:
    """Files to read with their format (None: detect), sorted and each once, from paths, folders
    (recursive) and globs; ``-`` is standard input. Inside folders and globs, documentation and
    manifests (README, *.yaml, *.md, ...) and hidden files are passed over; a file named
    explicitly is always read."""
    found = FoundSources()
    add = found.add
    for item in paths:
        raw, fmt = item if isinstance(item, tuple) else (item, None)
        if raw == STDIN:
            found.files.append((STDIN, fmt))
            continue
        magic = glob.has_magic(raw)
        matches = match_glob(raw) if magic else [raw]
        if not matches:
            found.problems.append((raw, "no file matches this pattern"))
            continue
        for match in matches:
            if os.path.isdir(match):
                for child in walk_files(match, found.problems):
                    add(child, fmt)
            elif os.path.isfile(match):
                add(match, fmt, explicit=not magic)
            elif not magic:
                found.problems.append((match, "no such file or directory"))
    return found
