"""The reports folder: one sub-folder per window, the history of headline numbers, index and latest.

Layout::

    <reports>/<label>/report.html|report.md|report.json   one run (replaced when re-run)
    <reports>/<label>/state.json                          talkers, external destinations, denied
                                                          flows: what the next run diffs against
    <reports>/history.jsonl                               one line of headline numbers per window,
                                                          sorted by window end; same label = replaced
    <reports>/index.html                                  every run, newest first, and the trend
    <reports>/latest -> <label>                           symlink to the newest window's folder
    <reports>/latest.html                                 redirect to it (for hosts without symlinks)
    <reports>/.lock                                       held while a run updates the folder

Every path is built from a label checked by :func:`flowlens.report.window.check_label` and then
verified to resolve inside the reports folder. Files are written to a temporary name and renamed,
so a crash never leaves a half-written report in place.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from flowlens.errors import InputError, UsageError
from flowlens.report.metrics import State
from flowlens.report.model import HistoryEntry
from flowlens.report.window import check_label

HISTORY = "history.jsonl"
STATE = "state.json"
INDEX = "index.html"
LATEST = "latest"
LATEST_HTML = "latest.html"
REPORT_FILES = ("report.html", "report.md", "report.json")


LOCK = ".lock"


@contextmanager
def locked(reports: Path) -> Iterator[None]:
    """Hold the reports folder's lock: runs that overlap (a slow run and the next schedule) wait
    for each other instead of losing each other's history entry."""
    reports.mkdir(parents=True, exist_ok=True)
    with open(reports / LOCK, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def inside(reports: Path, name: str) -> Path:
    """``reports/name`` for a safe label, refusing anything that resolves outside ``reports``."""
    check_label(name)
    root = reports.resolve()
    path = (reports / name).resolve()
    if path.parent != root:
        raise UsageError(f"report folder {name!r} would be outside {str(reports)!r}")
    return reports / name


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_history(reports: Path) -> list[HistoryEntry]:
    """Every run recorded in ``history.jsonl`` (empty when there is none)."""
    path = reports / HISTORY
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            entry = HistoryEntry.from_dict(data)
            check_label(entry.label)
        except (ValueError, TypeError, AttributeError, UsageError) as exc:
            raise InputError(
                f"{path}:{number} is not a valid history entry ({exc}); fix or delete that line"
            ) from None
        entries.append(entry)
    return entries


def merge_history(history: Sequence[HistoryEntry], entry: HistoryEntry) -> list[HistoryEntry]:
    """The history with ``entry`` added, replacing an entry of the same window label, sorted by end."""
    kept = [h for h in history if h.label != entry.label] + [entry]
    return sorted(kept, key=lambda h: (h.end, h.start, h.label))


def write_history(reports: Path, entries: Sequence[HistoryEntry]) -> None:
    lines = [json.dumps(h.as_dict(), sort_keys=True) for h in entries]
    _write_text(reports / HISTORY, "".join(line + "\n" for line in lines))


def read_state(reports: Path, label: str) -> State | None:
    """The state saved by the run of ``label``; None when it is missing or unreadable."""
    path = inside(reports, label) / STATE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return State(
            talkers=tuple(data["talkers"]), external=tuple(data["external"]), denied=tuple(data["denied"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def state_json(state: State) -> str:
    data = {"talkers": list(state.talkers), "external": list(state.external), "denied": list(state.denied)}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def write_run(reports: Path, label: str, files: Mapping[str, str]) -> Path:
    """Write one run's files into ``reports/<label>/``, replacing an earlier run of that window."""
    reports.mkdir(parents=True, exist_ok=True)
    final = inside(reports, label)
    tmp = reports / f".tmp-{label}"
    old = reports / f".old-{label}"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.mkdir()
    for name, text in sorted(files.items()):
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad report file name {name!r}")
        (tmp / name).write_text(text, encoding="utf-8")
    if final.is_symlink() or final.is_file():
        final.unlink()
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final


def update_latest(reports: Path, label: str) -> None:
    """Point ``reports/latest`` (symlink) and ``reports/latest.html`` (redirect) at ``label``."""
    folder = inside(reports, label)
    page = next((name for name in REPORT_FILES if (folder / name).is_file()), REPORT_FILES[0])
    link = reports / LATEST
    tmp = reports / f".{LATEST}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    if not link.exists() or link.is_symlink():
        try:
            tmp.symlink_to(label, target_is_directory=True)
            os.replace(tmp, link)
        except OSError:
            # No symlinks on this file system: latest.html alone points at the newest run.
            if tmp.is_symlink():
                tmp.unlink()
    _write_text(
        reports / LATEST_HTML,
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0; url={label}/{page}">'
        f"<title>latest coverage report</title></head>"
        f'<body><a href="{label}/{page}">{label}</a></body></html>\n',
    )


def existing_files(reports: Path, entries: Sequence[HistoryEntry]) -> dict[str, list[str]]:
    """Per run label, the report files present in its folder (a run may have written only some formats)."""
    return {
        h.label: [name for name in REPORT_FILES if (inside(reports, h.label) / name).is_file()]
        for h in entries
    }


def write_index(reports: Path, html: str) -> None:
    _write_text(reports / INDEX, html)
