"""Which engine runs a command: DuckDB (the default, in process) or Apache Spark.

Owns :class:`EngineChoice` (an engine's name and, for Spark, how to get the session) and
:func:`open_engine`, which opens the chosen engine over a store and a window with the arguments
of :func:`flowlens.engine.connect`. Commands take ``--engine`` (also ``engine:`` in
``flowlens.yaml`` and ``$FLOWLENS_ENGINE``, read by the command line) and pass the choice down;
the Spark engine's module, and pyspark, are loaded only when it is chosen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flowlens.engine.base import Engine
from flowlens.engine.settings import SparkSettings
from flowlens.errors import UsageError
from flowlens.store import Store

#: The engines a command can run on; the first is the default.
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class EngineChoice:
    """The engine a command runs on (one of :data:`ENGINES`) and, for Spark, its settings."""

    name: str = ENGINES[0]
    spark: SparkSettings = field(default_factory=SparkSettings)

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise UsageError(f"unknown engine {self.name!r}; choose one of: {', '.join(ENGINES)}")


def reach(store: Store, choice: EngineChoice) -> Store:
    """``store`` ready for ``choice``'s engine: a store at a Hadoop URL is opened on the Spark
    session (:func:`flowlens.store.hadoop.open_hadoop`) when the engine is Spark; on DuckDB its
    first file operation refuses with what to do."""
    if not store.files.remote:
        return store
    if choice.name != "spark":
        store.files.is_dir(store.root)  # refuses, saying to add --engine spark or mount it
        return store
    from flowlens.engine.spark import spark_session
    from flowlens.store.hadoop import open_hadoop

    return open_hadoop(store, spark_session(choice.spark))


def open_engine(
    store: Store | Path | str,
    choice: EngineChoice | None = None,
    *,
    since: dt.datetime | str | None = None,
    until: dt.datetime | str | None = None,
    query_dirs: Iterable[Path | str] = (),
    now: dt.datetime | None = None,
    summaries: bool = True,
    external_access: bool = False,
) -> Engine:
    """The chosen engine (DuckDB unless ``choice`` says Spark) over the store's window.

    DuckDB runs SQL sandboxed to the window's files unless ``external_access``
    (:mod:`flowlens.engine.sandbox`). Spark has no such sandbox: Spark SQL reads any path the
    cluster can (``external_access`` does not apply there), which is why ``flowlens query --sql``
    on Spark asks for ``--allow-external``."""
    choice = choice or EngineChoice()
    if choice.name == "spark":
        from flowlens.engine.spark import connect_spark

        return connect_spark(
            store,
            since=since,
            until=until,
            query_dirs=query_dirs,
            now=now,
            summaries=summaries,
            settings=choice.spark,
        )
    from flowlens.engine.duckdb import connect

    return connect(
        store,
        since=since,
        until=until,
        query_dirs=query_dirs,
        now=now,
        summaries=summaries,
        external_access=external_access,
    )
