"""Local scratch folders of a Spark ingest, and the removal of those whose process is gone.

A Spark ingest into a store at a URL stages its commit in ``$TMPDIR/flowlens-stage-*`` on the
driver (:func:`flowlens.store.hadoop_commit.open_url_writer`), and each task that ships its
files stages them in ``$TMPDIR/flowlens-task-*`` on its executor
(:mod:`flowlens.ingest.spark_upload`). Both are removed when their run ends; a process killed
meanwhile (SIGKILL, a lost machine) leaves its folder behind. So :func:`scratch_folder` writes
who owns the folder (host, process id and the process's start time) into it, and
:func:`remove_leftovers`, which every Spark ingest runs first, removes the folders of this user
whose owner is gone: a process of this host that no longer runs (or whose id now names another
process, started later), or a folder untouched for :data:`SAFE_AGE` seconds whatever its owner
(another host's, or one written before owners were recorded).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

#: The file in a scratch folder that names its owner.
OWNER_FILE = ".flowlens-owner.json"

#: The prefixes of the scratch folders :func:`remove_leftovers` looks at.
PREFIXES = ("flowlens-stage-", "flowlens-task-")

#: A scratch folder nothing under which changed for this long is removed whatever its owner
#: (a week: longer than any run waits between two writes of its staged files).
SAFE_AGE = 7 * 24 * 3600.0


def _started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def scratch_folder(prefix: str) -> Path:
    """A new folder under the temporary folder, named ``prefix...``, with its owner written in it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid())}
    (folder / OWNER_FILE).write_text(json.dumps(owner))
    return folder


def _alive(pid: int, started: int | None) -> bool:
    """Whether process ``pid`` of this host runs and is the one that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it runs
    now = _started(pid)
    return started is None or now is None or now == started


def _newest_change(folder: Path) -> float:
    newest = folder.lstat().st_mtime
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            newest = max(newest, path.lstat().st_mtime)
    return newest


def _gone(folder: Path, now: float) -> bool:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
        host, pid, started = str(owner["host"]), int(owner["pid"]), owner.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        host, pid, started = "", 0, None
    if host == socket.gethostname() and pid > 0 and not _alive(pid, started):
        return True
    return now - _newest_change(folder) > SAFE_AGE


def remove_leftovers(root: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove the scratch folders (:data:`PREFIXES`) of this user under ``root`` (the temporary
    folder) whose owner is gone (see the module's docstring); the folders removed."""
    root = Path(tempfile.gettempdir()) if root is None else root
    now = time.time() if now is None else now
    removed = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    for folder in entries:
        if not folder.name.startswith(PREFIXES):
            continue
        try:
            info = folder.lstat()
            if not folder.is_dir() or folder.is_symlink() or info.st_uid != os.getuid():
                continue
            if _gone(folder, now):
                shutil.rmtree(folder)
                removed.append(folder)
        except OSError:
            continue  # (removed meanwhile, or not ours to remove: left as it is)
    return removed
