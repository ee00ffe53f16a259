"""Line-granularity dedupe: a source that diverges from what is stored adds only what is new.

A source continues its lineage from the furthest checkpoint its prefix matches
(:mod:`~flowlens.ingest.checkpoints`). That alone is exact for the normal path (a growing or
rotated file, a new file), and costs nothing per line. It is not enough for a copy that stops
short between two checkpoints, or that was edited, cut, reordered, or had lines inserted or
deleted: everything after its last matching checkpoint would be stored again.

So when the content a source continues has been stored *beyond* the point it resumes from (some
lineage with the same first line has a checkpoint past it: :func:`needs_check`), its rows are
not staged as they are parsed but held (:class:`HeldRows`), and at the end of the source
:func:`only_new` anti-joins them, in DuckDB, against the rows already stored in the date
partitions they fall in, on the record's content (every column but the provenance columns
:data:`PROVENANCE`). The join is a multiset one: a record stored k times and held m times keeps
max(0, m - k) of its copies (``row_number() OVER (PARTITION BY content)``), so a log that
legitimately repeats a line keeps its repeats. The pipeline counts the rows dropped as "already
stored" (part of the lines skipped as already ingested).

Why an anti-join on the stored rows rather than an index of line hashes kept in the store: it
costs nothing on the normal path and nothing in the store (no index to write, commit, verify,
repair or compact), it compares records rather than bytes (a copy re-serialised with its keys in
another order, or a line cut and rejoined, is still the same record), and its cost falls only on
the divergent copies, in proportion to their size and to the days they touch. After a checked
source, its content gets a lineage of its own (a branch: :func:`flowlens.ingest.checkpoints.branch`),
so reading the same copy again resumes at its end and does not repeat the check.

Only line-based sources are checked: a whole document (a Whisker response, an Elasticsearch
export) that changed is read again in full, as before. The rows held live in memory until the
source ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from flowlens.ingest.dictionaries import WRITE_SCHEMA

#: Where a row came from, not what it records: left out of the comparison.
PROVENANCE = ("format", "ingest_id", "source_file", "source_line")
CONTENT = tuple(f.name for f in WRITE_SCHEMA if f.name not in PROVENANCE)
_INDEX = "__flowlens_row"


def _concat(arrays: Sequence[pa.Array | pa.ChunkedArray]) -> pa.Array:
    chunks = [c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    return pa.chunked_array(chunks, type=arrays[0].type).combine_chunks()


class HeldRows:
    """The rows of a source under check, held until its end instead of staged; takes them as
    :meth:`flowlens.ingest.writer.StagedCommit.add` does."""

    def __init__(self) -> None:
        self._tables: list[pa.Table] = []
        self._keys: list[np.ndarray] = []
        self._hits: list[dict[str, pa.Array]] = []

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self._tables)

    def add(self, table: pa.Table, keys: np.ndarray, hits: dict[str, pa.Array]) -> None:
        if table.num_rows:
            self._tables.append(table)
            self._keys.append(keys)
            self._hits.append(hits)

    def days(self) -> set[str]:
        """The UTC days (``YYYY-MM-DD``) of the rows held: the partitions they are compared with."""
        if not self._keys:
            return set()
        numbers = np.unique(np.concatenate(self._keys) // 2)
        return {str(np.datetime64(int(n), "D")) for n in numbers}

    def take_new(
        self, stored: Sequence[Path], con: duckdb.DuckDBPyConnection
    ) -> tuple[pa.Table, np.ndarray, dict[str, pa.Array], int]:
        """The rows held that are not stored yet in the flows files ``stored`` (multiset), as a
        table, its write keys and its hits, in the order they were held; and how many were
        dropped as already stored. Empties the holder."""
        if not self._tables:
            return pa.Table.from_batches([], schema=WRITE_SCHEMA), np.zeros(0, np.int64), {}, 0
        table = pa.concat_tables(self._tables)
        keys = np.concatenate(self._keys)
        hits = {name: _concat([h[name] for h in self._hits]) for name in self._hits[0]}
        self._tables, self._keys, self._hits = [], [], []
        keep = only_new(table, stored, con)
        if len(keep) == table.num_rows:
            return table, keys, hits, 0
        picks = pa.array(keep, pa.int64())
        return (
            table.take(picks),
            keys[keep],
            {name: values.take(picks) for name, values in hits.items()},
            table.num_rows - len(keep),
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def only_new(table: pa.Table, stored: Sequence[Path], con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """The indices (ascending) of the rows of ``table`` (WRITE_SCHEMA) whose record is not yet
    stored in the flows files ``stored``, counting copies: of m rows with the same content, of
    which k are stored, the last m - k are new."""
    if not stored or table.num_rows == 0:
        return np.arange(table.num_rows)
    cur = con.cursor()
    try:
        held = table.select(list(CONTENT)).append_column(
            _INDEX, pa.array(np.arange(table.num_rows), pa.int64())
        )
        cur.register("held_rows", held)
        cols = ", ".join(_quote(c) for c in CONTENT)
        match = " AND ".join(f"h.{_quote(c)} IS NOT DISTINCT FROM s.{_quote(c)}" for c in CONTENT)
        # (the stored rows are read only for the time range held: row groups outside it are skipped)
        low, high = cur.execute("SELECT min(start_time), max(start_time) FROM held_rows").fetchone() or (
            None,
            None,
        )
        sql = f"""
            WITH h AS (
                SELECT {cols}, {_INDEX},
                       row_number() OVER (PARTITION BY {cols} ORDER BY {_INDEX}) AS copy
                FROM held_rows
            ),
            s AS (
                SELECT {cols}, count(*) AS stored_copies
                FROM read_parquet($files, union_by_name = true)
                WHERE start_time BETWEEN $low AND $high
                GROUP BY ALL
            )
            SELECT h.{_INDEX} FROM h LEFT JOIN s ON {match}
            WHERE h.copy > coalesce(s.stored_copies, 0)
            ORDER BY h.{_INDEX}
        """
        result = cur.execute(sql, {"files": [str(p) for p in stored], "low": low, "high": high}).fetchnumpy()
        return np.asarray(result[_INDEX], dtype=np.int64)
    finally:
        cur.close()
