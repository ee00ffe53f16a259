"""Spark ingest into a store at a URL: the tasks' staged files reach the driver, which commits them.

An executor's Python cannot reach the Hadoop ``FileSystem`` of the driver's JVM, and may not see
the driver's disk. So for a store at a URL (:mod:`flowlens.store.hadoop_commit`) a task stages its
files in a temporary folder of its own, as for a local store, then hands their bytes back as rows
of its ``mapInArrow`` output (:data:`SHIP_SCHEMA`: ``file``, ``offset``, ``chunk`` of at most
:data:`CHUNK` bytes), followed by its result (``result``). :func:`receive` spreads the job's rows
by file and offset over enough partitions for each to hold some 16 MB (a shuffle:
the executors keep them on disk, and a task's output, one partition of the job, may be larger
than the driver's memory), every task running in parallel; then streams them to the driver one
partition at a time, writing each chunk at its offset under the commit's local staging folder;
the writer uploads the files through Hadoop when it decides the commit.

So the driver's network and disk carry every byte a run stores, twice (in, then up to the store):
its bandwidth bounds a URL store's ingest (docs/spark.md, the capacity model).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlens.errors import StoreWriteError
from flowlens.store.scratch import scratch_folder

if TYPE_CHECKING:
    import pyarrow as pa

#: The output of a task that ships its files: chunks (``file``, ``chunk``), then one ``result``.
SHIP_SCHEMA = "result string, file string, offset long, chunk binary"

#: The largest chunk of a file in one row.
CHUNK = 2 << 20

#: Source bytes per partition of the spread output: the Parquet files a task stages hold a
#: tenth to a sixtieth of the JSON logs it reads (zstd; the quarantine keeps bad lines compressed
#: too), so a partition the driver fetches at once is about 16 MB, rarely more than 40.
SOURCE_BYTES_PER_FETCH = 128 << 20


def fetch_partitions(source_bytes: int, tasks: int) -> int:
    """The partitions to spread the output of a job reading ``source_bytes`` over (each partition
    is one round trip: a Spark job)."""
    return max(1, tasks) + 2 * -(
        -max(0, source_bytes) // SOURCE_BYTES_PER_FETCH
    )  # (twice: hashing is uneven)


def _batch(result: str | None, file: str | None, offset: int | None, chunk: bytes | None) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_arrays(
        [
            pa.array([result], pa.string()),
            pa.array([file], pa.string()),
            pa.array([offset], pa.int64()),
            pa.array([chunk], pa.binary()),
        ],
        names=["result", "file", "offset", "chunk"],
    )


def shipped(run: Callable[..., dict[str, Any]], store_root: str, *args: Any) -> Iterator[pa.RecordBatch]:
    """(On an executor.) ``run(store_root, stage, *args)`` (:func:`flowlens.ingest.spark.run_task`
    staging under a new local folder ``stage``), then every file it staged in chunks, then its
    result, whose ``folder`` is made relative to the stage (the driver puts it under its own)."""
    stage = scratch_folder("flowlens-task-")  # (its owner named: flowlens.store.scratch)
    try:
        result = run(store_root, str(stage), *args)
        folder = Path(result["folder"])
        relative = folder.relative_to(stage)
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = (relative / path.relative_to(folder)).as_posix()
                with open(path, "rb") as fh:
                    offset, chunk = 0, fh.read(CHUNK)
                    yield _batch(None, name, 0, chunk)  # (an empty file: one empty chunk)
                    while len(chunk) == CHUNK and (chunk := fh.read(CHUNK)):
                        offset += CHUNK
                        yield _batch(None, name, offset, chunk)
        yield _batch(json.dumps({**result, "folder": relative.as_posix()}), None, None, None)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def receive(frame: Any, stage: Path, tasks_dir: str, partitions: int) -> list[dict[str, Any]]:
    """(On the driver.) Run the job ``frame`` (rows of :data:`SHIP_SCHEMA`), every task in
    parallel, its output spread over ``partitions`` (:func:`fetch_partitions`) on the executors;
    stream it here one partition at a time, writing each chunk at its offset under ``stage``
    (inside its ``tasks_dir`` only); the tasks' results, each ``folder`` now under ``stage``."""
    inside = (stage / tasks_dir).resolve()
    spread = frame.repartition(partitions, "file", "offset")
    results: list[dict[str, Any]] = []
    for row in spread.toLocalIterator():
        if row["result"] is not None:
            result = json.loads(row["result"])
            result["folder"] = str(stage / result["folder"])
            results.append(result)
            continue
        target = (stage / row["file"]).resolve()
        if not target.is_relative_to(inside):
            raise StoreWriteError(f"internal: a Spark task shipped a file outside the commit ({row['file']})")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, row["chunk"], int(row["offset"]))
        finally:
            os.close(fd)
    return results
