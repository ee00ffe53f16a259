"""``simulate`` on the Spark engine: the distinct flow keys evaluated on the executors when there
are too many for the driver.

Owns :func:`replay_on_spark`. The ``policy-flow-keys`` query runs on Spark and its rows are
cached and counted. Up to :data:`DRIVER_KEYS_CONF` rows (default :data:`DEFAULT_DRIVER_KEYS`),
the driver fetches them and replays them as on DuckDB (:func:`flowlens.policy.replay.replay_rows`).
Past it, the rows are partitioned by a hash of the flow key (labels aside, so that every row of
a key meets in one partition) and each partition is replayed in a Python worker
(``mapInArrow``) by the same :func:`~flowlens.policy.replay.replay_key`, with the driver's
:class:`~flowlens.policy.evaluate.Evaluator` shipped as a broadcast variable (one copy, and one
memo cache, per Python worker). Spark then sorts the replayed rows in simulate's order and the
driver reads them partition by partition: the keys' labels, rows and decisions never reach it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from flowlens.engine.spark import _first_line
from flowlens.errors import QueryError, UsageError
from flowlens.policy.evaluate import Evaluator
from flowlens.policy.replay import (
    _CHANGE_RANK,
    SimulationRow,
    _sort_key,
    group_rows,
    replay_key,
    replay_rows,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from flowlens.engine.spark import SparkEngine

#: The Spark setting (``--spark-conf``, ``spark-submit --conf``, ``spark-defaults.conf``) that
#: says how many rows of ``policy-flow-keys`` (distinct flow keys and recorded verdicts) the
#: driver replays itself; past it the executors do.
DRIVER_KEYS_CONF = "spark.flowlens.simulate.driverKeys"

#: The default of :data:`DRIVER_KEYS_CONF`: about half a GB of keys, labels and decisions on the driver.
DEFAULT_DRIVER_KEYS = 100_000

#: Replayed rows per Arrow batch a Python worker hands back.
BATCH_ROWS = 10_000

_FIELDS = tuple(f.name for f in dataclasses.fields(SimulationRow))
_LISTS = ("simulated_trace", "pending_trace", "notes")
_INTS = ("dest_port", "records", "records_allowed", "records_denied", "num_flows", "bytes")
_LABELS = pa.list_(pa.struct([("k", pa.string()), ("v", pa.string())]))

#: What a worker hands back: a :class:`SimulationRow`, the rank of its change, and the key's
#: label sets (sorted pairs), which simulate's order needs to break ties between keys.
REPLAYED_SCHEMA = pa.schema(
    [
        pa.field(
            name,
            pa.list_(pa.string())
            if name in _LISTS
            else pa.int64()
            if name in _INTS
            else pa.bool_()
            if name == "undecided"
            else pa.string(),
        )
        for name in _FIELDS
    ]
    + [("change_rank", pa.int32()), ("source_labels_order", _LABELS), ("dest_labels_order", _LABELS)]
)

#: The columns of ``policy-flow-keys`` a key's rows share (its labels aside): the partitioning.
_PARTITION_COLUMNS = (
    "reporter",
    "source_type",
    "source_namespace",
    "source_name",
    "source_name_aggr",
    "source_ip",
    "dest_type",
    "dest_namespace",
    "dest_name",
    "dest_name_aggr",
    "dest_ip",
    "proto",
    "dest_port",
)


def configured_driver_keys(engine: SparkEngine) -> int:
    """:data:`DRIVER_KEYS_CONF` of the engine's session, else :data:`DEFAULT_DRIVER_KEYS`."""
    text = engine.spark.conf.get(DRIVER_KEYS_CONF, None)
    if text is None or not text.strip():
        return DEFAULT_DRIVER_KEYS
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(
            f"--spark-conf {DRIVER_KEYS_CONF}={text}: give a number of flow keys (0 or more; "
            f"0 evaluates every key on the executors); the default is {DEFAULT_DRIVER_KEYS}"
        )
    return value


@dataclasses.dataclass(frozen=True)
class SparkReplay:
    """Replayed keys in simulate's order; ``executor_keys``: how many the executors evaluated
    (0 when the driver did), counted by the tasks themselves."""

    rows: list[SimulationRow]
    executor_keys: int


def replay_on_spark(
    engine: SparkEngine,
    evaluator: Evaluator,
    params: Mapping[str, Any],
    *,
    driver_keys: int | None = None,
) -> SparkReplay:
    """The replay of ``policy-flow-keys`` with ``params``, on the driver when its rows number at
    most ``driver_keys`` (None: :func:`configured_driver_keys`), else on the executors."""
    from pyspark import StorageLevel

    limit = configured_driver_keys(engine) if driver_keys is None else driver_keys
    frame = engine.frame("policy-flow-keys", params).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        if frame.count() <= limit:
            table = engine.collect("policy-flow-keys", frame, params)
            rows, _ = replay_rows(table.to_pylist(), evaluator)
            rows.sort(key=_sort_key)
            return SparkReplay(rows, 0)
        return _on_executors(engine, frame, evaluator)
    finally:
        frame.unpersist()


def _replayed(members: list[Mapping[str, Any]], key: tuple[Any, ...], evaluator: Evaluator) -> dict[str, Any]:
    sim = replay_key(members, evaluator)[0]
    out = {name: getattr(sim, name) for name in _FIELDS}
    for name in _LISTS:
        out[name] = list(out[name])
    out["change_rank"] = _CHANGE_RANK[sim.change]
    out["source_labels_order"] = _pairs(key[6])
    out["dest_labels_order"] = _pairs(key[12])
    return out


def _pairs(frozen: tuple[tuple[str, str], ...] | None) -> list[dict[str, str]] | None:
    return None if frozen is None else [{"k": k, "v": v} for k, v in frozen]


def _order(frame: DataFrame) -> list[Column]:
    """Simulate's order (:func:`~flowlens.policy.replay._sort_key`, then the full key as
    :func:`~flowlens.policy.replay.replay_rows` orders it) as Spark sort columns. Strings
    compare by their UTF-8 bytes, which is the order of their code points, as in Python."""
    from pyspark.sql import functions as F

    def blank(name: str) -> Column:
        return F.coalesce(F.col(name), F.lit(""))

    first: list[Column] = [
        F.col("change_rank"),
        blank("source_namespace"),
        blank("source_name_aggr"),
        blank("dest_namespace"),
        blank("dest_name_aggr"),
        blank("proto"),
        F.coalesce(F.col("dest_port"), F.lit(-1)),
        F.col("reporter"),
        blank("source_type"),
        blank("dest_type"),
        blank("source_name"),
        blank("dest_name"),
        blank("source_ip"),
        blank("dest_ip"),
    ]
    # The partitioning columns with each side's labels after its IP: the full key's order.
    full_key = [
        name
        for column in _PARTITION_COLUMNS
        for name in (column, f"{column[: -len('_ip')]}_labels_order" if column.endswith("_ip") else None)
        if name is not None
    ]
    return [c.asc_nulls_first() for c in first] + [F.col(c).asc_nulls_first() for c in full_key]


def _on_executors(engine: SparkEngine, frame: DataFrame, evaluator: Evaluator) -> SparkReplay:
    from pyspark.sql.pandas.types import from_arrow_schema

    context = engine.spark.sparkContext
    shipped = context.broadcast(evaluator)
    evaluated = context.accumulator(0)

    def replay(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        local = shipped.value  # one copy per Python worker, with its memo cache
        rows: list[Mapping[str, Any]] = []
        for batch in batches:
            rows.extend(batch.to_pylist())
        out: list[dict[str, Any]] = []
        count = 0
        for key, members in group_rows(rows).items():
            out.append(_replayed(members, key, local))
            count += 1
            if len(out) >= BATCH_ROWS:
                yield pa.RecordBatch.from_pylist(out, schema=REPLAYED_SCHEMA)
                out = []
        if out:
            yield pa.RecordBatch.from_pylist(out, schema=REPLAYED_SCHEMA)
        evaluated.add(count)

    partitions = 2 * max(1, context.defaultParallelism)  # a few per core, for balance
    replayed = (
        frame.repartition(partitions, *_PARTITION_COLUMNS)
        .mapInArrow(replay, from_arrow_schema(REPLAYED_SCHEMA))
        .persist()
    )
    try:
        ordered = replayed.orderBy(*_order(replayed)).select(*_FIELDS)
        rows = [_simulation_row(values) for values in ordered.toLocalIterator(prefetchPartitions=True)]
    except Exception as exc:  # a failed task (a lost executor, a worker out of memory): py4j's errors
        raise QueryError(f"simulate on Spark's executors failed: {_first_line(exc)}") from None
    finally:
        replayed.unpersist()
        shipped.destroy()
    return SparkReplay(rows, int(evaluated.value))


def _simulation_row(values: tuple[Any, ...]) -> SimulationRow:
    fields = dict(zip(_FIELDS, values, strict=True))
    for name in _LISTS:
        fields[name] = tuple(fields[name] or ())
    return SimulationRow(**fields)
