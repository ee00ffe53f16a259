"""Label sets and policy traces: from their text in a record to nested Arrow columns.

Label sets and policy traces are few and repeat endlessly, so each distinct text is converted
and checked once, in Python, and the results are joined back to the rows with Arrow (``take``):

* :class:`HitMapper`: policy-hit texts (Calico's hit strings in any of their formats, or the
  JSON objects of Goldmane and Whisker; grammar in :mod:`flowlens.formats.hits`) to
  ``POLICY_HIT`` structs, each trace ordered by policy index as Calico means it.
* :func:`labels_to_map`: ``["k=v", ...]`` lists to ``MAP<string, string>``.
* :class:`DistinctJson`: the JSON text of a record's labels or policies object
  (``Format.json_columns``) to map items and traces, once per distinct text.
* :func:`labels_at_once`: many distinct label texts at once, with Arrow's JSON reader. Some
  clusters have as many label sets as records: a Job's pods carry the Job's own
  ``controller-uid``, so every run of a CronJob is a new label set.

Each gives, besides the values, the rows whose value cannot be stored and why: those lines are
quarantined (see :mod:`flowlens.ingest.rows`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from flowlens.formats.hits import HitParseError, PolicyHit, check_indexes, hit_from_object, parse_hit
from flowlens.ingest.safejson import MAX_JSON_DEPTH, TooDeep, loads
from flowlens.schema import LABELS, POLICY_COLUMNS, POLICY_HIT

REASON_TEXT_LIMIT = 200  # characters of a value quoted in a reason


def _short(text: str) -> str:
    """``text`` cut to REASON_TEXT_LIMIT characters: a reason quotes a value, never a whole line."""
    return text if len(text) <= REASON_TEXT_LIMIT else text[: REASON_TEXT_LIMIT - 3] + "..."


class HitMapper:
    """Maps raw hit texts (strings in F0/F1/F2, or JSON objects) to POLICY_HIT structs, parsing
    each distinct text once."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._rows: list[dict[str, Any]] = []
        self._errors: dict[str, str] = {}
        self._row_of: dict[str, dict[str, Any]] = {}
        self._keys = pa.array([], pa.string())
        self._structs = pa.array([], POLICY_HIT)
        self._policy_index = pa.array([], pa.int64())

    def _parse(self, text: str) -> PolicyHit:
        return check_indexes(
            hit_from_object(loads(text)) if text.startswith("{") else parse_hit(text, strict=False)
        )

    def row(self, text: str) -> dict[str, Any] | str:
        """The POLICY_HIT row of one hit text, or why it is not a hit."""
        found = self._row_of.get(text) or self._errors.get(text)
        if found is None:
            try:
                found = self._row_of[text] = self._parse(text).as_row()
            except (HitParseError, ValueError, TypeError) as exc:
                found = self._errors[text] = _short(str(exc))
        return found

    def _learn(self, texts: list[str]) -> None:
        new = False
        for text in texts:
            if text in self._index or text in self._errors:
                continue
            row = self.row(text)  # (parsed once, whether met here or by :meth:`row` before)
            if isinstance(row, str):
                continue
            self._index[text] = len(self._rows)
            self._rows.append(row)
            new = True
        if new:
            self._keys = pa.array(list(self._index), pa.string())
            self._structs = pa.array(self._rows, POLICY_HIT)
            self._policy_index = pa.array(
                [r["policy_index"] if r["policy_index"] is not None else 0 for r in self._rows], pa.int64()
            )

    def map(self, column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray, dict[int, str]]:
        """The column as LIST<POLICY_HIT>, a mask of rows with an invalid hit, and their reasons."""
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if arr.type != pa.list_(pa.string()):
            arr = arr.cast(pa.list_(pa.string()))
        flat = pc.list_flatten(arr)
        # each distinct text is looked up once (a trace's few hits repeat on every row)
        distinct = pc.dictionary_encode(flat)
        self._learn(distinct.dictionary.to_pylist())
        codes = pc.index_in(distinct.dictionary, value_set=self._keys).take(distinct.indices)
        bad_rows = np.zeros(len(arr), dtype=bool)
        reasons: dict[int, str] = {}
        if codes.null_count:
            parents = pc.list_parent_indices(arr).to_numpy()
            bad_flat = np.flatnonzero(codes.is_null().to_numpy(zero_copy_only=False))
            texts = flat.to_pylist()
            for pos in bad_flat:
                row = int(parents[pos])
                bad_rows[row] = True
                text = texts[pos]
                reasons.setdefault(
                    row, f"invalid policy hit {_short(repr(text))}: {self._errors.get(text, 'null entry')}"
                )
            codes = pc.fill_null(codes, 0)
        if len(self._structs):
            # Calico writes a trace as a set in random order: order each list by policy index.
            idx = self._policy_index.take(codes).to_numpy(zero_copy_only=False)
            parents = pc.list_parent_indices(arr).to_numpy()
            order_key = parents.astype(np.int64) * (1 << 32) + idx
            if len(order_key) > 1 and not np.all(order_key[1:] >= order_key[:-1]):
                codes = codes.take(pa.array(np.argsort(order_key, kind="stable")))
            values = self._structs.take(codes)
        else:
            values = pa.nulls(len(codes), POLICY_HIT)
        result = pa.ListArray.from_arrays(arr.offsets, values, type=pa.list_(POLICY_HIT), mask=arr.is_null())
        return result, bad_rows, reasons


def _keys_ascend(codes: np.ndarray, parents: np.ndarray, keys: pa.Array) -> bool:
    """Whether the labels of every row are in strictly ascending order of key (then no row
    repeats a key), ``codes`` being each label's code into the distinct ``keys`` (-1: a null
    label, never taken for ascending) and ``parents`` its row. Keys are ranked as Calico sorts a
    row's labels, by their ``k=v`` text, that is by key followed by ``=`` (a key holds no ``=``),
    so the usual row needs no look of its own."""
    if len(codes) < 2:
        return True
    if (codes < 0).any():
        return False
    texts = keys.to_pylist()
    rank = np.empty(len(texts), dtype=np.int64)
    rank[sorted(range(len(texts)), key=lambda i: texts[i] + "=")] = np.arange(len(texts), dtype=np.int64)
    ranks = rank[codes]
    return bool(np.all((parents[1:] != parents[:-1]) | (ranks[1:] > ranks[:-1])))


def labels_to_map(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray, dict[int, str]]:
    """``["k=v", ...]`` lists (split on the first '=') as MAP<string, string>; rows where a key
    appears twice, or where a label is null, cannot be a map and are reported instead."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.type != pa.list_(pa.string()):
        arr = arr.cast(pa.list_(pa.string()))
    flat = pc.list_flatten(arr)
    bad = np.zeros(len(arr), dtype=bool)
    reasons: dict[int, str] = {}
    # A cluster has few distinct labels, repeated on every row: each distinct label is split
    # once, and the keys and values are taken back to the rows.
    labels = pc.dictionary_encode(flat)
    parts = pc.split_pattern(labels.dictionary, "=", max_splits=1)
    has_value = pc.equal(pc.list_value_length(parts), 2)
    padded = pc.if_else(has_value, parts, pa.scalar(["", ""], pa.list_(pa.string())))
    distinct_keys = pc.list_element(parts, 0)
    keys = distinct_keys.take(labels.indices)
    values = pc.list_element(padded, 1).take(labels.indices)
    if len(flat):
        parents = pc.list_parent_indices(arr).to_numpy().astype(np.int64)
        if flat.null_count:
            for row in np.unique(parents[flat.is_null().to_numpy(zero_copy_only=False)]):
                bad[row] = True
                reasons[int(row)] = "a label that is null"
        key_codes = pc.dictionary_encode(distinct_keys)
        codes = pc.fill_null(key_codes.indices.take(labels.indices), -1).to_numpy().astype(np.int64)
        combined = parents * (1 << 32) + codes
        if not _keys_ascend(codes, parents, key_codes.dictionary) and pc.count_distinct(
            pa.array(combined)
        ).as_py() != len(combined):
            order = np.argsort(combined, kind="stable")
            sorted_c = combined[order]
            dup = order[1:][sorted_c[1:] == sorted_c[:-1]]
            key_list = keys.to_pylist()
            for pos in dup:
                row = int(parents[pos])
                bad[row] = True
                reasons.setdefault(row, f"duplicate label key {_short(repr(key_list[pos]))}")
    mask = arr.is_null()
    if bad.any():
        # Keep the map valid (readers reject duplicate keys): the row is quarantined anyway.
        mask = pc.or_(mask, pa.array(bad))
        keep_flat = ~bad[pc.list_parent_indices(arr).to_numpy()] if len(flat) else np.zeros(0, dtype=bool)
        keys = keys.filter(pa.array(keep_flat))
        values = values.filter(pa.array(keep_flat))
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy().astype(np.int64)
        lengths = np.where(bad, 0, lengths)
        offsets = np.zeros(len(arr) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        return pa.MapArray.from_arrays(pa.array(offsets), keys, values, mask=mask), bad, reasons
    return pa.MapArray.from_arrays(arr.offsets, keys, values, mask=mask), bad, reasons


#: From this many distinct label texts in a batch, they are parsed at once (:func:`labels_at_once`).
LABELS_AT_ONCE_MIN = 256
_LABELS_PARSE = pj.ParseOptions(
    explicit_schema=pa.schema([("labels", pa.list_(pa.string()))]), unexpected_field_behavior="ignore"
)


def _line_bytes(lines: pa.Array) -> tuple[pa.Buffer | None, np.ndarray, np.ndarray]:
    """The data buffer of a string array and where each of its values starts and ends in it."""
    _, offset_buffer, data = lines.buffers()
    if offset_buffer is None or data is None:
        return None, np.empty(0, np.int64), np.empty(0, np.int64)
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    offsets = np.frombuffer(offset_buffer, dtype=width)[lines.offset : lines.offset + len(lines) + 1]
    return data, offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)


def labels_at_once(texts: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
    """The label maps of ``texts`` (distinct JSON texts of a labels object, no nulls), parsed by
    Arrow's JSON reader, and a mask of the texts they decide; None when the reader refuses the
    batch (a value of another type somewhere: then every text goes the Python way).

    Decided, exactly as :meth:`DistinctJson._labels` would: object texts with one ``"labels"``
    key, no ``\\u`` escape (Python keeps a lone surrogate, Arrow would not) and too few brackets
    to reach the nesting limit, whose list holds strings only and no key twice. The others are
    left to the Python conversion."""
    if len(texts) == 0:
        return None
    # One text per line: each text with a line end, their bytes end to end.
    lines = pc.binary_join_element_wise(texts, pa.scalar(""), "\n")
    data, starts, ends = _line_bytes(lines)
    if data is None:
        return None
    text = np.frombuffer(data, dtype=np.uint8, count=int(ends[-1]))
    # brackets of each text, counted over the joined bytes at once
    brackets = np.add.reduceat(((text == 0x7B) | (text == 0x5B)).view(np.uint8), starts, dtype=np.int64)
    simple = pc.and_(pc.starts_with(texts, "{"), pc.equal(pc.count_substring(texts, '"labels"'), 1))
    mask = simple.to_numpy(zero_copy_only=False) & (brackets <= MAX_JSON_DEPTH)
    if data.to_pybytes().find(b"\\u") >= 0:  # (rare: only then each text is looked at)
        mask &= ~pc.match_substring(texts, "\\u").to_numpy(zero_copy_only=False)
    picked = np.flatnonzero(mask)
    if len(picked) == 0:
        return None
    if len(picked) < len(texts):
        data, starts, ends = _line_bytes(lines.take(pa.array(picked)))
        if data is None:
            return None
    try:
        table = pj.read_json(
            pa.BufferReader(data[int(starts[0]) : int(ends[-1])]), parse_options=_LABELS_PARSE
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows != len(picked):
        return None
    maps, bad, _ = labels_to_map(table.column("labels"))
    decided = np.zeros(len(texts), dtype=bool)
    decided[picked[~bad]] = True
    at = np.full(len(texts), len(picked), dtype=np.int64)  # undecided: a null map
    at[picked] = np.arange(len(picked))
    return pa.concat_arrays([maps, pa.nulls(1, maps.type)]).take(pa.array(at)), decided


# Why the rows holding a distinct JSON text are looked at one by one: the value has the wrong shape,
# and the full diagnosis of the record names the field (as for any suspect record).
_WRONG_SHAPE = "\0wrong shape"
_DISTINCT_CACHE_LIMIT = 100_000
# ... and at most this many bytes of text (their values take some times more): texts that are
# distinct on nearly every record (Job pods' label sets, long traces) would otherwise keep a GB.
_DISTINCT_CACHE_BYTES = 16 << 20


class DistinctJson:
    """Label sets and policy traces from their JSON text (``Format.json_columns``), converted and
    checked once per distinct text: a cluster has few label sets and traces, repeated endlessly.

    Each conversion gives the value(s) for the rows holding that text and, for a bad value, the
    reason its rows are quarantined (``_WRONG_SHAPE``: diagnose the record)."""

    def __init__(self, hits: HitMapper) -> None:
        self.hits = hits
        self._cache: dict[tuple[str, str], tuple[Any, str | None]] = {}
        self._cache_bytes = 0

    def _convert(self, kind: str, text: str) -> tuple[Any, str | None]:
        key = (kind, text)
        done = self._cache.get(key)
        if done is None:
            if len(self._cache) >= _DISTINCT_CACHE_LIMIT or self._cache_bytes >= _DISTINCT_CACHE_BYTES:
                self._cache.clear()
                self._cache_bytes = 0
            self._cache_bytes += len(text)
            done = self._cache[key] = self._policies(text) if kind == "policies" else self._labels(text, kind)
        return done

    @staticmethod
    def _labels(text: str, name: str) -> tuple[Any, str | None]:
        """``{"labels": ["k=v", ...]}`` as map items (split on the first '='); null labels: None."""
        try:
            value = loads(text)
        except TooDeep:
            return None, _WRONG_SHAPE
        if value is None:
            return None, None
        if not isinstance(value, dict):
            return None, _WRONG_SHAPE
        items = value.get("labels")
        if items is None:
            return None, None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            return None, _WRONG_SHAPE
        pairs = [item.partition("=")[::2] for item in items]
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            return None, f"duplicate label key {_short(repr(dup))} in '{name}'"
        return pairs, None

    def _policies(self, text: str) -> tuple[Any, str | None]:
        """The four traces of a policies object, each its hit texts (checked here; made
        POLICY_HIT structs, ordered by policy index, by :meth:`HitMapper.map` over the whole
        column); a trace that was not logged: None."""
        try:
            value = loads(text)
        except TooDeep:
            return None, _WRONG_SHAPE
        if value is None:
            return (None,) * len(POLICY_COLUMNS), None
        if not isinstance(value, dict):
            return None, _WRONG_SHAPE
        traces: list[list[str] | None] = []
        for key in POLICY_COLUMNS:
            hits = value.get(key)
            if hits is None:
                traces.append(None)
                continue
            if not isinstance(hits, list) or not all(h is None or isinstance(h, str) for h in hits):
                return None, _WRONG_SHAPE
            for h in hits:
                row = self.hits.row(h) if h is not None else "null entry"
                if isinstance(row, str):
                    return None, f"invalid policy hit {_short(repr(h))}: {row}"
            traces.append(hits)
        return tuple(traces), None

    def map(
        self, kind: str, column: pa.ChunkedArray
    ) -> tuple[list[Any] | pa.Array, pa.Array, np.ndarray, dict[int, str], np.ndarray]:
        """For a column of JSON texts: the converted value of each distinct text (for labels, a
        MAP array), the index of each row's text in those values (null for a null text), a mask
        of bad rows with their reasons, and a mask of rows of the wrong shape (to be diagnosed)."""
        labels = kind != "policies"
        values: list[Any] = []
        maps: list[pa.Array] = []  # labels: the values of each chunk
        reasons_of: list[str | None] = []
        codes_parts = []
        for chunk in column.chunks:
            enc = pc.dictionary_encode(chunk)
            base = len(reasons_of)
            texts = enc.dictionary
            at_once = labels_at_once(texts) if labels and len(texts) >= LABELS_AT_ONCE_MIN else None
            if at_once is not None:
                parsed, decided = at_once
                rest = np.flatnonzero(~decided)
                done = [self._convert(kind, text) for text in texts.take(pa.array(rest)).to_pylist()]
                chunk_reasons: list[str | None] = [None] * len(texts)
                for i, (_, reason) in zip(rest, done, strict=True):
                    chunk_reasons[i] = reason
                reasons_of.extend(chunk_reasons)
                if len(rest):
                    at = np.arange(len(texts))
                    at[rest] = len(texts) + np.arange(len(rest))
                    parsed = pa.concat_arrays([parsed, pa.array([v for v, _ in done], LABELS)]).take(
                        pa.array(at)
                    )
                maps.append(parsed)
            else:
                for text in texts.to_pylist():
                    value, reason = self._convert(kind, text)
                    values.append(value)
                    reasons_of.append(reason)
                if labels:
                    maps.append(pa.array(values, LABELS))
                    values = []
            indices = enc.indices.cast(pa.int32())
            codes_parts.append(pc.add(indices, pa.scalar(base, pa.int32())) if base else indices)
        codes = pa.concat_arrays(codes_parts) if codes_parts else pa.array([], pa.int32())
        n = len(codes)
        bad = np.zeros(n, dtype=bool)
        shape = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        if any(r is not None for r in reasons_of):
            # the last slot stands for a null text
            dense = pc.fill_null(codes, len(reasons_of)).to_numpy(zero_copy_only=False)
            shape = np.array([r == _WRONG_SHAPE for r in reasons_of] + [False])[dense]
            bad = np.array([r is not None and r != _WRONG_SHAPE for r in reasons_of] + [False])[dense]
            for row in np.flatnonzero(bad):
                reasons[int(row)] = reasons_of[dense[row]]
        if labels:
            return (pa.concat_arrays(maps) if maps else pa.array([], LABELS)), codes, bad, reasons, shape
        return values, codes, bad, reasons, shape
