"""The Spark engine: the same store, views and named queries on Apache Spark SQL.

Owns:

* :func:`spark_session` — the Spark session flowlens runs on (:class:`~flowlens.engine.settings.SparkSettings`): the
  master (``local[*]`` unless given, or whatever ``spark-submit`` set up), ``--spark-conf``
  settings on top of ``spark-defaults.conf``, and the few settings flowlens' SQL needs (UTC
  session time zone, SQL's ``NULL`` on an index past a list's end, hashing of label maps);
* :func:`connect_spark` — a :class:`SparkEngine` whose ``flows`` view covers the committed Parquet
  files of a time window (the same files :func:`flowlens.engine.window.select_files` gives the
  DuckDB engine, filtered on ``start_time`` with bound values), and whose ``flow_summary`` view is
  put together as :func:`flowlens.engine.window.plan_summary` says: the stored hourly summaries for
  whole hours, the rest grouped on the executors by flowlens' own
  :func:`flowlens.store.summaries.summarise_table` (the code ingest writes the summaries with);
* :func:`to_spark_sql` — a query written for DuckDB (``queries/*.sql``, the user's own, or ad-hoc
  SQL) as Spark SQL: the SQL functions written out (:func:`flowlens.engine.functions.inline_functions`),
  sqlglot's DuckDB-to-Spark transpilation, ``$name`` parameters as Spark's ``:name`` markers (Spark
  binds the values; nothing is formatted into the SQL), and the views renamed to this engine's own.

One source of truth: the query files are written once, in DuckDB's dialect. The types and column
names of every result are DuckDB's: the engine binds the same query on an empty DuckDB store
(microseconds of work) and casts Spark's Arrow result to that schema, so a caller cannot tell the
engines apart by their tables. Rows come in the query's order (its ``ORDER BY``).

pyspark is an optional dependency (``pip install 'flowlens[spark]'``): nothing imports this
module unless the Spark engine is chosen.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from flowlens.engine.base import FLOWS_SCHEMA, Engine, check_limit
from flowlens.engine.duckdb import DuckDBEngine, connect
from flowlens.engine.functions import load_functions
from flowlens.engine.queries import QuerySpec, load_queries
from flowlens.engine.settings import SparkSettings
from flowlens.engine.window import SummaryPlan, plan_summary, resolve_window, select_files
from flowlens.errors import QueryError, StoreError, UsageError
from flowlens.store import Store
from flowlens.store.hadoop import open_hadoop
from flowlens.store.summaries import INPUT_COLUMNS, SUMMARY_COLUMNS, summarise_table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: The settings flowlens' SQL needs, whatever else the session has. The session time zone is UTC
#: (the store's timestamps are UTC, as in the DuckDB engine's session); ANSI mode is off so that
#: ``list[i]`` past a list's end is NULL, as in DuckDB (``enforced_policies[len(...)]`` of an
#: empty trace); label maps may be hashed (``suggest-edges`` groups label sets by their hash).
REQUIRED_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.legacy.allowHashOnMapType": "true",
}

#: Defaults a session gets unless ``spark-defaults.conf`` or ``--spark-conf`` says otherwise.
DEFAULT_CONF: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

#: Defaults of a session in local mode, on top of :data:`DEFAULT_CONF`.
LOCAL_CONF: dict[str, str] = {"spark.ui.enabled": "false"}

DEFAULT_MASTER = "local[*]"


# PySpark warns on each pandas-backed call that it "does not yet fully support pandas >= 3.0.0";
# flowlens hands it Arrow only (its tests run the Spark engine with the pandas it installs), so
# the warning says nothing to a user and is not shown.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """The Spark session flowlens runs on, started when there is none.

    A session that already runs (a notebook, an earlier call) is reused, with ``settings.conf``
    and :data:`REQUIRED_CONF` set on it; its master cannot change. Otherwise the session is built
    on the JVM of ``spark-submit`` when flowlens runs under it, or on one started now: either way
    the master and settings of ``spark-submit`` and ``spark-defaults.conf`` hold unless
    ``settings`` say otherwise (:data:`DEFAULT_CONF` holds unless ``settings`` say otherwise, and
    :data:`LOCAL_CONF` in local mode unless any of them does).
    Raises :class:`UsageError` when pyspark is not installed or Spark cannot start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError(
            "the Spark engine needs pyspark: pip install 'flowlens[spark]' (and Java 17 or later)"
        ) from None
    settings = settings or SparkSettings()
    conf = dict(settings.conf)
    active = SparkSession.getActiveSession()
    if active is None:
        try:
            active = _new_session(settings.master, conf)
        except Exception as exc:  # Java missing, a bad master, a bad setting: py4j's own errors
            raise UsageError(f"cannot start Spark: {_first_line(exc)}") from None
    for key, value in {**conf, **REQUIRED_CONF}.items():
        if key.startswith("spark.hadoop."):
            # Hadoop's settings (a file system's mount table, keys, endpoint), as a new session
            # copies them into its Hadoop configuration: a running one does not on its own.
            active._jsc.hadoopConfiguration().set(key.removeprefix("spark.hadoop."), value)
        if _current(active, key) == value:
            continue  # (a static setting the session was started with: setting it again fails)
        try:
            active.conf.set(key, value)
        except Exception:  # a static setting, fixed when the running session started
            raise UsageError(
                f"--spark-conf {key}: Spark is already running and this setting cannot change now; "
                "give it to spark-submit (--conf) or in spark-defaults.conf"
            ) from None
    return active


def _new_session(master: str | None, conf: dict[str, str]) -> SparkSession:
    """A new session: the JVM first (spark-submit's, or one started with ``conf`` for its own
    settings, such as the driver's memory), then what it already holds decides the defaults."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    launch = dict(conf)
    if master is not None:
        launch["spark.master"] = master
    # Under spark-submit this connects to its JVM; otherwise it starts one, which reads
    # spark-defaults.conf as spark-submit does. Either way the JVM's settings are now known.
    SparkContext._ensure_initialized(conf=SparkConf(loadDefaults=False).setAll(list(launch.items())))
    present = SparkConf()
    chosen = master or present.get("spark.master", None) or DEFAULT_MASTER
    # DEFAULT_CONF holds even over the JVM's: a Python process that starts Spark itself starts it
    # as a shell, which turns on the console progress bar (on stderr, not for flowlens' users).
    defaults = dict(DEFAULT_CONF)
    if chosen.startswith("local"):
        # A command's session on this machine: nobody watches its web UI, whose server costs
        # seconds of every start (and a free port, probed from 4040 up).
        defaults |= {key: value for key, value in LOCAL_CONF.items() if not present.contains(key)}
        if not present.contains("spark.pyspark.python"):
            # Local workers run flowlens' own code (the summaries): this Python, which has it.
            defaults["spark.pyspark.python"] = sys.executable
    if not present.contains("spark.app.name"):
        defaults["spark.app.name"] = "flowlens"
    builder = SparkSession.builder.master(chosen)
    for key, value in {**defaults, **conf, **REQUIRED_CONF}.items():
        builder = builder.config(key, value)
    session: SparkSession = builder.getOrCreate()
    # spark-submit turns spark.pyspark.python into the workers' Python; a plain Python process
    # that starts Spark itself does not, so honour the setting here.
    context = session.sparkContext
    context.pythonExec = context.getConf().get("spark.pyspark.python", context.pythonExec)
    # A failed query reaches the user as one QueryError line; Spark would log it at length.
    context.setLogLevel(conf.get("spark.log.level", present.get("spark.log.level", "OFF")))
    return session


def _current(spark: SparkSession, key: str) -> str | None:
    """The session's value of ``key`` (None: not set, or not readable)."""
    try:
        return spark.conf.get(key, None)
    except Exception:  # a setting Spark will not show
        return None


# ---------------------------------------------------------------------------------------------
# SQL: DuckDB's dialect in, Spark's out.

_ENGINE_IDS = itertools.count(1)


#: Columns of the ``flows`` view that hold lists: DuckDB's ``len()`` of a list is Spark's
#: ``array_size()`` (sqlglot, which does not know the columns' types, writes ``length()``).
LIST_COLUMNS = frozenset(f.name for f in FLOWS_SCHEMA if pa.types.is_list(f.type))


def to_spark_sql(
    sql: str, tables: Mapping[str, str] | None = None, lists: frozenset[str] = LIST_COLUMNS
) -> str:
    """``sql`` (DuckDB's dialect, ``$name`` parameters) as Spark SQL with ``:name`` markers.

    Calls of flowlens' SQL functions are written out first; ``tables`` renames tables
    (``{"flows": "flowlens_3_flows"}``), keeping the original name as the alias so that qualified
    columns still resolve; ``len()`` of a column named in ``lists`` is ``array_size()``, and
    ``hash()`` (64 bits in DuckDB) is ``xxhash64()``. Raises :class:`QueryError` when sqlglot cannot read the SQL or Spark
    has no equivalent of something it uses.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from flowlens.engine.functions import inline_functions

    try:
        statements = [s for s in sqlglot.parse(inline_functions(sql, load_functions()), read="duckdb") if s]
        if len(statements) != 1:
            raise QueryError(f"give one SQL statement, not {len(statements)}")
        tree = statements[0]
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in list(tree.find_all(exp.Table)):
            name = table.name
            if tables and name in tables and name not in ctes and not table.args.get("db"):
                table.set("this", exp.to_identifier(tables[name]))
                if not table.alias:
                    table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
        for call in list(tree.find_all(exp.Anonymous)):
            if str(call.this).lower() == "hash":
                # DuckDB's hash() is 64 bits; Spark's hash() is 32, its xxhash64() 64 (the bits of
                # the result are read as DuckDB's unsigned type).
                call.set("this", "xxhash64")
        for length in list(tree.find_all(exp.Length)):
            if isinstance(length.this, exp.Column) and length.this.name in lists:
                length.replace(exp.Anonymous(this="array_size", expressions=[length.this]))
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise QueryError(f"cannot run this SQL on Spark: {exc}") from None


class SparkEngine(Engine):
    """A Spark session with this window's ``flows`` and ``flow_summary`` views and the named queries.

    Views and registered tables are temporary views of the session under names of this engine's
    own (``flowlens_<n>_flows``), so that engines opened one after the other, or side by side, in
    one session never read each other's tables; queries name them as usual (``flows``).
    """

    def __init__(
        self,
        spark: SparkSession,
        store: Store,
        files: Sequence[Path],
        since: dt.datetime | None,
        until: dt.datetime | None,
        queries: Mapping[str, QuerySpec],
        shape: DuckDBEngine,
        shape_dir: tempfile.TemporaryDirectory[str],
    ) -> None:
        super().__init__(store, files, since, until, queries)
        self.spark = spark
        self._prefix = f"flowlens_{next(_ENGINE_IDS)}_"
        self._tables: dict[str, str] = {}
        # An engine over an empty store with the same queries: the types of each result.
        self._shape = shape
        self._shape_dir = shape_dir

    # The views and registered tables ---------------------------------------------------------

    def _view(self, name: str, frame: DataFrame) -> None:
        real = self._prefix + name
        frame.createOrReplaceTempView(real)
        self._tables[name] = real

    def register(self, name: str, table: pa.Table) -> None:
        self._view(name, self.spark.createDataFrame(table))
        self._shape.register(name, table.schema.empty_table())

    def unregister(self, name: str) -> None:
        real = self._tables.pop(name, None)
        if real is not None:
            self.spark.catalog.dropTempView(real)
        self._shape.unregister(name)

    def close(self) -> None:
        for real in self._tables.values():
            self.spark.catalog.dropTempView(real)
        self._tables.clear()
        self._shape.close()
        self._shape_dir.cleanup()

    def frame(self, name: str, params: Mapping[str, Any] | None = None) -> DataFrame:
        """The named query as a Spark DataFrame (for callers who want to go on in Spark)."""
        values = self.bind(name, params)
        spec = self.query(name)
        return self._frame(spec.sql, values, f"query {name!r} ({spec.origin})")

    def _frame(self, sql: str, values: Mapping[str, Any], what: str) -> DataFrame:
        text = to_spark_sql(sql, self._tables)
        try:
            return self.spark.sql(text, args=dict(values) or None)
        except Exception as exc:  # pyspark's AnalysisException and friends
            raise QueryError(f"{what} failed on Spark: {_first_line(exc)}") from None

    def run(
        self, name: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run a named query with bound parameters; at most ``limit`` rows, in the query's order."""
        check_limit(limit)
        return self.collect(name, self.frame(name, params), params, limit=limit)

    def collect(
        self,
        name: str,
        frame: DataFrame,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
    ) -> pa.Table:
        """``frame`` (the named query's :meth:`frame` with these ``params``, perhaps cached or
        counted first) fetched as :meth:`run` returns it: DuckDB's column names and types."""
        shape = self._shape.run(name, params, limit=0).schema
        return self._fetch(frame, shape, limit, f"query {name!r}")

    def sql(
        self, text: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> pa.Table:
        """Run ad-hoc SQL (DuckDB's dialect) against the ``flows`` view, with bound parameters."""
        check_limit(limit)
        shape = self._shape.sql(text, params, limit=0).schema
        return self._fetch(self._frame(text, params or {}, "SQL"), shape, limit, "SQL")

    @staticmethod
    def _fetch(frame: DataFrame, shape: pa.Schema, limit: int | None, what: str) -> pa.Table:
        if limit is not None:
            frame = frame.limit(limit)
        try:
            table = frame.toArrow()
        except Exception as exc:
            raise QueryError(f"{what} failed on Spark: {_first_line(exc)}") from None
        if table.num_columns != len(shape):
            raise QueryError(f"{what}: Spark gave {table.num_columns} columns, DuckDB {len(shape)}")
        try:
            return _conform(table.rename_columns(shape.names), shape)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise QueryError(f"{what}: Spark's result does not fit DuckDB's types: {exc}") from None


def _conform(table: pa.Table, shape: pa.Schema) -> pa.Table:
    """``table`` cast to ``shape``; a 64-bit hash (signed in Spark, unsigned in DuckDB) keeps its bits."""
    columns = []
    for column, target in zip(table.columns, shape, strict=True):
        if pa.types.is_uint64(target.type) and pa.types.is_int64(column.type):
            column = pa.chunked_array([chunk.view(pa.uint64()) for chunk in column.chunks], pa.uint64())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=shape.names).cast(shape)


def _first_line(exc: BaseException) -> str:
    """The line of a Spark error that says what went wrong (for a Python worker, its last line)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "Python worker" in lines[0] and len(lines) > 1:
        return f"{lines[0]} {lines[-1].strip()}"
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Opening a window


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _in_range(frame: DataFrame, column: str, low: dt.datetime | None, high: dt.datetime | None) -> DataFrame:
    """``frame`` limited to ``low <= column < high`` (a None bound is no limit), values bound."""
    from pyspark.sql import functions as F

    if low is not None:
        frame = frame.filter(F.col(column) >= F.lit(low))
    if high is not None:
        frame = frame.filter(F.col(column) < F.lit(high))
    return frame


def _flows_frame(
    spark: SparkSession,
    store: Store,
    files: Sequence[Path],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> DataFrame:
    """The window's records with :data:`FLOWS_SCHEMA`; columns a file lacks (an older store) are NULL."""
    schema = _spark_schema(FLOWS_SCHEMA)
    if not files:
        return spark.createDataFrame([], schema)
    uri = store.files.uri
    reader = spark.read.schema(schema).option("basePath", uri(store.flows_dir))
    frame = reader.parquet(*[uri(f) for f in files])
    return _in_range(frame, "start_time", since, until).select(*FLOWS_SCHEMA.names)


def _summary_schema() -> pa.Schema:
    return summarise_table(FLOWS_SCHEMA.empty_table()).schema


def summarise_frame(frame: DataFrame) -> DataFrame:
    """The hourly summary rows of ``frame``'s records (flows schema), grouped on the executors by
    :func:`flowlens.store.summaries.summarise_table`, batch by batch: a group may have a row per
    batch, which readers of ``flow_summary`` sum (as they do the rows ingest appends)."""
    schema = _summary_schema()

    def summarise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                yield from summarise_table(pa.Table.from_batches([batch])).to_batches()

    return frame.select(*INPUT_COLUMNS).mapInArrow(summarise, _spark_schema(schema))


def _summary_frame(spark: SparkSession, store: Store, plan: SummaryPlan) -> DataFrame:
    """The ``flow_summary`` view as ``plan`` says (see :func:`flowlens.engine.duckdb.connect`)."""
    from pyspark.sql import functions as F

    parts: list[DataFrame] = []
    summarised = [flows_file for flows_file, _ in plan.summarised]
    if summarised and plan.edges:
        # Records of summarised files outside the whole hours: the window's partial edge hours.
        raw = _flows_frame(spark, store, summarised, plan.since, plan.until)
        start = F.col("start_time")
        outside: Column | None = None
        for low, high in plan.edges:
            part = (start >= F.lit(low)) & (start < F.lit(high))
            outside = part if outside is None else outside | part
        assert outside is not None
        parts.append(summarise_frame(raw.filter(outside)))
    if plan.group_unsummarised:
        parts.append(summarise_frame(_flows_frame(spark, store, plan.unsummarised, plan.since, plan.until)))
    if plan.summarised:
        stored = spark.read.schema(_spark_schema(_summary_schema())).parquet(
            *[store.files.uri(path) for _, path in plan.summarised]
        )
        parts.append(_in_range(stored, "hour", plan.hours_from, plan.hours_until))
    result = parts[0].select(*SUMMARY_COLUMNS)
    for other in parts[1:]:
        result = result.unionByName(other.select(*SUMMARY_COLUMNS))
    return result


def connect_spark(
    store: Store | Path | str,
    *,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
    query_dirs: Iterable[Path | str] = (),
    now: dt.datetime | None = None,
    summaries: bool = True,
    settings: SparkSettings | None = None,
) -> SparkEngine:
    """A :class:`SparkEngine` over the store's committed files in ``[since, until)``.

    The arguments mean what they mean for :func:`flowlens.engine.connect`; ``settings`` say how
    to get the Spark session (:func:`spark_session`). The store may be at a Hadoop URL
    (``hdfs://nn/data/store``, given as a string or a :class:`Store` made from one): the driver
    reads its manifest through Hadoop's ``FileSystem`` (:mod:`flowlens.store.hadoop`) and Spark
    reads the files at their URLs.
    """
    if not isinstance(store, Store):
        store = Store.at(store)
    since_at, until_at = resolve_window(since, until, now or dt.datetime.now(dt.UTC))
    dirs = list(query_dirs)
    queries = load_queries(dirs)
    if not store.files.remote:
        files = select_files(store, since_at, until_at)  # a damaged store fails before Spark starts
    spark = spark_session(settings)
    if store.files.remote:
        store = open_hadoop(store, spark)
        files = select_files(store, since_at, until_at)
    shape_dir = tempfile.TemporaryDirectory(prefix="flowlens-shape-")
    shape = connect(Path(shape_dir.name) / "empty", query_dirs=dirs)
    engine = SparkEngine(spark, store, files, since_at, until_at, queries, shape, shape_dir)
    try:
        engine._view("flows", _flows_frame(spark, store, files, since_at, until_at))
        plan = plan_summary(store, files, since_at, until_at, summaries)
        engine._view("flow_summary", _summary_frame(spark, store, plan))
    except Exception as exc:
        engine.close()
        if isinstance(exc, QueryError | UsageError):
            raise
        raise StoreError(
            f"cannot read the store at {store.location!r} with Spark: {_first_line(exc)}"
        ) from None
    return engine
