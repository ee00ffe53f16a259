"""The writer lock of a store at a URL: an exclusively created ``.lock`` with an owner and an expiry.

A local store's lock is a ``flock`` the kernel releases when its holder dies
(:mod:`flowlens.store.lock`). A file system behind a URL has no such lock, so a store there is
locked by creating ``<store>/.lock`` only if it does not exist (an atomic create on HDFS and the
file systems with atomic rename that flowlens writes: :mod:`flowlens.store.hadoop_commit`). The
file names its owner (host, process, run id), when it was taken and when it expires:

* while the writer runs, a heartbeat thread renews the expiry every third of :data:`LOCK_TTL`
  (written beside the lock and renamed over it, so that the lock file is never absent);
* a second writer finds the file and waits (``--wait-for-lock``) or stops with one line naming
  the owner and the expiry;
* a lock whose expiry has passed (its writer was killed, or lost the file system for longer than
  the TTL) is taken over: renamed aside under a name of the new writer's own (one rename: of two
  writers taking it over, one gets it), checked to be the expired one, then created afresh;
* before it decides a commit, a writer checks that the lock still names its run and has not
  expired (:meth:`UrlLock.check`): a writer that lost its lock stops before anything is decided.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flowlens.errors import StoreLockedError
from flowlens.store.files import StoreFiles

#: Seconds a lock stays valid without a heartbeat (it is renewed every third of it).
LOCK_TTL = 300.0
#: How long an empty lock file holds: a writer creates the lock and writes its owner in one go, so
#: an empty one older than this is no writer's (a store written on a local disk leaves its lock
#: file empty when released, and is then copied to HDFS) or a writer killed in between.
EMPTY_LOCK_GRACE = 30.0
READ_ATTEMPTS = 3  # reads of a lock file before its failure counts (see UrlLock._read)


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


class UrlLock:
    """The lock ``path`` (``<store>/.lock``) of the store at ``location``, through ``files``."""

    def __init__(self, files: StoreFiles, path: Path, location: str, ttl: float = LOCK_TTL) -> None:
        self.files = files
        self.path = path
        self.location = location
        self.ttl = ttl
        self.run = uuid.uuid4().hex[:12]
        self.owner = f"flowlens on {socket.gethostname()} pid {os.getpid()} run {self.run}"
        #: What taking the lock did that a user should know (a stale lock taken over).
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    def _content(self) -> bytes:
        now = time.time()
        data = {
            "owner": self.owner,
            "run": self.run,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": _when(now),
            "expires": now + self.ttl,
        }
        return json.dumps(data, sort_keys=True).encode()

    def _holder(self, path: Path | None = None) -> dict[str, Any] | None:
        """The lock's content (its expiry from its time when it cannot be read: a writer killed
        while writing it; an empty one is no writer's past EMPTY_LOCK_GRACE); None when there is
        no lock."""
        path = path or self.path
        try:
            text = self._read(path)
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("expires"), (int, float)):
                return data
        except ValueError:
            pass
        try:
            written = self.files.modified(path)
        except FileNotFoundError:
            return None
        if not text.strip():
            return {
                "owner": "no writer (an empty lock file)",
                "run": "",
                "expires": written + min(self.ttl, EMPTY_LOCK_GRACE),
            }
        return {"owner": "an unknown writer", "run": "", "expires": written + self.ttl}

    def _read(self, path: Path) -> str:
        """The text of a lock file, read again (up to READ_ATTEMPTS times) when the read fails:
        the lock is replaced by a rename at every renewal, and on a file system that keeps a
        checksum file beside each file (Hadoop's ``file://`` under viewfs, say) a read between
        the two renames sees the new text with the old checksum (``ChecksumException``)."""
        for attempt in range(1, READ_ATTEMPTS):
            try:
                return self.files.read_text(path)
            except FileNotFoundError:
                raise
            except OSError:
                time.sleep(0.05 * attempt)
        return self.files.read_text(path)

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds; :class:`StoreLockedError` when another
        writer still holds it then."""
        deadline = time.monotonic() + max(0.0, wait)
        pause = 0.2
        while True:
            if self.files.create_exclusive(self.path, self._content()):
                break
            holder = self._holder()
            if holder is None:
                continue  # (released meanwhile)
            if float(holder["expires"]) < time.time():
                self._take_over(holder)
                continue
            if time.monotonic() < deadline:
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 5.0)
                continue
            raise StoreLockedError(
                f"the store {self.location} is being written by {holder.get('owner', 'another writer')} "
                f"(its lock expires at {_when(float(holder['expires']))} unless renewed); wait for it "
                "to finish (--wait-for-lock SECONDS), or, if that writer is gone, for its lock to expire"
            )
        self._thread = threading.Thread(target=self._beat, name="flowlens-lock", daemon=True)
        self._thread.start()

    def _take_over(self, holder: dict[str, Any]) -> None:
        """Move the expired lock ``holder`` aside (one rename: one writer gets it), check it is the
        one that expired, and delete it; a fresh lock moved aside by mistake is put back."""
        aside = self.path.with_name(f"{self.path.name}.expired-{self.run}")
        try:
            self.files.rename(self.path, aside)
        except (FileNotFoundError, FileExistsError):
            return  # another writer took it over first
        moved = self._holder(aside)
        if moved is not None and (
            moved.get("run") != holder.get("run") or moved["expires"] != holder["expires"]
        ):
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                self.files.rename(aside, self.path)  # (its writer finds it gone otherwise, and stops)
            return
        self.files.delete(aside)
        self.notes.append(
            f"took over the expired lock of {holder.get('owner', 'an unknown writer')} "
            f"(expired at {_when(float(holder['expires']))})"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self._renew()
            except Exception as exc:  # the file system is unreachable: the check before deciding stops us
                self.lost = f"renewing the lock failed ({exc})"

    def _renew(self) -> None:
        holder = self._holder()
        if holder is None or holder.get("run") != self.run:
            self.lost = "the lock was taken over by " + (holder or {}).get("owner", "nobody")
            self._stop.set()
            return
        fresh = self.path.with_name(f"{self.path.name}.{self.run}.renew")
        self.files.write_bytes(fresh, self._content())
        self.files.rename(fresh, self.path, overwrite=True)

    def check(self) -> None:
        """:class:`StoreLockedError` unless the lock is still this writer's and has not expired."""
        holder = self._holder()
        if self.lost is None and (holder is None or holder.get("run") != self.run):
            self.lost = "the lock is no longer this run's"
        elif self.lost is None and holder is not None and float(holder["expires"]) < time.time():
            self.lost = "the lock expired"
        if self.lost is not None:
            raise StoreLockedError(
                f"the store {self.location}: {self.lost}, so this run stops before committing "
                "anything; run the command again"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._holder()
        if holder is not None and holder.get("run") == self.run:
            self.files.delete(self.path)


@contextlib.contextmanager
def url_writer_lock(
    files: StoreFiles, path: Path, location: str, wait: float = 0.0, ttl: float | None = None
) -> Iterator[UrlLock]:
    """Hold the lock at ``path`` for the block (see :class:`UrlLock`)."""
    lock = UrlLock(files, path, location, LOCK_TTL if ttl is None else ttl)
    lock.acquire(wait)
    try:
        yield lock
    finally:
        lock.release()
