"""kill -9 at every step of a commit, and a full disk: readers see the old state or the new one,
never a part, and the next run completes with every valid line stored once."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest

import flowlens.store.commit as commit
from flowlens.errors import StoreWriteError
from flowlens.ingest import ingest
from flowlens.store import Store, check, open_writer
from flowlens.store.compact import compact
from flowlens.store.layout import Snapshot
from flowlens.store.lifecycle import compaction_plan
from tests.store.helpers import log_lines, quarantined, run_python, seen, valid, write_log

# The harness: a real process that kills itself (SIGKILL, no cleanup) the ``nth`` time its commit
# reaches ``step``; the library only calls the hook, a test sets it.
_HARNESS = """
import os, signal, sys
from pathlib import Path
import flowlens.store.commit as commit
store_root, step, nth, action, *args = sys.argv[1:]
seen = {"n": 0}
def hook(name):
    if name == step:
        seen["n"] += 1
        if seen["n"] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
commit.FAULT_HOOK = hook
from flowlens.store import Store, open_writer
store = Store(Path(store_root))
if action == "ingest":
    from flowlens.ingest import ingest
    ingest(store, args)
elif action == "compact":
    from flowlens.store.compact import compact
    from flowlens.store.layout import Snapshot
    from flowlens.store.lifecycle import compaction_plan
    with open_writer(store) as writer:
        compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))
elif action == "prune":
    import datetime as dt
    from flowlens.store.lifecycle import prune
    with open_writer(store) as writer:
        prune(writer, int(args[0]), dt.datetime.fromisoformat(args[1]))
"""

# Every step of an ingest commit that adds a flows file, its summary, a quarantine file and the
# journal entry (four moves), with the nth time it is reached.
INGEST_STEPS = [
    ("staged", 1),
    ("decided", 1),
    ("moved", 1),
    ("moved", 2),
    ("moved", 3),
    ("moved", 4),
    ("published", 1),
    ("removed", 1),
    ("done", 1),
]


def _killed(store: Store, step: str, nth: int, action: str, *args: str) -> None:
    result = run_python(_HARNESS, str(store.root), step, str(nth), action, *args)
    assert result.returncode == -signal.SIGKILL, (step, nth, result.stderr.decode()[-2000:])


@pytest.mark.slow
@pytest.mark.parametrize(("step", "nth"), INGEST_STEPS)
def test_a_killed_ingest_shows_readers_the_old_or_the_new_state_and_the_next_run_stores_each_line_once(
    tmp_path: Path, step: str, nth: int
) -> None:
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    lines = log_lines(150, bad_every=10)
    write_log(log, lines[:60])
    ingest(store, [str(log)])  # the old state: two days
    write_log(log, lines)  # the file grows: the new lines are all in the second day
    _killed(store, step, nth, "ingest", str(log))

    assert seen(store) in (valid(lines[:60]), valid(lines))
    assert not check(store).damaged
    summary = ingest(store, [str(log)])
    assert summary.balanced
    assert seen(store) == valid(lines)
    assert quarantined(store) == {("flows.log", n): 1 for n in range(10, 151, 10)}
    assert not check(store, deep=True).damaged
    assert not list(store.staging_dir.iterdir())


@pytest.mark.parametrize(("step", "nth"), [("decided", 1), ("moved", 1), ("moved", 3), ("moved", 4)])
def test_a_first_commit_killed_half_way_shows_readers_an_empty_store_and_the_next_run_completes_it(
    tmp_path: Path, step: str, nth: int
) -> None:
    """A store's first commit moves its data files in before its manifest: a reader in between
    (a query while the collector's first batch commits, or after a writer was killed there) sees
    the store as it was, empty, not a store damaged for want of a manifest."""
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    lines = log_lines(40, bad_every=10)
    write_log(log, lines)
    _killed(store, step, nth, "ingest", str(log))
    assert not store.manifest_path.exists()
    assert seen(store) == []
    summary = ingest(store, [str(log)])
    assert summary.balanced
    assert seen(store) == valid(lines)
    assert not check(store, deep=True).damaged


@pytest.mark.slow
@pytest.mark.parametrize(("step", "nth"), [*INGEST_STEPS[:3], ("moved", 2), *INGEST_STEPS[6:]])
def test_a_killed_compaction_never_changes_what_readers_see_and_the_next_one_finishes(
    tmp_path: Path, step: str, nth: int
) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(120)
    for part in range(4):  # four small files in each of two days
        log = write_log(tmp_path / f"node-{part}.log", lines[part * 30 : (part + 1) * 30])
        ingest(store, [str(log)])
    files_before = len(store.flow_files())
    assert files_before == 5
    _killed(store, step, nth, "compact")

    assert seen(store) == valid(lines)
    report = check(store)
    assert not report.damaged, report.problems
    with open_writer(store) as writer:
        compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))
    assert seen(store) == valid(lines)
    assert len(store.flow_files()) == 2  # one file a day
    assert not check(store, deep=True).damaged
    assert not list(store.staging_dir.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("step", ["decided", "published", "removed"])
def test_a_killed_prune_shows_readers_the_old_or_the_new_state(tmp_path: Path, step: str) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(60)
    ingest(store, [str(write_log(tmp_path / "flows.log", lines))])
    second_day = lines[36:]  # from 2023-02-04 00:00 on
    _killed(store, step, 1, "prune", "1", "2023-02-05T12:00:00+00:00")
    assert seen(store) in (valid(lines), valid(second_day))
    assert not check(store).damaged
    summary = ingest(store, [str(tmp_path / "flows.log")])
    assert summary.total("rows") == 0  # pruned or not, nothing is stored twice


# --- a full disk --------------------------------------------------------------------------


def _fail_with_enospc(at: str):  # type: ignore[no-untyped-def]
    def hook(step: str) -> None:
        if step == at:
            raise OSError(errno.ENOSPC, "No space left on device")

    return hook


@pytest.mark.parametrize("step", ["staged", "moved"])
def test_a_full_disk_during_a_commit_is_one_clear_error_and_the_next_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    store = Store(tmp_path / "store")
    lines = log_lines(90, bad_every=9)
    log = write_log(tmp_path / "flows.log", lines)
    monkeypatch.setattr(commit, "FAULT_HOOK", _fail_with_enospc(step))
    with pytest.raises(StoreWriteError, match="no space left on device") as caught:
        ingest(store, [str(log)])
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    monkeypatch.setattr(commit, "FAULT_HOOK", None)
    if step == "staged":
        assert "nothing of this run was committed" in str(caught.value)
        assert not list(store.staging_dir.iterdir())
    else:
        assert "the next writer finishes that commit" in str(caught.value)
    assert not [p for p in store.root.rglob("*.tmp")]
    summary = ingest(store, [str(log)])
    assert seen(store) == valid(lines)
    assert summary.balanced
    assert not check(store, deep=True).damaged


def test_a_full_disk_while_parquet_is_written_leaves_no_staged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flowlens.ingest.writer as writer_module

    store = Store(tmp_path / "store")
    lines = log_lines(60)
    log = write_log(tmp_path / "flows.log", lines)
    real = writer_module.FileWriter._write_now

    def full(self, day, table):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer_module.FileWriter, "_write_now", full)
    with pytest.raises(StoreWriteError, match="nothing of this run was committed"):
        ingest(store, [str(log)])
    assert not list(store.staging_dir.iterdir())
    monkeypatch.setattr(writer_module.FileWriter, "_write_now", real)
    ingest(store, [str(log)])
    assert seen(store) == valid(lines)


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False
    )
    return result.returncode == 0


@pytest.mark.slow
def test_a_store_on_a_full_tmpfs_fails_with_one_message_and_completes_once_there_is_room(
    tmp_path: Path,
) -> None:
    """A real full disk: the store on a small tmpfs (mounted when the tests run as root)."""
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, "256k"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    try:
        store = Store(mount / "store")
        lines = log_lines(20_000, noise=True)
        log = write_log(tmp_path / "flows.log", lines)
        result = run_python(
            "import sys; from flowlens.cli import main; sys.argv=['flowlens', *sys.argv[1:]]; main()",
            "ingest",
            str(log),
            "--store",
            str(store.root),
            "--no-progress",
        )
        stderr = result.stderr.decode()
        assert result.returncode == 4, stderr
        assert "Traceback" not in stderr
        assert stderr.count("flowlens: error:") == 1 and "no space left on device" in stderr
        assert not [p for p in store.root.rglob("*") if p.is_file() and p.suffix in (".tmp", ".parquet")]
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        summary = ingest(store, [str(log)])
        assert summary.total("rows") == len(lines)
        assert seen(store) == valid(lines)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
