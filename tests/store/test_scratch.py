"""The local scratch folders of Spark ingests (``$TMPDIR/flowlens-stage-*``, ``flowlens-task-*``)
name their owner, and the folders of owners that are gone are removed; the others are kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from flowlens.store import scratch
from flowlens.store.scratch import OWNER_FILE, SAFE_AGE, remove_leftovers, scratch_folder

REPO = Path(__file__).resolve().parents[2]

_KILLED = """
import os, signal, sys, tempfile
tempfile.tempdir = sys.argv[1]
from flowlens.store.scratch import scratch_folder
folder = scratch_folder(sys.argv[2])
(folder / "flows").mkdir()
(folder / "flows" / "part.parquet").write_bytes(b"staged")
print(folder, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def killed_owner_folder(root: Path, prefix: str = "flowlens-stage-") -> Path:
    """A scratch folder left by a process killed (SIGKILL) while it held it."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, str(root), prefix],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    folder = Path(proc.stdout.strip())
    assert (folder / "flows" / "part.parquet").is_file()
    return folder


def _owned(root: Path, name: str, owner: dict[str, object] | None, age: float = 0.0) -> Path:
    folder = root / name
    folder.mkdir()
    if owner is not None:
        (folder / OWNER_FILE).write_text(json.dumps(owner))
    then = time.time() - age
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (then, then))
    return folder


def test_the_folders_of_owners_that_are_gone_are_removed_and_the_others_kept(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    dead_stage = killed_owner_folder(tmp_path)
    dead_task = killed_owner_folder(tmp_path, "flowlens-task-")
    mine = scratch_folder("flowlens-stage-")  # this process runs: kept
    host = socket.gethostname()
    reused = _owned(  # its id now names a process started later: removed
        tmp_path, "flowlens-stage-reused", {"host": host, "pid": os.getpid(), "started": -1}
    )
    elsewhere = _owned(tmp_path, "flowlens-stage-other", {"host": "another-host", "pid": 1})
    old_elsewhere = _owned(
        tmp_path, "flowlens-stage-other-old", {"host": "another-host", "pid": 1}, age=SAFE_AGE + 60
    )
    unowned_fresh = _owned(tmp_path, "flowlens-stage-unowned", None)
    unowned_old = _owned(tmp_path, "flowlens-task-unowned-old", None, age=SAFE_AGE + 60)
    unrelated = _owned(tmp_path, "somebody-else", None, age=SAFE_AGE + 60)
    target = _owned(tmp_path, "outside", None, age=SAFE_AGE + 60)
    (target / "keep.txt").write_text("not flowlens'")
    (tmp_path / "flowlens-stage-link").symlink_to(target)

    removed = remove_leftovers()
    assert sorted(removed) == sorted([dead_stage, dead_task, reused, old_elsewhere, unowned_old])
    for folder in removed:
        assert not folder.exists()
    for folder in (mine, elsewhere, unowned_fresh, unrelated, target):
        assert folder.is_dir()
    assert (target / "keep.txt").is_file() and (tmp_path / "flowlens-stage-link").is_symlink()
    assert remove_leftovers() == []


def test_a_folder_still_written_to_is_not_old(tmp_path: Path) -> None:
    folder = _owned(tmp_path, "flowlens-stage-busy", None, age=SAFE_AGE + 60)
    (folder / "flows").mkdir()
    (folder / "flows" / "new.parquet").write_bytes(b"x")
    os.utime(folder, (time.time() - SAFE_AGE - 60,) * 2)
    assert remove_leftovers(tmp_path) == []
    assert remove_leftovers(tmp_path, now=time.time() + SAFE_AGE + 120) == [folder]
    assert scratch._alive(os.getpid(), scratch._started(os.getpid()))
