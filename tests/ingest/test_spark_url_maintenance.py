"""Maintenance of a store at a Hadoop URL with ``--engine spark``: pruning and retention,
compaction (by hand and after an ingest), ``verify`` and ``status``, through the URL commit and
lock (:mod:`flowlens.store.hadoop_commit`), with the plans of :mod:`flowlens.store.lifecycle`.

The store is reached as ``viewfs://<table>/<mount>/store`` (see tests/ingest/test_spark_url_store.py):
every write goes through Hadoop's ``FileSystem`` API. The tests fill it at its folder with DuckDB
ingests (fast; the same files a Spark ingest writes) and read the result back at the folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import flowlens.store.hadoop_commit as hadoop_commit
from flowlens.engine import EngineChoice, connect, open_engine
from flowlens.engine.spark import spark_session
from flowlens.ingest import ingest
from flowlens.store import Store
from flowlens.store.hadoop import open_hadoop
from flowlens.store.integrity import check
from flowlens.store.lifecycle import Lifecycle
from tests.engine.test_spark import QUERIES, _ordered, assert_same
from tests.helpers import run_cli
from tests.ingest.test_spark import _spark
from tests.ingest.test_spark_url_store import REPO, _mount
from tests.store.helpers import log_lines, seen, valid, write_log
from tests.store.test_compact import _every_answer

pytestmark = pytest.mark.spark

#: Lines of 2023-02-03 (the 36 first of log_lines), 2023-02-04 and 2023-02-05 (its first hour).
DAY_STARTS = {"2023-02-03": 0, "2023-02-04": 36, "2023-02-05": 36 + 864}


def _day(day: str, part: int, n: int = 6) -> list[str]:
    """``n`` lines of ``day``, the ``part``-th slice of its first records."""
    return log_lines(n, start=DAY_STARTS[day] + part * n)


def _fill(tmp_path: Path, files: dict[str, int]) -> tuple[Store, dict[str, list[Path]]]:
    """A store at ``tmp_path/mounted/store`` with ``files[day]`` small flows files per day (one
    DuckDB ingest each); the logs ingested, by day."""
    folder = Store(tmp_path / "mounted" / "store")
    logs: dict[str, list[Path]] = {}
    for day, count in files.items():
        for part in range(count):
            log = write_log(tmp_path / f"{day}-{part}.log", _day(day, part))
            ingest(folder, [str(log)])
            logs.setdefault(day, []).append(log)
    # (the local writers' flock file: a writer at the URL would read it as a lock of unknown owner
    # and wait for it to expire, LOCK_TTL after the last local write)
    folder.lock_path.unlink()
    return folder, logs


def _age(before: str) -> int:
    """The --older-than (days) that prunes the partitions before ``before`` today."""
    return (dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(before)).days


def _days(store: Store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in store.snapshot().flow_entries():
        assert entry.day is not None
        counts[entry.day] = counts.get(entry.day, 0) + 1
    return counts


def test_prune_at_a_url_retires_then_deletes_and_a_reader_meanwhile_still_reads_the_old_files(
    tmp_path: Path, spark_choice: EngineChoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, logs = _fill(tmp_path, {"2023-02-03": 2, "2023-02-04": 2, "2023-02-05": 1})
    url, _ = _mount(spark_choice, tmp_path / "mounted")
    store = f"{url}/store"
    old = [p for p in folder.flow_files() if "2023-02-05" not in str(p)]
    old_summaries = [s for f, s in folder.snapshot().summaries().items() if f in old]
    assert len(old) == 4 and len(old_summaries) == 4
    with open_engine(store, spark_choice) as reader:  # a query planned on the manifest before the prune
        before = reader.sql("SELECT count(*) AS n, sum(bytes_in) AS b FROM flows").to_pylist()
        done = run_cli(
            "prune", "--older-than", f"{_age('2023-02-05')}d", "--store", store, "--engine", "spark"
        )
        assert done.code == 0, str(done)
        assert done.stderr.strip() == (
            "pruned 2 partition(s) older than 2023-02-05 (2023-02-03 .. 2023-02-04): 24 rows in 4 flows "
            "file(s), and 0 quarantine file(s) (0 line(s)) of ingests before it; lineage checkpoints kept"
        )
        # the reader still reads its files: they are retired, not deleted
        assert reader.sql("SELECT count(*) AS n, sum(bytes_in) AS b FROM flows").to_pylist() == before
    assert before[0]["n"] == 30
    assert _days(folder) == {"2023-02-05": 1}
    assert seen(folder) == valid(_day("2023-02-05", 0))
    assert all(p.exists() for p in old + old_summaries)
    manifest = folder.read_manifest()
    retired = {str(folder.root / rel) for rel in manifest["retired"]}
    assert retired == {str(p) for p in old + old_summaries}
    assert set(manifest[hadoop_commit.RETIRED_SINCE]) == set(manifest["retired"])
    remote = open_hadoop(Store.at(store), spark_session(spark_choice.spark))
    assert [(p.code, p.blocking) for p in check(remote).problems] == [("retired", False)]
    # within the grace, the next writer keeps them; re-ingesting a pruned source adds nothing
    again = _spark(remote, spark_choice, logs["2023-02-03"][0])
    assert (again.total("rows"), again.total("skipped")) == (0, 6)
    assert all(p.exists() for p in old + old_summaries)
    monkeypatch.setattr(hadoop_commit, "RETIRED_GRACE", 0.0)
    after = _spark(remote, spark_choice, logs["2023-02-04"][1])
    assert (after.total("rows"), after.total("skipped")) == (0, 6)
    assert "deleted 8 file(s) retired more than 0 seconds ago" in after.recovered
    assert not any(p.exists() for p in old + old_summaries)
    assert not (folder.flows_dir / "date=2023-02-03").exists()  # (partition folders left empty go too)
    assert (
        folder.read_manifest()["retired"] == [] and hadoop_commit.RETIRED_SINCE not in folder.read_manifest()
    )
    assert not check(remote, deep=True).problems and not check(folder, deep=True).problems


_KILL_SCRIPT = """
import datetime as dt, os, signal, sys
import flowlens.store.commit as commit
import flowlens.store.url_lock as url_lock
from flowlens.engine.settings import SparkSettings
from flowlens.engine.spark import spark_session
from flowlens.store import Store
from flowlens.store.hadoop_commit import open_for_writing, open_url_writer
from flowlens.store.compact import compact
from flowlens.store.layout import Snapshot
from flowlens.store.lifecycle import compaction_plan, prune

url_lock.LOCK_TTL = 3.0  # the killed writer's lock expires soon after its death
store, where, mount, command, days = sys.argv[1:6]
key, value = mount.split("=", 1)
spark = spark_session(SparkSettings("local[1]", (("spark.ui.enabled", "false"), (key, value))))
def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)
commit.FAULT_HOOK = lambda step: die() if step == where else None
with open_url_writer(open_for_writing(Store.at(store), spark)) as writer:
    if command == "prune":
        prune(writer, int(days), dt.datetime.now(dt.UTC))
    else:
        compact(writer, compaction_plan(Snapshot.of(writer.store, writer.manifest)))
"""


def _killed(tmp_path: Path, url: str, setting: str, where: str, command: str, days: int = 0) -> None:
    """Run ``command`` (prune or compact) on the store at ``url`` in a process of its own, killed
    with SIGKILL when its commit reaches the step ``where``."""
    script = tmp_path / "kill_me.py"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), f"{url}/store", where, setting, command, str(days)],
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)},
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["uploaded", "published"])
def test_a_prune_killed_half_way_leaves_the_old_or_the_pruned_store_and_the_next_writer_completes_it(
    tmp_path: Path, spark_choice: EngineChoice, where: str
) -> None:
    folder, logs = _fill(tmp_path, {"2023-02-03": 2, "2023-02-04": 1})
    url, setting = _mount(spark_choice, tmp_path / "mounted")
    _killed(tmp_path, url, setting, where, "prune", _age("2023-02-04"))
    assert folder.lock_path.exists()
    staged = [p for p in folder.staging_dir.iterdir() if p.is_dir()]
    assert len(staged) == 1 and (staged[0] / "commit.json").exists() == (where == "published")
    # a reader sees the old store or the pruned one, never a part of either
    assert _days(folder) == (
        {"2023-02-04": 1} if where == "published" else {"2023-02-03": 2, "2023-02-04": 1}
    )
    assert all((folder.root / rel).exists() for rel in folder.snapshot().entries)
    time.sleep(3.5)  # (the killed writer's lock expires)
    remote = open_hadoop(Store.at(f"{url}/store"), spark_session(spark_choice.spark))
    done = run_cli(
        "prune", "--older-than", f"{_age('2023-02-04')}d", "--store", f"{url}/store", "--engine", "spark"
    )
    assert done.code == 0, str(done)
    if where == "published":  # finished by recovery; nothing left to prune
        assert "pruned nothing" in done.stderr
    else:
        assert "pruned 1 partition(s)" in done.stderr
    assert _days(folder) == {"2023-02-04": 1}
    assert not [p for p in folder.staging_dir.iterdir() if p.is_dir()]
    again = _spark(remote, spark_choice, *logs["2023-02-03"])
    assert (again.total("rows"), again.total("skipped")) == (0, 12)
    assert [p.code for p in check(remote).problems] == ["retired"]


def test_compact_at_a_url_gives_every_query_the_same_answers_on_both_engines_and_status_said_so(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    folder, _ = _fill(tmp_path, {"2023-02-03": 3, "2023-02-04": 4})
    url, _ = _mount(spark_choice, tmp_path / "mounted")
    store = f"{url}/store"
    status = run_cli("status", "--store", store, "--engine", "spark", "--json")
    assert status.code == 0, str(status)
    gain = json.loads(status.stdout)["compaction"]
    assert gain == json.loads(run_cli("status", "--store", folder.root, "--json").stdout)["compaction"]
    assert (gain["files"], gain["days_to_compact"], gain["files_after_compaction"]) == (7, 2, 2)
    before = _every_answer(folder.root)
    names = [n for n in ("denied", "top-talkers", "coverage-facts") if n in QUERIES]
    with connect(folder.root) as duck:
        wanted = {name: duck.run(name) for name in names}
    old = folder.flow_files()
    done = run_cli("compact", "--store", store, "--engine", "spark", "--json")
    assert done.code == 0, str(done)
    assert json.loads(done.stdout) == {
        "days": ["2023-02-03", "2023-02-04"],
        "files_before": 7,
        "files_after": 2,
        "rows": 42,
    }
    assert _days(folder) == {"2023-02-03": 1, "2023-02-04": 1}
    assert len(folder.snapshot().summaries()) == 2
    assert all(p.exists() for p in old)  # retired: deleted by a writer an hour later
    assert _every_answer(folder.root) == before
    with open_engine(store, spark_choice) as spark:
        for name in names:
            assert_same(spark.run(name), wanted[name], ordered=_ordered(QUERIES[name]))
    after = json.loads(run_cli("status", "--store", store, "--engine", "spark", "--json").stdout)[
        "compaction"
    ]
    assert (after["files"], after["days_to_compact"]) == (2, 0)
    verified = run_cli("verify", "--store", store, "--engine", "spark")
    assert verified.code == 0 and "is intact (every file read, 4 file(s) listed" in verified.stderr, str(
        verified
    )
    # verify at the URL reads every byte: a file rewritten in place is found
    compacted = folder.flow_files()[0]
    data = bytearray(compacted.read_bytes())
    data[len(data) // 2] ^= 0xFF
    compacted.write_bytes(bytes(data))
    damaged = run_cli("verify", "--store", store, "--engine", "spark")
    first = damaged.stdout.splitlines()[0] if damaged.stdout else ""
    # (Hadoop's local file system keeps a checksum beside each file it wrote: it finds the change
    # as it copies the file, and says so, before flowlens' own XXH3 would)
    code, rel = first.split(": ")[:2] if first.count(": ") >= 2 else ("", "")
    assert damaged.code == 4 and code in ("checksum", "unreadable"), str(damaged)
    assert rel == compacted.relative_to(folder.root).as_posix()
    assert run_cli("verify", "--store", store, "--engine", "spark", "--quick").code == 0  # (sizes only)


def test_a_spark_ingest_at_a_url_compacts_closed_days_and_applies_retention(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    folder, _ = _fill(tmp_path, {"2023-02-03": 1, "2023-02-04": 3})
    url, _ = _mount(spark_choice, tmp_path / "mounted")
    remote = open_hadoop(Store.at(f"{url}/store"), spark_session(spark_choice.spark))
    new = write_log(tmp_path / "new.log", _day("2023-02-05", 0))
    lifecycle = Lifecycle(compact_files=2, retention_days=_age("2023-02-04"))
    summary = _spark(remote, spark_choice, new, lifecycle=lifecycle)
    assert summary.total("rows") == 6
    assert summary.maintenance == [
        "compacted 1 day(s) (2023-02-04): 3 flows file(s) into 1, 18 rows",
        "pruned 1 partition(s) older than 2023-02-04 (2023-02-03 .. 2023-02-03): 6 rows in 1 flows file(s), "
        "and 0 quarantine file(s) (0 line(s)) of ingests before it; lineage checkpoints kept",
    ]
    assert _days(folder) == {"2023-02-04": 1, "2023-02-05": 1}
    assert seen(folder) == sorted(
        valid(_day("2023-02-04", 0) + _day("2023-02-04", 1) + _day("2023-02-04", 2) + _day("2023-02-05", 0))
    )
    assert [p.code for p in check(remote, deep=True).problems] == ["retired"]
    assert not [p for p in folder.staging_dir.iterdir() if p.is_dir()] and not folder.lock_path.exists()


def test_a_store_at_a_url_is_not_repaired_and_says_why_in_one_line(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    _fill(tmp_path, {"2023-02-03": 1})
    url, _ = _mount(spark_choice, tmp_path / "mounted")
    result = run_cli("repair", "--store", f"{url}/store", "--engine", "spark")
    assert result.code == 2 and result.stderr.strip().count("\n") == 0, str(result)
    assert "mount it and repair the mounted folder" in result.stderr
    assert "flowlens verify --engine spark" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("where", ["uploaded", "moved"])
def test_a_compaction_killed_half_way_leaves_the_old_files_and_the_next_writer_completes_it(
    tmp_path: Path, spark_choice: EngineChoice, where: str
) -> None:
    folder, logs = _fill(tmp_path, {"2023-02-03": 3})
    rows = seen(folder)
    url, setting = _mount(spark_choice, tmp_path / "mounted")
    _killed(tmp_path, url, setting, where, "compact")
    staged = [p for p in folder.staging_dir.iterdir() if p.is_dir()]
    assert len(staged) == 1 and (staged[0] / "commit.json").exists() == (where == "moved")
    # the manifest is not replaced yet: readers read the three old files, all there
    assert _days(folder) == {"2023-02-03": 3} and seen(folder) == rows
    time.sleep(3.5)  # (the killed writer's lock expires)
    done = run_cli("compact", "--store", f"{url}/store", "--engine", "spark")
    assert done.code == 0, str(done)
    assert done.stderr.strip() == (
        "compacted nothing: no day has two or more small files"
        if where == "moved"  # (finished by recovery)
        else "compacted 1 day(s) (2023-02-03): 3 flows file(s) into 1, 18 rows"
    )
    assert _days(folder) == {"2023-02-03": 1} and seen(folder) == rows
    remote = open_hadoop(Store.at(f"{url}/store"), spark_session(spark_choice.spark))
    again = _spark(remote, spark_choice, *logs["2023-02-03"])
    assert (again.total("rows"), again.total("skipped")) == (0, 18)
    assert [p.code for p in check(remote, deep=True).problems] == ["retired"]
