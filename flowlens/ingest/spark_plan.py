"""How ``flowlens ingest --engine spark`` shares a run's sources among Spark tasks.

Owns :class:`TaskSpec` (what one task reads), :class:`Part` (a byte range of one large source,
read by a task of its own: :mod:`flowlens.ingest.spark_split`), :func:`plan_rounds` (the rounds
of a run: the sources of a round start with different first lines, so no two of them can continue
one lineage: :func:`local_head_key`), :func:`elasticsearch_for_driver` (the sources the driver
reads itself) and :func:`configured_split_bytes` (the split size, a Spark setting).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from typing import Any

from flowlens.errors import UsageError
from flowlens.formats import detect
from flowlens.ingest.checkpoints import head_key
from flowlens.ingest.options import IngestOptions
from flowlens.ingest.runs import holds_elasticsearch
from flowlens.ingest.sources import HEAD_BYTES, Source, Unreadable

#: The Spark setting (``--spark-conf``, ``spark-submit --conf``, ``spark-defaults.conf``) that
#: says past how many bytes an uncompressed local source is read by several tasks, each a range
#: of about that many bytes; 0 reads every source whole in one task.
SPLIT_BYTES_CONF = "spark.flowlens.ingest.splitBytes"

#: The default of :data:`SPLIT_BYTES_CONF` on a cluster: 128 MB, Hadoop's block size (some 130 k
#: records of Calico Enterprise, two to three seconds of one core's parsing); none on ``local[*]``.
DEFAULT_SPLIT_BYTES = 128 << 20

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclasses.dataclass(frozen=True)
class Part:
    """Bytes ``start`` to ``end`` of one source (whole lines: ``start`` is where a line starts,
    ``end`` just after a newline), the ``number``-th range of it; ``first_line`` lines come
    before ``start``, so its first line is line ``first_line + 1``."""

    number: int
    start: int
    end: int
    first_line: int


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What one Spark task ingests: ``sources`` as ``(index in the run, path, format or None)``;
    with ``part``, the one source's range it reads (:mod:`flowlens.ingest.spark_split`)."""

    task_id: str
    sources: tuple[tuple[int, str, str | None], ...]
    part: Part | None = None


def task_bytes(task: TaskSpec, sizes: list[int]) -> int:
    """The bytes ``task`` reads (``sizes``: the sources' sizes, by index in the run)."""
    if task.part is not None:
        return task.part.end - task.part.start
    return sum(sizes[i] for i, _, _ in task.sources)


def local_head_key(path: str, fmt: str | None, options: IngestOptions) -> tuple[str, str | None]:
    """The key that tells whether two sources may continue one lineage (their first lines match),
    and the source's format (``fmt``, or as its first bytes tell it); a source that cannot be read
    gets a key of its own (its task reports the problem) and no format."""
    try:
        source = Source(path, None, max_expansion=options.max_expansion)
        try:
            with source.open() as stream:
                head = stream.read(HEAD_BYTES)
        finally:
            source.close()
    except (Unreadable, OSError, ValueError) as exc:
        return f"unreadable:{path}:{exc}", None
    except Exception:  # a cut gzip: SourceCut; its task reads what there is
        return f"cut:{path}", None
    return head_key(head), fmt or detect(head)


def elasticsearch_for_driver(formats: list[str | None], manifest: dict[str, Any]) -> list[int]:
    """The Elasticsearch sources the driver reads itself, after the tasks: all of them when the
    store already holds Elasticsearch hits or the run has two or more such sources, for their hits
    are then checked by document id against everything stored before them (exports of overlapping
    time windows share documents: :mod:`flowlens.ingest.dedupe`), which a task cannot see."""
    found = [i for i, fmt in enumerate(formats) if fmt == "elasticsearch"]
    return found if holds_elasticsearch(manifest) or len(found) > 1 else []


def local_size(path: str) -> int:
    """The size of a local source (0: it cannot be read; its task says why)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def round_members(keys: list[str], skip: Iterable[int] = ()) -> list[list[int]]:
    """The sources (indices) of each round: round ``r`` holds the ``r``-th source of each first
    line (``keys``), in the run's order. The sources ``skip`` are left to the driver."""
    seen: dict[str, int] = {}
    rounds: list[list[int]] = []
    left_out = set(skip)
    for index, key in enumerate(keys):
        if index in left_out:
            continue
        number = seen.get(key, 0)
        seen[key] = number + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(index)
    return rounds


def bin_round(
    members: list[int],
    files: list[tuple[str, str | None]],
    sizes: list[int],
    slots: int,
    ingest_id: str,
    round_number: int,
) -> list[TaskSpec]:
    """The round's sources ``members`` (read whole) shared among at most ``slots`` tasks with
    about the same bytes each (largest first, each to the task with the fewest bytes; a task
    reads its sources in the run's order)."""
    count = max(1, min(slots, len(members)))
    bins: list[list[int]] = [[] for _ in range(count)]
    loads = [0] * count
    for index in sorted(members, key=lambda i: (-sizes[i], i)):
        lightest = loads.index(min(loads))
        bins[lightest].append(index)
        loads[lightest] += sizes[index]
    return [
        TaskSpec(f"{ingest_id}-r{round_number}-t{t:04d}", tuple((i, *files[i]) for i in sorted(b)))
        for t, b in enumerate(bins)
        if b
    ]


def plan_rounds(
    files: list[tuple[str, str | None]],
    keys: list[str],
    sizes: list[int],
    slots: int,
    ingest_id: str,
    skip: Iterable[int] = (),
) -> list[list[TaskSpec]]:
    """The rounds of a run, each shared among at most ``slots`` tasks (:func:`round_members`,
    :func:`bin_round`), every source read whole. The sources ``skip`` are left to the driver."""
    return [
        bin_round(members, files, sizes, slots, ingest_id, r)
        for r, members in enumerate(round_members(keys, skip))
    ]


def parse_split_bytes(text: str) -> int:
    """A split size as given to :data:`SPLIT_BYTES_CONF`: bytes, or with a unit as Spark writes
    sizes (``128m``, ``1g``, ``512MB``); 0 turns splitting off."""
    match = re.fullmatch(r"\s*(\d[\d_]*)\s*([kmgt]?)i?b?\s*", text.lower())
    if match is None:
        raise UsageError(
            f"--spark-conf {SPLIT_BYTES_CONF}={text}: give a size in bytes, e.g. 134217728, 128m or 1g "
            f"(0 reads each source in one task); the default is {DEFAULT_SPLIT_BYTES >> 20}m"
        )
    return int(match.group(1).replace("_", "")) * _UNITS[match.group(2)]


def configured_split_bytes(spark: Any) -> int:
    """:data:`SPLIT_BYTES_CONF` of the session ``spark``; unset, :data:`DEFAULT_SPLIT_BYTES` on a
    cluster and 0 (no splitting) on a local master: on one machine a single task already keeps
    its cores busy, and ranges only add the driver's pass and a cost per task (measured in
    docs/spark.md: 1.03-1.26x the wall time on ``local[2]``)."""
    text = spark.conf.get(SPLIT_BYTES_CONF, None)
    if text is None or not str(text).strip():
        master = str(spark.sparkContext.master or "")
        return 0 if master.startswith("local") else DEFAULT_SPLIT_BYTES
    return parse_split_bytes(str(text))
