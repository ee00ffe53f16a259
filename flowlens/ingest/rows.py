"""Rows: a parsed batch into the rows a commit stores and the lines it quarantines.

For each :class:`~flowlens.ingest.parse.ParsedBatch`, :class:`RowStager`

1. decides each line's fate: suspect lines are diagnosed (:mod:`flowlens.ingest.checks`), label
   sets and policy traces are converted once per distinct text (:mod:`flowlens.ingest.traces`),
   and a line whose record cannot be stored is quarantined with its reason; framing lines are
   ignored;
2. builds the kept rows in the canonical schema, their nested strings as codes into lasting
   dictionaries (:mod:`flowlens.ingest.dictionaries`), ordered as the writer stores them, with
   each row's deciding policy hits for the hourly summary;
3. hands them to the commit being staged (:class:`flowlens.ingest.writer.StagedCommit`) and
   counts rows and ignored lines per source (:mod:`flowlens.ingest.accounting`).

It runs on a parser's worker thread, one batch at a time and in read order.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowlens.formats.base import Format
from flowlens.ingest.accounting import Quarantine, without_line_end
from flowlens.ingest.checks import diagnose, end_before_start, note_missing_columns
from flowlens.ingest.dictionaries import WRITE_SCHEMA, LeafDictionaries
from flowlens.ingest.parse import JSON_PREFIX, ParsedBatch
from flowlens.ingest.traces import DistinctJson, HitMapper, labels_to_map
from flowlens.ingest.writer import write_order
from flowlens.schema import LABELS, POLICY_COLUMNS, POLICY_LIST
from flowlens.store.summaries import deciding_hits

HIT_TEXTS = pa.list_(pa.string())  # a trace as its hit texts


class RowSink(Protocol):
    """Where staged rows go: the commit being staged (:class:`~flowlens.ingest.writer.StagedCommit`),
    or the rows held for a check (:class:`~flowlens.ingest.dedupe.HeldRows`)."""

    def add(self, table: pa.Table, keys: np.ndarray, hits: dict[str, pa.Array]) -> None: ...


#: Converted columns: per column, its distinct values and each row's code into them (None: the
#: values are per row already).
Columns = dict[str, tuple[pa.Array, pa.Array | None]]


class _Reasons:
    """Why each bad row of a batch is bad, as codes into the distinct reasons."""

    def __init__(self, count: int) -> None:
        self.codes = np.full(count, -1, dtype=np.int64)
        self.texts: list[str] = []
        self._index: dict[str, int] = {}

    def _code(self, reason: str) -> int:
        code = self._index.get(reason)
        if code is None:
            code = self._index[reason] = len(self.texts)
            self.texts.append(reason)
        return code

    def set(self, row: int, reason: str) -> None:
        self.codes[row] = self._code(reason)

    def set_all(self, rows: np.ndarray, reason: str) -> None:
        if (rows.dtype == bool and not rows.any()) or (rows.dtype != bool and len(rows) == 0):
            return
        self.codes[rows] = self._code(reason)


class RowStager:
    """Stages the rows of parsed batches into a commit; quarantines the lines that are bad."""

    def __init__(self, ingest_id: str, max_line_bytes: int, quarantine: Quarantine) -> None:
        self.ingest_id = ingest_id
        self.max_line_bytes = max_line_bytes
        self.quarantine = quarantine
        self.hits = HitMapper()
        self.distinct = DistinctJson(self.hits)
        self.leaves = LeafDictionaries()
        self.rows_done = 0

    def stage(self, parsed: ParsedBatch, commit: RowSink) -> None:
        """Quarantine the bad lines of ``parsed``, stage its rows into ``commit``, count both."""
        keep, ignored, columns = self._sort_out(parsed)
        self._stage_kept(parsed, keep, ignored, columns, commit)

    def _sort_out(self, parsed: ParsedBatch) -> tuple[np.ndarray, np.ndarray, Columns]:
        """Quarantine the bad lines; the lines to keep, the lines ignored, the converted columns
        (per row of ``parsed.out``)."""
        fmt, lines, out, suspect = parsed.fmt, parsed.lines, parsed.out, parsed.suspect
        files, file_idx, line_nos = parsed.files, parsed.file_idx, parsed.line_nos
        # Everything below is per row of ``out``: a line each, or a distinct line each (records).
        texts = lines if parsed.records is None or parsed.record_lines is None else parsed.record_lines
        count = out.num_rows
        bad = np.zeros(count, dtype=bool)
        ignored = parsed.ignored.copy()
        reasons = _Reasons(count)

        def mark(rows: np.ndarray, why: dict[int, str], suffix: str = "") -> None:
            for idx in np.flatnonzero(rows & ~bad & ~ignored):
                bad[idx] = True
                reasons.set(int(idx), why[int(idx)] + suffix)

        def mark_all(rows: np.ndarray, reason: str) -> None:
            rows = rows & ~bad & ~ignored
            bad[rows] = True
            reasons.set_all(rows, reason)

        # Columns from JSON text, converted once per distinct text. A value of the wrong shape
        # makes its record suspect, so that the diagnosis names the field.
        converted: dict[str, tuple[list[Any], pa.Array, np.ndarray, dict[int, str]]] = {}
        wrong_shape = np.zeros(count, dtype=bool)
        for name in fmt.json_columns:
            values, codes, bad_rows, why, shape = self.distinct.map(name, out[JSON_PREFIX + name])
            converted[name] = (values, codes, bad_rows, why)
            wrong_shape |= shape
        suspect = suspect | wrong_shape
        if suspect.any():
            # (counted per line, in its file)
            looked_at = suspect if parsed.records is None else suspect[parsed.records]
            for i, n in enumerate(np.bincount(file_idx[looked_at], minlength=len(files))):
                files[i].diagnosed += int(n)
            # Each distinct suspect line is diagnosed once: a file of one bad line repeated a
            # million times costs one diagnosis.
            rows = np.flatnonzero(suspect)
            encoded = pc.dictionary_encode(texts.take(pa.array(rows)))
            verdicts = [
                diagnose(without_line_end(text), fmt, self.max_line_bytes)
                for text in encoded.dictionary.to_pylist()
            ]
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            ignored[rows[np.array([v == "" for v in verdicts], dtype=bool)[codes]]] = True
            for code, verdict in enumerate(verdicts):
                if verdict:
                    hit = rows[codes == code]
                    bad[hit] = True
                    reasons.set_all(hit, verdict)
        # A value of the wrong shape that the diagnosis lets pass still has no column value.
        mark_all(wrong_shape, "the record could not be converted (labels or policies of an unexpected shape)")
        # Rows the SQL could not turn into a timestamp are never stored, whatever the diagnosis.
        mark_all(
            out["start_time"].is_null().to_numpy(zero_copy_only=False),
            "the record could not be converted (start_time missing or invalid)",
        )
        mark_all(end_before_start(out), "field 'end_time' is before 'start_time'")
        # Converted columns: the distinct values and each row's code (None: a value per row).
        columns: Columns = {}
        for col in POLICY_COLUMNS:
            if col in out.column_names:
                mapped, bad_hits, hit_reasons = self.hits.map(out[col])
                columns[col] = (mapped, None)
                mark(bad_hits, hit_reasons)
        if "policies" in converted:
            values, codes_, bad_rows, why = converted["policies"]
            for i, col in enumerate(POLICY_COLUMNS):
                # (hit texts, checked: made structs at once, each distinct text parsed once)
                texts_of = pa.array([v[i] if v is not None else None for v in values], HIT_TEXTS)
                columns[col] = (self.hits.map(texts_of)[0], codes_)
            mark(bad_rows, why)
        for col in ("source_labels", "dest_labels"):
            if col in converted:
                values, codes_, bad_rows, why = converted[col]
                columns[col] = (values if isinstance(values, pa.Array) else pa.array(values, LABELS), codes_)
                mark(bad_rows, why)
            else:
                mapped, bad_labels, label_reasons = labels_to_map(out[col])
                columns[col] = (mapped, None)
                mark(bad_labels, label_reasons, f" in '{col}'")
        codes = reasons.codes
        if parsed.records is not None:  # per line again
            bad, ignored, codes = bad[parsed.records], ignored[parsed.records], codes[parsed.records]
        keep = ~bad & ~ignored
        bad_rows_idx = np.flatnonzero(bad)
        self.quarantine.add_rows(
            lines,
            bad_rows_idx,
            line_nos[bad_rows_idx],
            codes[bad_rows_idx],
            reasons.texts,
            fmt.name,
            files,
            file_idx[bad_rows_idx],
        )
        return keep, ignored, columns

    def _stage_kept(
        self,
        parsed: ParsedBatch,
        keep: np.ndarray,
        ignored: np.ndarray,
        columns: Columns,
        commit: RowSink,
    ) -> None:
        """Build the kept rows in the writer's schema and order, and stage them into ``commit``."""
        fmt, out, files = parsed.fmt, parsed.out, parsed.files
        file_idx, line_nos = parsed.file_idx, parsed.line_nos
        # The kept rows, put in the writer's order by the one take each column needs anyway (the
        # nested columns are built by a take of their distinct values): the writer then cuts
        # the batch into its row groups without copying it again.
        order, keys = write_order(out, keep, parsed.records)  # (lines)
        picks = pa.array(order if parsed.records is None else parsed.records[order])  # (rows of out)
        row_codes: dict[int, pa.Array] = {}  # the policy columns share one array of codes

        def rows_of(codes: pa.Array | None) -> pa.Array:
            if codes is None:
                return picks
            if id(codes) not in row_codes:
                row_codes[id(codes)] = codes.take(picks)
            return row_codes[id(codes)]

        # Every column is encoded before its take: distinct values (a take of codes is cheaper
        # than one of nested strings), and values per row too, the summary's deciding hits being
        # picked from their plain strings first, for every row of ``out``, then taken.
        built = {
            name: self.leaves.encode(name, values).take(rows_of(codes))
            for name, (values, codes) in columns.items()
        }
        enforced, enforced_codes = columns.get("enforced_policies", (None, None))
        pending, pending_codes = columns.get("pending_policies", (None, None))
        if enforced is not None and pending is not None and enforced_codes is pending_codes is not None:
            # The summary's deciding hits, picked once per distinct pair of traces.
            hits = {
                name: per_trace.take(rows_of(enforced_codes))
                for name, per_trace in deciding_hits(enforced, pending).items()
            }
        else:

            def plain(name: str) -> pa.Array:
                """The column's values, per row of ``out``."""
                if name not in columns:
                    return pa.nulls(out.num_rows, POLICY_LIST)
                values, codes = columns[name]
                return values.take(codes) if codes is not None else values

            hits = {
                name: per_row.take(picks)
                for name, per_row in deciding_hits(
                    plain("enforced_policies"), plain("pending_policies")
                ).items()
            }
        # A column null in every row (a field the layout lacks) is not taken: the schema's null
        # column takes its place (see _to_schema), the same values without copying nulls.
        dropped = [
            c
            for c in out.column_names
            if c in built or c.startswith(JSON_PREFIX) or c == "suspect" or out[c].null_count == out.num_rows
        ]
        # (a file read in several blocks is several entries of ``files``, with one code)
        paths = self.leaves.encode("source_file", pa.array([f.path for f in files], pa.string()))
        paths = paths.take(pa.array(file_idx[order]))
        table = self._to_schema(out.drop_columns(dropped).take(picks), built, fmt, paths, line_nos[order])
        commit.add(table, keys, hits)
        kept_per_file = np.bincount(file_idx[keep], minlength=len(files))
        ignored_per_file = np.bincount(file_idx[ignored], minlength=len(files))
        for i, fs in enumerate(files):
            fs.rows += int(kept_per_file[i])
            fs.ignored += int(ignored_per_file[i])
        self.rows_done += int(keep.sum())
        if table.num_rows:
            note_missing_columns(table, files, file_idx[order])

    def _to_schema(
        self,
        out: pa.Table,
        policy_cols: dict[str, pa.Array],
        fmt: Format,
        paths: pa.Array,
        line_nos: np.ndarray,
    ) -> pa.Table:
        n = out.num_rows
        arrays = []
        for f in WRITE_SCHEMA:
            if f.name in policy_cols:
                arrays.append(policy_cols[f.name])
            elif f.name in out.column_names:
                col = out[f.name]
                arrays.append(col if col.type == f.type else col.cast(f.type))
            elif f.name == "format":
                arrays.append(self.leaves.repeat("format", fmt.name, n))
            elif f.name == "ingest_id":
                arrays.append(self.leaves.repeat("ingest_id", self.ingest_id, n))
            elif f.name == "source_file":
                arrays.append(paths)
            elif f.name == "source_line":
                arrays.append(pa.array(line_nos))
            else:
                arrays.append(pa.nulls(n, f.type))
        return pa.Table.from_arrays(arrays, schema=WRITE_SCHEMA)
