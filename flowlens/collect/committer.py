"""Commits of a live collector: records in, rows and quarantined lines out, with the position.

Every collector (:mod:`~flowlens.collect.goldmane`, :mod:`~flowlens.collect.receiver`) turns
what it receives into whole lines of a format flowlens reads (:class:`Lines`) and hands them,
with the position they bring it to, to a :class:`Committer`. Each :meth:`Committer.commit`:

1. takes the store's writer lock, waiting up to ``lock_wait`` seconds while another writer (a
   cron ``flowlens ingest``) holds it, so writers take turns;
2. parses the lines with the ingest parser and stages rows and quarantined lines exactly as
   ``flowlens ingest`` does (:mod:`flowlens.ingest.parse`, :mod:`~flowlens.ingest.rows`,
   :mod:`~flowlens.ingest.writer`): same schema, same checks, same quarantine reasons;
3. records the collector's position (and running totals: rows, quarantined lines) in the manifest
   (:func:`flowlens.store.collectors.set_collector_position`) and commits it with the rows in
   one atomic commit (:mod:`flowlens.store.commit`), then releases the lock.

So the lock is held for one micro-batch at a time, a kill at any moment leaves the store as it
was after the last commit with the position that describes it, and readers never see part of a
commit. The parser, its DuckDB connection and its caches last from commit to commit.

Between commits, once the senders of a commit have their answer, a collector calls
:meth:`Committer.maintain`: the store lifecycle ``flowlens ingest`` applies after each run
(:func:`flowlens.store.compact.maintain`: a closed day holding more than ``compact_files``
small files is compacted, then retention), at most every ``maintain_every`` seconds and one day
per call, so a collector that runs for months keeps a few files a day without holding the lock
long while records arrive (they are buffered meanwhile, as during a commit).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flowlens.errors import CollectError, FlowlensError, StoreLockedError
from flowlens.formats import get_format
from flowlens.ingest.accounting import FileSummary, Quarantine
from flowlens.ingest.lines import LineSplitter
from flowlens.ingest.options import DEFAULT_MAX_LINE_BYTES, IngestOptions
from flowlens.ingest.parse import BatchParser, LineBlock, ParsedBatch
from flowlens.ingest.rows import RowStager
from flowlens.ingest.writer import StagedCommit
from flowlens.store import Store, new_ingest_id, open_writer
from flowlens.store.collectors import collector_positions, set_collector_position
from flowlens.store.compact import maintain
from flowlens.store.lifecycle import Lifecycle

log = logging.getLogger("flowlens.collect")

# The row stager's caches (policy hits, label sets) grow with the distinct values seen; a
# collector that runs for months starts them afresh now and then.
COMMITS_PER_STAGER = 512
PARSE_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CollectOptions:
    """What every collector is asked to do with what it receives (``flowlens collect`` options)."""

    cluster: str | None = None  # overrides the record's own cluster
    default_cluster: str = "default"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    lock_wait: float = 120.0  # seconds a commit waits for another writer to release the store
    threads: int | None = None
    # compaction of closed days and retention between commits (flowlens.yaml's compact_files:
    # and retention:), checked at most every maintain_every seconds (0: after every commit)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    maintain_every: float = 60.0


@dataclass(frozen=True)
class Lines:
    """Records to commit: whole lines of format ``fmt`` (each ending in a newline), received from
    ``source`` (stored as the rows' ``source_file``)."""

    data: bytes
    fmt: str
    source: str


@dataclass(frozen=True)
class CommitResult:
    """What one commit stored."""

    commit_id: str
    lines: int
    rows: int
    quarantined: int
    ignored: int
    partitions: frozenset[str]
    seconds: float
    committed_at: str
    reasons: dict[str, int] = field(default_factory=dict)


class Committer:
    """Commits micro-batches of one collector (``name``) into ``store``; one commit at a time."""

    def __init__(
        self, store: Store, name: str, options: CollectOptions, now: dt.datetime | None = None
    ) -> None:
        self.store = store
        self.name = name
        self.options = options
        started = now or dt.datetime.now(dt.UTC)
        self.run_id = new_ingest_id(started)
        self.started_at = started.isoformat(timespec="seconds")
        self._ingest_options = IngestOptions(
            cluster=options.cluster,
            default_cluster=options.default_cluster,
            max_line_bytes=options.max_line_bytes,
            threads=options.threads,
        )
        self._parser = BatchParser(self._ingest_options, self._stage)
        # A micro-batch is small next to a file: cut it into batches small enough that both
        # parsers work on one commit (a 64 MB batch would leave one of them idle).
        self._parser.batch_bytes = PARSE_BATCH_BYTES
        self._quarantine = Quarantine(self.run_id, strict=False)
        self._stager = RowStager(self.run_id, options.max_line_bytes, self._quarantine)
        self._splitter = LineSplitter()
        self._staged: StagedCommit | None = None
        self._seq = 0
        self._lines_done = 0  # source_line of the rows: numbered across the run
        self._lock = threading.Lock()
        self._maintained: float | None = None  # time.monotonic() of the last maintenance check
        # Where this collector resumes: read with the lock held, once interrupted commits are
        # finished (a commit decided before a kill holds the newest position). A position written
        # by any commit but that one is another collector of the same name.
        store.root.mkdir(parents=True, exist_ok=True)
        with open_writer(store, wait=options.lock_wait) as writer:
            self.recovered = list(writer.recovered)
            self.resumed = collector_positions(writer.manifest).get(name)
        self._resumed_from = (self.resumed or {}).get("commit")

    def _stage(self, parsed: ParsedBatch) -> None:
        if self._staged is None:  # pragma: no cover - batches are only queued inside commit()
            raise RuntimeError("a batch was parsed outside a commit")
        self._stager.stage(parsed, self._staged)

    def position(self) -> dict[str, Any] | None:
        """This collector's position as the store's manifest records it now (None: never
        committed). A collector resumes from :attr:`resumed`, read when it started."""
        return collector_positions(self.store.read_manifest()).get(self.name)

    def commit(
        self, parts: Sequence[Lines], position: dict[str, Any], *, wait: float | None = None
    ) -> CommitResult:
        """Store ``parts`` and record ``position`` in the same atomic commit, waiting up to ``wait``
        seconds (default: ``lock_wait``) for the store's writer lock."""
        with self._lock:
            return self._commit(parts, position, self.options.lock_wait if wait is None else wait)

    def _commit(self, parts: Sequence[Lines], position: dict[str, Any], wait: float) -> CommitResult:
        started = time.perf_counter()
        with open_writer(self.store, wait=wait) as writer:
            manifest = copy.deepcopy(writer.manifest)
            before = collector_positions(manifest).get(self.name)
            self._check_owner(before)
            commit_id = f"{self.run_id}-{self._seq:05d}"
            self._seq += 1
            if self._seq % COMMITS_PER_STAGER == 0:
                self._stager = RowStager(self.run_id, self.options.max_line_bytes, self._quarantine)
            staged = StagedCommit(writer, commit_id, self._quarantine)
            self._staged = staged
            summaries: list[FileSummary] = []
            try:
                for part in parts:
                    summaries.append(self._queue(part))
                self._parser.flush()
                partitions = staged.close()
                committed_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                # running totals: the collector's own counts, and the rows and quarantined lines
                # of every commit so far (this one included)
                totals = dict(position.get("totals", {}))
                had = (before or {}).get("totals", {})
                totals["rows"] = int(had.get("rows", 0)) + sum(fs.rows for fs in summaries)
                totals["quarantined"] = int(had.get("quarantined", 0)) + sum(
                    fs.quarantined for fs in summaries
                )
                recorded = {
                    **position,
                    "totals": totals,
                    "run": self.run_id,
                    "run_started": self.started_at,
                    "committed_at": committed_at,
                    "commit": commit_id,
                }
                set_collector_position(manifest, self.name, recorded)
                staged.commit(manifest)
            except BaseException:
                self._parser.abandon()
                staged.abort()
                raise
            finally:
                self._staged = None
        reasons: dict[str, int] = {}
        for fs in summaries:
            for reason, n in fs.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + n
        return CommitResult(
            commit_id=commit_id,
            lines=sum(fs.lines_read for fs in summaries),
            rows=sum(fs.rows for fs in summaries),
            quarantined=sum(fs.quarantined for fs in summaries),
            ignored=sum(fs.ignored for fs in summaries),
            partitions=frozenset(partitions),
            seconds=time.perf_counter() - started,
            committed_at=committed_at,
            reasons=reasons,
        )

    def maintain(self, now: dt.datetime | None = None) -> list[str]:
        """Compact the oldest closed day that holds too many small files and apply retention, as
        ingest does after a run (one line per thing done), when ``maintain_every`` seconds have
        passed since the last check. Nothing when another writer holds the store: that writer
        (a ``flowlens ingest``) maintains it itself. A failure leaves the store as it was and
        is one line too; the next check tries again."""
        with self._lock:
            tick = time.monotonic()
            if self._maintained is not None and tick - self._maintained < self.options.maintain_every:
                return []
            self._maintained = tick
            try:
                with open_writer(self.store) as writer:
                    return maintain(
                        writer, self.options.lifecycle, now or dt.datetime.now(dt.UTC), max_days=1
                    )
            except StoreLockedError:
                self._maintained = None  # not a check: the next call tries again
                return []
            except (FlowlensError, OSError) as exc:
                return [f"could not compact or prune the store now ({exc}); the next check tries again"]

    def _queue(self, part: Lines) -> FileSummary:
        fmt = get_format(part.fmt)
        fs = FileSummary(path=part.source, format=fmt.name)
        data = part.data if part.data.endswith(b"\n") or not part.data else part.data + b"\n"
        lines = self._splitter.split(data)
        if len(lines):
            fs.lines_read = len(lines)
            self._parser.queue(LineBlock(lines, self._lines_done, fmt, fs), len(data))
            self._lines_done += len(lines)
        return fs

    def _check_owner(self, recorded: dict[str, Any] | None) -> None:
        """Refuse to write when another collector of the same name committed since this one
        started: two of them would each drop the other's records as duplicates, or double them."""
        if not recorded or recorded.get("run") == self.run_id or recorded.get("commit") == self._resumed_from:
            return
        raise CollectError(
            f"another collector named {self.name!r} (run {recorded.get('run')}) has committed to "
            f"{self.store.root} since this one started; run one collector per name and store "
            "(give each its own --name)"
        )

    def close(self) -> None:
        self._parser.close()


def maintain_and_log(committer: Committer) -> None:
    """What a collector runs after a commit's senders have their answer: :meth:`Committer.maintain`,
    each line it returns logged (a failure as a warning)."""
    for note in committer.maintain():
        failed = note.startswith("could not")
        log.log(
            logging.WARNING if failed else logging.INFO,
            "%s",
            note,
            extra={"event": "maintenance_failed" if failed else "maintenance", "fields": {"note": note}},
        )
