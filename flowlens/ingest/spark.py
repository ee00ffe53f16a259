"""Ingest on Spark: ``flowlens ingest --engine spark``, the sources parsed on the executors.

Owns :func:`ingest_spark`. The driver does what must happen once, the executors what takes the
time, and both run the code :func:`flowlens.ingest.ingest` runs, so that a record means the same
whichever engine stored it:

1. the driver checks the request (:func:`flowlens.ingest.runs.check_request`), takes the
   store's writer lock (:func:`flowlens.store.open_writer`: recovery of an interrupted commit,
   the integrity check) and stages one commit;
2. it groups the sources into *rounds*: the sources of a round start with different first lines
   (:func:`flowlens.ingest.checkpoints.head_key`), so no two of them can continue the same lineage;
   a copy of a file under another name waits for the next round and finds the first one's
   checkpoint there, as it would in a DuckDB ingest that read it second;
3. each round is one Spark job: ``spark.range`` gives one partition per task, a task being a
   share of the round's sources balanced by size, and ``mapInArrow`` runs :func:`run_task` on the
   executors. A task runs an :class:`~flowlens.ingest.pipeline.Ingester` (the same reading,
   lineage lookup, DuckDB parse, checks, quarantine, canonical rows, Parquet writer and hourly
   summaries) over a copy of the driver's manifest, and stages its files under
   ``.staging/<commit>/tasks/<task>/`` instead of committing them; it returns its per-file
   accounting, the lineages it advanced and the spans its rows hold, as one JSON text. A large
   uncompressed local source is read in byte ranges instead, a task each, whose results the
   driver makes one file's facts of (:mod:`flowlens.ingest.spark_split`); the planning is
   :mod:`flowlens.ingest.spark_plan`'s;
4. the driver takes the lineages into its manifest (a new lineage gets its id there, as in a
   DuckDB ingest), moves the tasks' files into the commit's staging folder and, after the last
   round, commits them with the manifest through :meth:`flowlens.store.StoreWriter.commit`:
   one atomic commit, so a run killed at any moment leaves the store as it was and the next run
   reads the sources again. Then, as a DuckDB ingest does, it backfills summaries and compacts.

The executors read the sources and write the staged files themselves: the store and the local
sources must be at the same paths on the driver and on every executor (one machine, or a shared
mount). Sources at Hadoop URLs are found and planned by the driver through Hadoop
(:mod:`flowlens.ingest.spark_sources`), and their bytes reach the tasks through Spark's
``binaryFile`` source (:func:`_url_batches`). Into a store at a Hadoop URL the tasks hand their
files' bytes back to the driver (:mod:`flowlens.ingest.spark_upload`), which commits them there
(:mod:`flowlens.store.hadoop_commit`).
Standard input is read by the DuckDB engine only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from flowlens.engine.settings import SparkSettings
from flowlens.errors import FlowlensError, InputError, StoreWriteError, StrictModeError, UsageError
from flowlens.ingest.accounting import FileSummary, IngestSummary
from flowlens.ingest.options import IngestOptions, ProgressFn
from flowlens.ingest.paths import STDIN
from flowlens.ingest.pipeline import Ingester
from flowlens.ingest.runs import check_request, new_run, record_run, store_write_error
from flowlens.ingest.spark_plan import (
    TaskSpec,
    configured_split_bytes,
    elasticsearch_for_driver,
    local_head_key,
    local_size,
    round_members,
    task_bytes,
)
from flowlens.ingest.spark_sources import HadoopSources, is_url
from flowlens.ingest.spark_split import SplitPlan, assemble, plan_round, read_part
from flowlens.ingest.spark_upload import SHIP_SCHEMA, fetch_partitions, receive, shipped
from flowlens.ingest.writer import StagedCommit
from flowlens.store import Span, Store, StoreWriter, duckdb_connection, open_writer
from flowlens.store.compact import maintain
from flowlens.store.hadoop_commit import UrlWriter, open_for_writing, open_url_writer, url_maintain
from flowlens.store.manifest import merge_spans
from flowlens.store.scratch import remove_leftovers
from flowlens.store.summaries import backfill as backfill_summaries

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

#: Under the commit's staging folder: each task's files, until the driver moves them in. Not a
#: folder a commit lists (flows, summaries and quarantine only), so a stray one is never committed.
TASK_DIR = "tasks"

#: The errors a task hands back to the driver by name, to be raised there as themselves.
_TASK_ERRORS: dict[str, type[FlowlensError]] = {
    "StrictModeError": StrictModeError,
    "InputError": InputError,
    "Unreadable": InputError,
}


class _TaskWriter(StoreWriter):
    """The :class:`StoreWriter` an executor's :class:`Ingester` stages into: the driver's manifest,
    and one folder of the driver's commit. It never commits: the driver holds the lock and commits."""

    def __init__(self, store: Store, manifest: dict[str, Any], folder: Path) -> None:
        # (StoreWriter.__init__ reads the manifest and journal: the driver's copy is the one to use)
        self.store = store
        self.manifest = manifest
        self.recovered = []
        self._folder = folder

    def stage(self, commit_id: str) -> Path:
        self._folder.mkdir(parents=True)
        return self._folder

    def commit(self, stage: Path, manifest: Any, **_: Any) -> list[str]:
        raise RuntimeError("internal: a Spark task stages its files; the driver commits them")


class _TaskIngester(Ingester):
    """An :class:`Ingester` whose files are named after its task (unique in the run's commit)."""

    def __init__(self, writer: StoreWriter, options: IngestOptions, ingest_id: str, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(writer, options, ingest_id)

    def _open_commit(self) -> None:
        self.staged = StagedCommit(self.writer, self.task_id, self.quarantine)

    def _hold(self) -> None:
        # A source whose records must be checked one by one against the store (a copy that
        # diverges from what is stored: flowlens.ingest.dedupe) is compared with everything
        # committed before it, this run's rows included, which a task cannot see: it is handed
        # back, unread, and the driver ingests it after committing the tasks' files.
        raise _HandedBack


class _HandedBack(Exception):
    """(In a task.) The source about to be read needs the record-by-record check: the driver reads it."""


class _CheckingIngester(Ingester):
    """(On the driver.) The :class:`Ingester` of the sources tasks handed back, after the tasks'
    files are committed; its files are named apart from the tasks' (``<ingest id>-c<seq>``)."""

    def _open_commit(self) -> None:
        self.staged = StagedCommit(self.writer, f"{self.ingest_id}-c{self._seq:03d}", self.quarantine)


def run_task(
    store_root: str,
    stage: str,
    manifest: dict[str, Any],
    options: IngestOptions,
    ingest_id: str,
    task: TaskSpec,
    attempt: int = 0,
    contents: dict[int, bytes] | None = None,
) -> dict[str, Any]:
    """(On an executor.) Ingest ``task``'s sources into ``<stage>/tasks/<task id>/<attempt>/``
    with the manifest as the driver holds it; what the driver needs to commit them, as
    JSON-ready data. ``contents``: the bytes of sources at Hadoop URLs (by index in the run),
    read by Spark (:func:`_url_batches`)."""
    # Each attempt of a task (Spark runs a failed or slow one again) stages into a folder of its
    # own; the driver takes the files of the attempt whose result it gets, and drops the rest.
    folder = Path(stage) / TASK_DIR / task.task_id / str(attempt)
    shutil.rmtree(folder, ignore_errors=True)
    known = {lineage["id"] for lineage in manifest["sources"]}
    summary = IngestSummary(ingest_id=ingest_id, store=store_root)
    run = _TaskIngester(
        _TaskWriter(Store(Path(store_root)), manifest, folder), options, ingest_id, task.task_id
    )
    part: dict[str, Any] | None = None
    try:
        indices, handed_back = [], []
        if task.part is not None:  # a range of one large source (flowlens.ingest.spark_split)
            part = read_part(run, task, summary)
            indices.append(task.sources[0][0])
        for index, path, fmt in task.sources if task.part is None else ():
            try:
                content = io.BytesIO(contents[index]) if contents and index in contents else None
                run.ingest_source(path, None, summary, fmt, content=content)
            except _HandedBack:
                summary.files.pop()  # (nothing of it was read, staged or recorded in the manifest)
                handed_back.append(index)
                continue
            indices.append(index)
        run.parser.flush()
        days = run.staged.close()
    except (StrictModeError, InputError) as exc:  # --strict: the run stops, nothing is written
        run.abort()
        return {"task": task.task_id, "folder": str(folder), "error": [type(exc).__name__, str(exc)]}
    except BaseException:
        run.abort()
        raise
    finally:
        run.close()
    before = {lineage["id"]: lineage for lineage in manifest["sources"]}
    return {
        "task": task.task_id,
        "folder": str(folder),
        "files": [[i, dataclasses.asdict(fs)] for i, fs in zip(indices, summary.files, strict=True)],
        "lineages": [s for s in run.manifest["sources"] if before.get(s["id"]) != s],
        "new": sorted({s["id"] for s in run.manifest["sources"]} - known),
        "spans": [span.as_json() for span in run._spans],
        "days": sorted(days),
        "handed_back": handed_back,
        **({"part": part} if part is not None else {}),
    }


def _task_batches(
    store_root: str,
    stage: str,
    manifest: dict[str, Any],
    options: IngestOptions,
    ingest_id: str,
    tasks: list[TaskSpec],
    ship: bool = False,
) -> Any:
    """The function ``mapInArrow`` runs: each partition of ``spark.range`` is one task's id.
    ``ship``: the tasks stage locally and hand their files back (:mod:`flowlens.ingest.spark_upload`)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        context = TaskContext.get()
        attempt = context.attemptNumber() if context is not None else 0
        for batch in batches:
            if ship:
                for n in batch.column(0).to_pylist():
                    yield from shipped(
                        run_task, store_root, manifest, options, ingest_id, tasks[int(n)], attempt
                    )
                continue
            results = [
                json.dumps(run_task(store_root, stage, manifest, options, ingest_id, tasks[int(n)], attempt))
                for n in batch.column(0).to_pylist()
            ]
            yield pa.RecordBatch.from_arrays([pa.array(results, pa.string())], names=["result"])

    return run


def _url_batches(
    store_root: str,
    stage: str,
    manifest: dict[str, Any],
    options: IngestOptions,
    ingest_id: str,
    round_number: int,
    sources: dict[str, tuple[int, str, str | None]],
    ship: bool = False,
) -> Any:
    """The function ``mapInArrow`` runs over the rows of Spark's ``binaryFile`` source (``path``,
    ``content``) for the round's sources at Hadoop URLs (``sources``: by the URL Spark names each
    one, its index in the run, the URL as given and its format): each partition is one task, which
    reads its sources in the run's order. (A round's sources start with different first lines, so
    no two of them continue one lineage: which task reads which does not change what is stored.)"""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        contents: dict[int, bytes] = {}
        for batch in batches:
            for name, content in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                contents[sources[name][0]] = content
        if not contents:
            return
        chosen = sorted((entry for entry in sources.values() if entry[0] in contents), key=lambda e: e[0])
        task = TaskSpec(f"{ingest_id}-r{round_number}-u{chosen[0][0]:06d}", tuple(chosen))
        context = TaskContext.get()
        attempt = context.attemptNumber() if context is not None else 0
        if ship:
            yield from shipped(run_task, store_root, manifest, options, ingest_id, task, attempt, contents)
            return
        result = run_task(store_root, stage, manifest, options, ingest_id, task, attempt, contents)
        yield pa.RecordBatch.from_arrays([pa.array([json.dumps(result)], pa.string())], names=["result"])

    return run


def _move_files(source: Path, target: Path) -> None:
    """Move every file under ``source`` to the same place under ``target`` (both staging folders of
    one store: a rename)."""
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        moved = target / path.relative_to(source)
        moved.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, moved)


class _Run:
    """The driver's side of one run: the manifest being built, the spans, the files' summaries."""

    def __init__(self, writer: StoreWriter, summary: IngestSummary, stage: Path, sizes: list[int]) -> None:
        self.writer = writer
        self.summary = summary
        self.stage = stage
        self.manifest: dict[str, Any] = json.loads(json.dumps(writer.manifest))
        self.spans: list[Span] = []
        self.files: dict[int, FileSummary] = {}
        #: the sources tasks handed back (indices in the run), for the driver to read
        self.handed_back: list[int] = []
        self.sizes = sizes  # the sources' bytes, by index in the run
        #: the sources of the round being run that are read in ranges, by index in the run
        self.splits: dict[int, SplitPlan] = {}
        #: their ranges' results, by index in the run and range number, until all are in
        self._parts: dict[int, dict[int, dict[str, Any]]] = {}

    def take(self, result: dict[str, Any]) -> None:
        """Take one task's result: its lineages into the manifest, its files into the commit (a
        range's, once every range of its source is in: :meth:`finish_splits`)."""
        if "error" in result:
            kind, message = result["error"]
            raise _TASK_ERRORS.get(kind, InputError)(message)
        folder = Path(result["folder"])
        if not folder.resolve().is_relative_to((self.stage / TASK_DIR).resolve()):
            raise StoreWriteError(f"internal: a Spark task staged its files outside the commit ({folder})")
        if "part" in result:
            ((index, _),) = result["files"]
            self._parts.setdefault(int(index), {})[int(result["part"]["number"])] = result
            return
        renamed: dict[str, str] = {}
        index = {lineage["id"]: i for i, lineage in enumerate(self.manifest["sources"])}
        for lineage in result["lineages"]:
            if lineage["id"] in result["new"]:
                # As a DuckDB ingest names it: by its place in the manifest (tasks cannot know it).
                renamed[lineage["id"]] = f"{self.summary.ingest_id}:{len(self.manifest['sources'])}"
                lineage["id"] = renamed[lineage["id"]]
                self.manifest["sources"].append(lineage)
            else:
                self.manifest["sources"][index[lineage["id"]]] = lineage
        for span in result["spans"]:
            span["lineage"] = renamed.get(span["lineage"], span["lineage"])
            self.spans.append(Span.from_json(span))
        for i, data in result["files"]:
            self.files[int(i)] = FileSummary(**data)
        self.handed_back.extend(int(i) for i in result["handed_back"])
        self.summary.partitions |= set(result["days"])
        _move_files(folder, self.stage)
        shutil.rmtree(folder, ignore_errors=True)

    def finish_splits(self, options: IngestOptions) -> None:
        """Make one file's facts of each split source's ranges (:func:`flowlens.ingest.spark_split.
        assemble`): its summary, its lineage and span, its ranges' files into the commit; a source
        that changed while being read keeps nothing of its ranges (with --strict the run stops)."""
        for index in sorted(self.splits):
            plan = self.splits[index]
            results = self._parts.pop(index, {})
            parts = {n: (FileSummary(**r["files"][0][1]), r["part"]) for n, r in results.items()}
            fs, span, problem = assemble(plan, parts, self.manifest, self.summary.ingest_id)
            if problem is not None and options.strict:
                raise InputError(f"{plan.path}: {problem} (--strict: nothing was written)")
            self.files[index] = fs
            for result in results.values():
                folder = Path(result["folder"])
                if problem is None:
                    self.summary.partitions |= set(result["days"])
                    _move_files(folder, self.stage)
                shutil.rmtree(folder, ignore_errors=True)
            if span is not None:
                self.spans.append(span)
        self.splits = {}


def _run_round(
    spark: SparkSession,
    run: _Run,
    options: IngestOptions,
    tasks: list[TaskSpec],
    round_number: int = 0,
    remote: HadoopSources | None = None,
) -> None:
    """One Spark job: every task of the round on the executors, their results taken in task order.
    Sources at Hadoop URLs (found by ``remote``) are read by Spark's ``binaryFile`` source, in tasks
    of their own (:func:`_url_batches`); local ones by the tasks planned for them."""
    ship = run.writer.store.files.remote  # (a store at a URL: the tasks hand their files back)
    root = str(run.writer.store.root if ship else run.writer.store.root.resolve())
    stage = str(run.stage.resolve())
    schema = SHIP_SCHEMA if ship else "result string"
    local = [
        dataclasses.replace(task, sources=tuple(s for s in task.sources if not is_url(s[1])))
        for task in tasks
    ]
    local = [task for task in local if task.sources]
    urls = [s for task in tasks for s in task.sources if is_url(s[1])]
    frames = []
    if local:
        job = _task_batches(root, stage, run.manifest, options, run.summary.ingest_id, local, ship)
        frames.append(spark.range(0, len(local), 1, numPartitions=len(local)).mapInArrow(job, schema))
    if urls:
        assert remote is not None
        named = {remote.qualified(url): (index, url, fmt) for index, url, fmt in urls}
        job = _url_batches(
            root, stage, run.manifest, options, run.summary.ingest_id, round_number, named, ship
        )
        read = spark.read.format("binaryFile").load([url for _, url, _ in urls])
        frames.append(read.select("path", "content").mapInArrow(job, schema))
    frame = frames[0] if len(frames) == 1 else frames[0].union(frames[1])
    try:
        if ship:
            size = sum(task_bytes(task, run.sizes) for task in tasks)
            results = receive(frame, run.stage, TASK_DIR, fetch_partitions(size, len(tasks)))
        else:
            results = [json.loads(row["result"]) for row in frame.collect()]
    except Exception as exc:  # a task failed past Spark's retries: py4j's error, whose last line says why
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise StoreWriteError(
            f"the Spark job stopped ({lines[-1].strip() if lines else type(exc).__name__}); nothing of "
            "this run was committed and the store is as it was"
        ) from None
    for result in sorted(results, key=lambda r: str(r["task"])):
        run.take(result)
    run.finish_splits(options)


def _read_handed_back(
    writer: StoreWriter,
    options: IngestOptions,
    summary: IngestSummary,
    run: _Run,
    files: list[tuple[str, str | None]],
    started: float,
    *,
    into: Path | None = None,
    remote: HadoopSources | None = None,
) -> None:
    """(On the driver.) Read the sources the tasks handed back, in the run's order, each checked
    record by record against everything stored and the tasks' files, and commit them with the
    run's record: in a commit of their own after the tasks' (committed before), or (``into``: the
    tasks' stage, not committed, with --strict) with the tasks' files in one commit."""
    rest = _CheckingIngester(writer, options, summary.ingest_id)
    try:
        if into is not None:
            rest.manifest = json.loads(json.dumps(run.manifest))
            rest.uncommitted = sorted((into / "flows").rglob("*.parquet"))
        for index in sorted(run.handed_back):
            source, fmt = files[index]
            content = io.BytesIO(remote.content(source)) if remote is not None and is_url(source) else None
            rest.ingest_source(source, None, summary, fmt, content=content)
            run.files[index] = summary.files.pop()  # (placed in the run's order below)
            if into is None:
                rest.maybe_commit(summary)
        summary.files.extend(run.files[i] for i in sorted(run.files))
        summary.seconds = time.perf_counter() - started
        if into is None:
            rest.commit(summary, final=True, engine="spark")
            return
        rest.parser.flush()
        summary.partitions |= rest.staged.close()
        _move_files(rest.staged.stage, into)
        writer.abort(rest.staged.stage)
        record_run(rest.manifest, summary, engine="spark")
        writer.commit(into, rest.manifest, spans=merge_spans([*run.spans, *rest._spans]))
    except BaseException:
        rest.abort()
        raise
    finally:
        rest.close()


def ingest_spark(
    store: Store,
    paths: Iterable[str | tuple[str, str | None]],
    options: IngestOptions | None = None,
    *,
    settings: SparkSettings | None = None,
    stdin: IO[bytes] | None = None,
    progress: ProgressFn | None = None,
    now: dt.datetime | None = None,
    lock_wait: float = 0.0,
    split_bytes: int | None = None,
) -> IngestSummary:
    """:func:`flowlens.ingest.ingest` on Spark (``settings``: the session's master and settings):
    the same rows, quarantine, accounting, lineages and commit, the sources parsed by Spark tasks.
    ``stdin`` is refused: standard input cannot be read by executors. ``split_bytes``: past how
    many bytes to read a source in ranges (:mod:`flowlens.ingest.spark_split`; 0: never; None:
    the session's ``spark.flowlens.ingest.splitBytes``, by default 128 MB)."""
    del stdin  # (the same call as ingest(); a "-" source is refused below)
    options = options or IngestOptions()
    paths = list(paths)
    if any((p[0] if isinstance(p, tuple) else p) == STDIN for p in paths):
        raise UsageError("standard input (-) is read by the DuckDB engine only: drop --engine spark for it")
    from flowlens.engine.spark import spark_session

    remote: HadoopSources | None = None
    if any(is_url(p[0] if isinstance(p, tuple) else p) for p in paths):
        spark = spark_session(settings)  # (Hadoop's file systems find the sources at URLs)
        remote = HadoopSources(spark)
        found = check_request(paths, options, find=remote.find)
    else:
        found = check_request(paths, options)
        spark = spark_session(settings)
    store = open_for_writing(store, spark)  # (a store at a URL: flowlens.store.hadoop_commit)
    slots = max(1, int(spark.sparkContext.defaultParallelism))
    split = configured_split_bytes(spark) if split_bytes is None else split_bytes
    started = time.perf_counter()
    summary, clock = new_run(store, found, now)
    ingest_id = summary.ingest_id
    committed = False
    keyed = [
        remote.head_key(path, fmt, options) if remote and is_url(path) else local_head_key(path, fmt, options)
        for path, fmt in found.files
    ]
    keys, formats = zip(*keyed, strict=True)
    sizes = [remote.size(path) if remote and is_url(path) else local_size(path) for path, _ in found.files]
    try:
        opened = open_url_writer if store.files.remote else open_writer
        with opened(store, wait=lock_wait) as writer:
            summary.recovered = writer.recovered
            left = remove_leftovers()  # (of drivers and tasks killed before: flowlens.store.scratch)
            if left:
                summary.recovered.append(
                    f"removed {len(left)} local staging folder(s) of Spark ingests whose process is gone "
                    f"({', '.join(str(p) for p in left[:3])}{', ...' if len(left) > 3 else ''})"
                )
            stage = writer.stage(f"{ingest_id}-000")
            try:
                run = _Run(writer, summary, stage, sizes)
                run.handed_back = elasticsearch_for_driver(list(formats), writer.manifest)
                local = [not is_url(path) for path, _ in found.files]
                for number, members in enumerate(round_members(list(keys), run.handed_back)):
                    tasks, run.splits = plan_round(
                        members,
                        found.files,
                        sizes,
                        slots,
                        run.manifest,
                        options,
                        ingest_id,
                        number,
                        split,
                        local,
                    )
                    _run_round(spark, run, options, tasks, number, remote)
                    if progress:
                        done = list(run.files.values())
                        progress(sum(f.bytes_read for f in done), sum(f.rows for f in done))
                shutil.rmtree(stage / TASK_DIR, ignore_errors=True)
                if run.handed_back and options.strict:
                    # --strict writes nothing unless every line is good: one commit, at the end
                    _read_handed_back(
                        writer, options, summary, run, found.files, started, into=stage, remote=remote
                    )
                elif run.handed_back:
                    writer.commit(stage, run.manifest, spans=merge_spans(run.spans))
                    _read_handed_back(writer, options, summary, run, found.files, started, remote=remote)
                else:
                    summary.files.extend(run.files[i] for i in sorted(run.files))
                    summary.seconds = time.perf_counter() - started
                    record_run(run.manifest, summary, engine="spark")
                    writer.commit(stage, run.manifest, spans=merge_spans(run.spans))
            except BaseException:
                writer.abort(stage)
                raise
            at_url = isinstance(writer, UrlWriter)
            if not at_url:
                con = duckdb_connection()
                try:
                    older = backfill_summaries(writer, con)
                finally:
                    con.close()
                if older:
                    summary.recovered.append(f"summarised {older} older flows file(s) for faster queries")
            committed = True
            summary.maintenance = (url_maintain if at_url else maintain)(writer, options.lifecycle, clock)
    except OSError as exc:
        raise store_write_error(exc, store, committed=committed) from None
    summary.seconds = time.perf_counter() - started
    return summary
