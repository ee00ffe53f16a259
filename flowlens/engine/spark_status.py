"""``flowlens status --engine spark``: the facts status reads from a store's rows, read by Spark.

Owns :func:`spark_facts`, a :data:`flowlens.store.status.FactsReader` that runs status' own SQL
(:data:`~flowlens.store.status.RANGE_SQL`, ``CLUSTERS_SQL``, ``FORMATS_SQL``, ``REASONS_SQL``) on
Spark over the same committed files; everything else status says comes from the manifest, as on
DuckDB. Results come back as Arrow, so that timestamps stay UTC whatever the driver's time zone.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlens.engine.settings import SparkSettings
from flowlens.engine.spark import spark_session
from flowlens.errors import StoreError
from flowlens.store import Store
from flowlens.store.status import CLUSTERS_SQL, FORMATS_SQL, RANGE_SQL, REASONS_SQL, FactsReader, RowFacts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_VIEW_IDS = itertools.count(1)


def _rows(spark: SparkSession, sql: str) -> list[tuple[Any, ...]]:
    table = spark.sql(sql).toArrow()
    return list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))


def _counts(spark: SparkSession, sql: str) -> tuple[tuple[str, int], ...]:
    return tuple((str(key), int(n)) for key, n in _rows(spark, sql))


def spark_facts(settings: SparkSettings | None = None) -> FactsReader:
    """A reader of :class:`~flowlens.store.status.RowFacts` on the Spark session of ``settings``."""

    def read(store: Store, flows: list[Path], quarantine: list[Path]) -> RowFacts:
        spark = spark_session(settings)
        n = next(_VIEW_IDS)
        f, q = f"flowlens_status_{n}_f", f"flowlens_status_{n}_q"
        try:
            first = last = None
            counted = quarantined = None
            clusters: tuple[tuple[str, int], ...] = ()
            formats: tuple[tuple[str, int], ...] = ()
            reasons: tuple[tuple[str, int], ...] = ()
            if flows:
                spark.read.parquet(*(store.files.uri(p) for p in flows)).createOrReplaceTempView(f)
                ((count, first_ts, last_ts),) = _rows(spark, RANGE_SQL.replace(" FROM f", f" FROM {f}"))
                counted = int(count)
                first = first_ts.isoformat() if first_ts else None
                last = last_ts.isoformat() if last_ts else None
                clusters = _counts(spark, CLUSTERS_SQL.replace(" FROM f ", f" FROM {f} "))
                formats = _counts(spark, FORMATS_SQL.replace(" FROM f ", f" FROM {f} "))
            if quarantine:
                spark.read.parquet(*(store.files.uri(p) for p in quarantine)).createOrReplaceTempView(q)
                ((quarantined,),) = _rows(spark, f"SELECT count(*) FROM {q}")
                reasons = _counts(spark, REASONS_SQL.replace(" FROM q ", f" FROM {q} "))
        except StoreError:
            raise
        except Exception as exc:  # py4j's and Spark's own errors: the last line says why
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise StoreError(
                f"cannot read the files of the store {store.root} on Spark "
                f"({lines[0].strip() if lines else type(exc).__name__}); run `flowlens verify`"
            ) from None
        finally:
            spark.catalog.dropTempView(f)
            spark.catalog.dropTempView(q)
        return RowFacts(first, last, clusters, formats, reasons, counted, quarantined)

    return read
