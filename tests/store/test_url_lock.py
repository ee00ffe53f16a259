"""The writer lock of a store at a URL (an exclusive create with an owner and an expiry), and the
write operations of :class:`StoreFiles` it and the URL commit use, over the local files (the same
code runs over Hadoop's: tests/ingest/test_spark_url_store.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from flowlens.errors import StoreLockedError
from flowlens.store.files import LOCAL, LocalFiles
from flowlens.store.url_lock import UrlLock, url_writer_lock


def test_the_write_operations_of_the_local_files(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    LOCAL.mkdirs(folder)
    LOCAL.mkdirs(folder)  # (again: nothing)
    assert LOCAL.create_exclusive(folder / "x", b"one")
    assert not LOCAL.create_exclusive(folder / "x", b"two")
    assert (folder / "x").read_bytes() == b"one"
    LOCAL.write_bytes(folder / "y", b"why")
    with pytest.raises(FileExistsError):
        LOCAL.rename(folder / "y", folder / "x")
    LOCAL.rename(folder / "y", folder / "x", overwrite=True)
    assert (folder / "x").read_bytes() == b"why" and not (folder / "y").exists()
    LOCAL.upload(folder / "x", tmp_path / "up")
    LOCAL.download(tmp_path / "up", tmp_path / "down")
    assert (tmp_path / "down").read_bytes() == b"why"
    assert LOCAL.modified(tmp_path / "down") <= time.time()
    assert LOCAL.delete(tmp_path / "down") and not LOCAL.delete(tmp_path / "down")
    assert LOCAL.delete(tmp_path / "a", recursive=True) and not (tmp_path / "a").exists()


def test_one_writer_holds_the_lock_and_a_second_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with url_writer_lock(LOCAL, path, "hdfs://nn/store") as first:
        held = json.loads(path.read_text())
        assert held["run"] == first.run and held["expires"] > time.time() + 200
        started = time.monotonic()
        with (
            pytest.raises(StoreLockedError) as refused,
            url_writer_lock(LOCAL, path, "hdfs://nn/store", wait=0.5),
        ):
            pass
        assert time.monotonic() - started >= 0.5  # it waited
        message = str(refused.value)
        assert first.owner in message and "hdfs://nn/store" in message and "\n" not in message
        first.check()  # still ours
    assert not path.exists()  # released


def test_an_expired_lock_is_taken_over_and_its_writer_stops_before_deciding(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    old = UrlLock(LOCAL, path, "hdfs://nn/store", ttl=0.3)
    old.acquire()
    old._stop.set()  # (its heartbeat stops: a writer that hangs or lost the file system)
    assert old._thread is not None
    old._thread.join()
    time.sleep(0.4)
    with url_writer_lock(LOCAL, path, "hdfs://nn/store") as new:
        assert new.notes == [new.notes[0]] and f"took over the expired lock of {old.owner}" in new.notes[0]
        with pytest.raises(StoreLockedError, match="no longer this run's"):
            old.check()
        old.release()  # (does not remove the new writer's lock)
        assert json.loads(path.read_text())["run"] == new.run
        new.check()
    assert not list(tmp_path.iterdir())


def test_the_heartbeat_keeps_a_live_writers_lock(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with url_writer_lock(LOCAL, path, "hdfs://nn/store", ttl=0.6) as lock:
        first = json.loads(path.read_text())["expires"]
        time.sleep(1.0)  # longer than the TTL: renewed meanwhile
        assert json.loads(path.read_text())["expires"] > first
        lock.check()
        with pytest.raises(StoreLockedError, match="being written by"):
            url_writer_lock(LOCAL, path, "hdfs://nn/store").__enter__()
    assert not path.exists()


def test_a_lock_that_cannot_be_read_expires_by_its_age(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    path.write_text('{"own')  # a writer killed while writing the lock
    with pytest.raises(StoreLockedError, match="an unknown writer"):
        url_writer_lock(LOCAL, path, "hdfs://nn/store").__enter__()
    os.utime(path, (time.time() - 200, time.time() - 200))  # (younger than the lock's 300 s)
    with pytest.raises(StoreLockedError, match="an unknown writer"):
        url_writer_lock(LOCAL, path, "hdfs://nn/store").__enter__()
    os.utime(path, (time.time() - 1000, time.time() - 1000))
    with url_writer_lock(LOCAL, path, "hdfs://nn/store") as lock:
        assert "took over the expired lock of an unknown writer" in lock.notes[0]


def test_an_empty_lock_file_is_no_writers_once_a_create_would_have_written_it(tmp_path: Path) -> None:
    """A store written on a local disk leaves its lock file empty when released; copied to HDFS,
    its first writer there takes it over within half a minute, not after the lock's 300 s."""
    path = tmp_path / ".lock"
    path.write_text("")
    with pytest.raises(StoreLockedError, match="an empty lock file"):
        url_writer_lock(LOCAL, path, "hdfs://nn/store").__enter__()  # (as a create in progress)
    os.utime(path, (time.time() - 60, time.time() - 60))
    with url_writer_lock(LOCAL, path, "hdfs://nn/store") as lock:
        assert "took over the expired lock of no writer (an empty lock file)" in lock.notes[0]
    assert not path.exists()


class _FlakyReads(LocalFiles):
    """The local files, with the first ``failures`` reads failing as Hadoop's checksummed local
    file system fails a read between the two renames of a renewal (ChecksumException)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def read_text(self, path: Path) -> str:
        if self.failures:
            self.failures -= 1
            raise OSError("org.apache.hadoop.fs.ChecksumException: Checksum error: .lock at 0")
        return super().read_text(path)


def test_a_lock_read_that_fails_while_it_is_renewed_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with url_writer_lock(LOCAL, path, "hdfs://nn/store") as held:
        reader = UrlLock(_FlakyReads(failures=2), path, "hdfs://nn/store")
        holder = reader._holder()  # two failed reads, the third gives the lock
        assert holder is not None and holder["run"] == held.run
        broken = UrlLock(_FlakyReads(failures=3), path, "hdfs://nn/store")
        with pytest.raises(OSError, match="ChecksumException"):
            broken._holder()  # a read that keeps failing is the file system's failure
