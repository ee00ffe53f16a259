"""How a flows file is written: its row groups, encodings and statistics, the same for every writer.

Ingest (:mod:`flowlens.ingest.writer`), the live collectors and compaction
(:mod:`flowlens.store.compact`) write flows files with :func:`flows_parquet_writer` and these
rules, so that a compacted file reads like a file written by ingest:

* Denied rows have row groups of their own (up to :data:`ROWS_PER_ROW_GROUP` rows), so that a
  query about denied traffic skips the far more numerous allowed rows by their statistics; a
  day's few rows (fewer than :data:`MIXED_ROWS`) share one row group.
* Columns with a new value in almost every row are written plain; every other column, the
  strings inside labels and traces included, is dictionary-encoded. Min/max statistics for the
  flat columns only. zstd (level 1). No Arrow schema in the file: its Parquet schema reads back
  as :data:`flowlens.schema.ARROW_SCHEMA`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.schema import ARROW_SCHEMA

ROWS_PER_ROW_GROUP = 128 * 1024
# A day's allowed and denied rows share a row group when together they are fewer than this:
# skipping so few rows saves a query next to nothing, while each row group costs the writer a
# fixed amount per column (its encoders, dictionary and compression set up anew).
MIXED_ROWS = 16 * 1024


# Min/max statistics for the flat columns, which queries filter on and readers prune row groups
# by; none for the values inside labels and traces, which no reader prunes by (they cost about
# a tenth of the writing time).
STATISTICS_COLUMNS = [f.name for f in ARROW_SCHEMA if not pa.types.is_nested(f.type)]


def _leaf_paths(name: str, type_: pa.DataType) -> list[str]:
    """The Parquet column paths of the leaves of a column (as pyarrow names them)."""
    if pa.types.is_map(type_):
        return _leaf_paths(f"{name}.key_value.key", type_.key_type) + _leaf_paths(
            f"{name}.key_value.value", type_.item_type
        )
    if pa.types.is_list(type_):
        return _leaf_paths(f"{name}.list.element", type_.value_type)
    if pa.types.is_struct(type_):
        return [path for f in type_ for path in _leaf_paths(f"{name}.{f.name}", f.type)]
    return [name]


# Columns that hold a new value in almost every row: a dictionary would only grow until the
# writer gives it up, so they are written plain (a store about 12 % smaller). Plain, not
# delta-encoded: every Parquet reader reads it (Spark before 3.3 cannot read delta encoding).
PLAIN_COLUMNS = (
    "start_time",
    "end_time",
    "es_timestamp",
    "source_line",
    "bytes_in",
    "bytes_out",
    "packets_in",
    "packets_out",
)
DICTIONARY_COLUMNS = [
    path for f in ARROW_SCHEMA for path in _leaf_paths(f.name, f.type) if path not in PLAIN_COLUMNS
]


def flows_parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer for a flows file, with the store's encodings and statistics. ``schema``:
    :data:`~flowlens.ingest.dictionaries.WRITE_SCHEMA` (ingest) or
    :data:`~flowlens.schema.ARROW_SCHEMA` (compaction): both give the same Parquet columns."""
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=1,
        write_statistics=STATISTICS_COLUMNS,
        use_dictionary=DICTIONARY_COLUMNS,
        # No Arrow schema in the file (it would be WRITE_SCHEMA's dictionaries): its
        # Parquet schema alone reads back as ARROW_SCHEMA.
        store_schema=False,
    )
