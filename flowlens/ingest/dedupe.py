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

Elasticsearch hits are checked too, lines or a whole ``_search`` response, once the store (or the
run) holds some: exports of overlapping time windows share hits without sharing a first line. Each
hit carries its document id (``es_id``), so :func:`only_new` looks the ids up first. A whole
Whisker response that changed is read again in full, unchecked (its items have no id, and equal a
Goldmane record's content). The rows held wait in a Parquet file in the store's
staging folder until the source ends: memory stays bounded whatever the size of the copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.ingest.dictionaries import WRITE_SCHEMA

#: Where a row came from, not what it records: left out of the comparison.
PROVENANCE = ("format", "ingest_id", "source_file", "source_line")
CONTENT = tuple(f.name for f in WRITE_SCHEMA if f.name not in PROVENANCE)
_INDEX = "__flowlens_row"


_KEY = "__flowlens_key"
_HIT = "__flowlens_hit_"


class HeldRows:
    """The rows of a source under check, held until its end instead of staged; takes them as
    :meth:`flowlens.ingest.writer.StagedCommit.add` does. They are held on disk, in a Parquet file
    in ``folder`` (a staging folder of the store's, removed by the caller), not in memory."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "held.parquet"
        self._writer: pq.ParquetWriter | None = None
        self._days: set[int] = set()
        self._hit_names: list[str] = []
        self.rows = 0

    def add(self, table: pa.Table, keys: np.ndarray, hits: dict[str, pa.Array]) -> None:
        if not table.num_rows:
            return
        self._hit_names = list(hits)  # (in the order the writer gets them: its tables must concatenate)
        table = table.append_column(_KEY, pa.array(keys, pa.int64()))
        for name in self._hit_names:
            table = table.append_column(_HIT + name, hits[name])
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="lz4")
        self._writer.write_table(table)
        self._days.update(int(d) for d in np.unique(keys // 2))
        self.rows += table.num_rows

    def days(self) -> set[str]:
        """The UTC days (``YYYY-MM-DD``) of the rows held: the partitions they are compared with."""
        return {str(np.datetime64(n, "D")) for n in self._days}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def take_new(
        self, stored: Sequence[Path], con: duckdb.DuckDBPyConnection, *, by_id: bool = False
    ) -> tuple[Iterator[tuple[pa.Table, np.ndarray, dict[str, pa.Array]]], int]:
        """The rows held that are not stored yet in the flows files ``stored`` (multiset), in the
        order they were held, as pieces of (table, write keys, hits); and how many were dropped
        as already stored. ``by_id``: the rows carry Elasticsearch document ids (see
        :func:`only_new`)."""
        self.close()
        if not self.rows:
            return iter(()), 0
        keep = only_new(self.path, stored, con, by_id=by_id)
        return self._pieces(keep), self.rows - len(keep)

    def _pieces(self, keep: np.ndarray) -> Iterator[tuple[pa.Table, np.ndarray, dict[str, pa.Array]]]:
        offset = 0
        held = pq.ParquetFile(self.path)
        # A row group at a time: each holds the rows of one add, whose label and trace strings
        # have dictionaries of their own. A read across two row groups would give a nested column
        # of two dictionaries, which Arrow cannot convert (ArrowNotImplementedError).
        for group in range(held.num_row_groups):
            batch = held.read_row_group(group)
            lo, hi = np.searchsorted(keep, [offset, offset + batch.num_rows])
            picks = keep[lo:hi] - offset
            offset += batch.num_rows
            if not len(picks):
                continue
            part = batch.take(pa.array(picks, pa.int64()))
            hits = {name: part[_HIT + name].combine_chunks() for name in self._hit_names}
            keys = part[_KEY].to_numpy()
            yield part.select([f.name for f in WRITE_SCHEMA]).cast(WRITE_SCHEMA), keys, hits


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def only_new(
    held: Path, stored: Sequence[Path], con: duckdb.DuckDBPyConnection, *, by_id: bool = False
) -> np.ndarray:
    """The row numbers (ascending) of the rows in the Parquet file ``held`` (WRITE_SCHEMA columns
    at least) whose record is not yet stored in the flows files ``stored``, counting copies: of m
    rows with the same content, of which k are stored, the last m - k are new.

    ``by_id`` (Elasticsearch documents, whose hits each carry the document id ``es_id``, part of
    the content): when every held row has an id, only stored rows with one of those ids can be
    the same record, so the ids are compared first (one column read) and, when none is stored,
    every held document is new without reading the stored rows' other columns; otherwise the
    comparison reads only the stored rows with those ids. A document is one record however often
    it is held: its first copy is new when it is not stored, and its repeats never are."""
    cur = con.cursor()
    try:
        held_rows = "read_parquet($held, file_row_number = true)"
        all_rows = f"SELECT file_row_number FROM {held_rows} ORDER BY 1"
        if not stored:
            return _row_numbers(cur.execute(all_rows, {"held": str(held)}))
        files = [str(p) for p in stored]
        # A store written by an older flowlens may lack a column in every file of those days: its
        # rows have no value there (NULL), as the flows view reads them.
        present = {
            row[0]
            for row in cur.execute(
                "DESCRIBE SELECT * FROM read_parquet($files, union_by_name = true)", {"files": files}
            ).fetchall()
        }
        id_filter = ""
        cols = ", ".join(_quote(c) for c in CONTENT)
        # Each held row, numbered among the held rows of the same content (its copy)
        copies = f"""
            SELECT {cols}, file_row_number AS {_INDEX},
                   row_number() OVER (PARTITION BY {cols} ORDER BY file_row_number) AS copy
            FROM {held_rows}
        """
        by_id = by_id and _all_have_ids(cur, held_rows, held)
        if by_id:
            if "es_id" not in present or not _ids_stored(cur, held_rows, held, files):
                # (none stored: each document once, a repeat within the export skipped)
                firsts = f"SELECT {_INDEX} AS file_row_number FROM ({copies}) WHERE copy = 1 ORDER BY 1"
                return _row_numbers(cur.execute(firsts, {"held": str(held)}))
            id_filter = f"AND es_id IN (SELECT es_id FROM {held_rows})"
        # A document (by_id) is new when it is not stored, once however often the export repeats
        # it; other records count copies (a flows.log may hold the same line twice, two records).
        new = "h.copy = 1 AND s.stored_copies IS NULL" if by_id else "h.copy > coalesce(s.stored_copies, 0)"
        match = " AND ".join(f"h.{_quote(c)} IS NOT DISTINCT FROM s.{_quote(c)}" for c in CONTENT)
        # (the stored rows are read only for the time range held: row groups outside it are skipped)
        low, high = cur.execute(
            f"SELECT min(start_time), max(start_time) FROM {held_rows}", {"held": str(held)}
        ).fetchone() or (None, None)
        stored_cols = ", ".join(_quote(c) if c in present else f"NULL AS {_quote(c)}" for c in CONTENT)
        sql = f"""
            WITH h AS ({copies}),
            s AS (
                SELECT {stored_cols}, count(*) AS stored_copies
                FROM read_parquet($files, union_by_name = true)
                WHERE start_time BETWEEN $low AND $high {id_filter}
                GROUP BY ALL
            )
            SELECT h.{_INDEX} FROM h LEFT JOIN s ON {match}
            WHERE {new}
            ORDER BY h.{_INDEX}
        """
        result = cur.execute(sql, {"held": str(held), "files": files, "low": low, "high": high}).fetchnumpy()
        return np.asarray(result[_INDEX], dtype=np.int64)
    finally:
        cur.close()


def _row_numbers(result: duckdb.DuckDBPyConnection) -> np.ndarray:
    return np.asarray(result.fetchnumpy()["file_row_number"], dtype=np.int64)


def _all_have_ids(cur: duckdb.DuckDBPyConnection, held_rows: str, held: Path) -> bool:
    row = cur.execute(f"SELECT count(*) = count(es_id) FROM {held_rows}", {"held": str(held)}).fetchone()
    return bool(row and row[0])


def _ids_stored(cur: duckdb.DuckDBPyConnection, held_rows: str, held: Path, files: list[str]) -> bool:
    """Whether any of the flows files ``files`` holds a row with a document id of the held rows."""
    row = cur.execute(
        "SELECT EXISTS (SELECT 1 FROM read_parquet($files, union_by_name = true) "
        f"WHERE es_id IN (SELECT es_id FROM {held_rows}))",
        {"files": files, "held": str(held)},
    ).fetchone()
    return bool(row and row[0])
