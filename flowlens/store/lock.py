"""The locks of a store: one writer at a time, and readers' leases on the files they read.

``<store>/.lock`` is held with ``flock`` for as long as a writer is open, and names its holder
(pid and start time) so that a second writer is refused with a message that says who holds it.
The kernel releases the lock when the holder dies, however it dies: no stale lock to clean up.
Readers never take it; they see commits, which are atomic (see :mod:`flowlens.store.commit`).

``<store>/.readers`` is held *shared* by every reader while it reads (:func:`reader_lease`).
Compaction and pruning publish a manifest without the files they replace or remove, and delete
those files only when they can hold ``.readers`` exclusively (:func:`readers_gone`): a reader
that took its file list from the older manifest still finds every file in it. Files that could
not be deleted yet are named in the manifest's ``retired`` list, and a later writer deletes them.
A reader takes the lease before it reads the manifest, so once a writer holds it exclusively,
every later reader sees the manifest without the retired files.

Writers take turns: a live collector holds the lock only while it commits a micro-batch, and
a writer given ``wait`` seconds (a cron ``flowlens ingest --wait-for-lock``, the collector
itself while an ingest runs) retries until the lock is free or the time is up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from flowlens.errors import StoreLockedError


@contextlib.contextmanager
def writer_lock(lock_path: Path, store_root: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock at ``lock_path`` (of the store at ``store_root``) for the block, or raise
    :class:`StoreLockedError` when another process still holds it after ``wait`` seconds (at
    once by default)."""
    fh = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        deadline = time.monotonic() + max(0.0, wait)
        pause = 0.01
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() < deadline:
                    # short pauses: a collector's commit holds the lock for a fraction of a second
                    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                    pause = min(pause * 2, 0.2)
                    continue
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise StoreLockedError(
                    f"the store {store_root} is being written by {holder}; wait for it to finish and run "
                    "the command again"
                ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"flowlens pid {os.getpid()} since {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
        fh.close()


@contextlib.contextmanager
def reader_lease(readers_path: Path) -> Iterator[bool]:
    """Hold a shared lock on ``<store>/.readers`` for the block: files a later commit replaces or
    removes stay on disk until no reader holds one (see :func:`readers_gone`). Yields whether the
    lease is held: a reader that cannot open the file (a read-only store that has never had one)
    reads without it, and a commit that removes files while it reads makes it fail with a
    message to run again instead of answering short."""
    try:
        fd = os.open(readers_path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        try:
            fd = os.open(readers_path, os.O_RDONLY)
        except OSError:
            yield False
            return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a writer holds it exclusively only while it deletes files
        yield True
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def readers_gone(readers_path: Path) -> Iterator[bool]:
    """Try to hold ``<store>/.readers`` exclusively for the block, without waiting: yields True
    when no reader holds a lease (files may be deleted now; a reader that comes meanwhile waits,
    then reads the manifest that no longer names them), False when one does."""
    try:
        fd = os.open(readers_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            yield False
            return
        yield True
    finally:
        os.close(fd)
