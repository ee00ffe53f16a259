"""Spark ingest into a store at a URL: the tasks' staged files reach the driver, which commits them.

An executor's Python cannot reach the Hadoop ``FileSystem`` of the driver's JVM, and may not see
the driver's disk. So for a store at a URL (:mod:`flowlens.store.hadoop_commit`) a task stages its
files in a temporary folder of its own, as for a local store, then hands their bytes back as rows
of its ``mapInArrow`` output (:data:`SHIP_SCHEMA`: ``file``, ``chunk`` of at most :data:`CHUNK`
bytes), followed by its result (``result``). :func:`receive` keeps the job's output on the
executors (memory, then disk) while every task runs in parallel, then streams it to the driver
one partition at a time, writing the chunks under the commit's local staging folder; the writer
uploads them through Hadoop when it decides the commit.

So the driver's network and disk carry every byte a run stores, twice (in, then up to the store):
its bandwidth bounds a URL store's ingest (docs/spark.md, the capacity model).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlens.errors import StoreWriteError

if TYPE_CHECKING:
    import pyarrow as pa

#: The output of a task that ships its files: chunks (``file``, ``chunk``), then one ``result``.
SHIP_SCHEMA = "result string, file string, chunk binary"

#: The largest chunk of a file in one row (rows are pickled to the driver one partition at a time).
CHUNK = 8 << 20


def _batch(result: str | None, file: str | None, chunk: bytes | None) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(
        [pa.array([result], pa.string()), pa.array([file], pa.string()), pa.array([chunk], pa.binary())],
        names=["result", "file", "chunk"],
    )


def shipped(run: Callable[..., dict[str, Any]], store_root: str, *args: Any) -> Iterator[pa.RecordBatch]:
    """(On an executor.) ``run(store_root, stage, *args)`` (:func:`flowlens.ingest.spark.run_task`
    staging under a new local folder ``stage``), then every file it staged in chunks, then its
    result, whose ``folder`` is made relative to the stage (the driver puts it under its own)."""
    stage = Path(tempfile.mkdtemp(prefix="flowlens-task-"))
    try:
        result = run(store_root, str(stage), *args)
        folder = Path(result["folder"])
        relative = folder.relative_to(stage)
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = (relative / path.relative_to(folder)).as_posix()
                with open(path, "rb") as fh:
                    chunk = fh.read(CHUNK)
                    yield _batch(None, name, chunk)  # (an empty file: one empty chunk)
                    while chunk := fh.read(CHUNK):
                        yield _batch(None, name, chunk)
        yield _batch(json.dumps({**result, "folder": relative.as_posix()}), None, None)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def receive(frame: Any, stage: Path, tasks_dir: str) -> list[dict[str, Any]]:
    """(On the driver.) Run the job ``frame`` (rows of :data:`SHIP_SCHEMA`), every task in
    parallel, its output kept on the executors; then stream it here, one partition at a time,
    writing each chunk under ``stage`` (inside its ``tasks_dir`` only); the tasks' results, each
    ``folder`` now under ``stage``."""
    from pyspark import StorageLevel

    inside = (stage / tasks_dir).resolve()
    kept = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        kept.count()  # every task runs now, in parallel
        results: list[dict[str, Any]] = []
        written: set[Path] = set()
        for row in kept.toLocalIterator():
            if row["result"] is not None:
                result = json.loads(row["result"])
                result["folder"] = str(stage / result["folder"])
                results.append(result)
                continue
            target = (stage / row["file"]).resolve()
            if not target.is_relative_to(inside):
                raise StoreWriteError(
                    f"internal: a Spark task shipped a file outside the commit ({row['file']})"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab" if target in written else "wb") as fh:
                fh.write(row["chunk"])
            written.add(target)
        return results
    finally:
        kept.unpersist()
