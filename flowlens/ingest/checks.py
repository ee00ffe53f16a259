"""Checks: which lines of a batch cannot be stored as they are, and why.

The batch query (:mod:`flowlens.ingest.parse`) marks a line *suspect* with a cheap SQL test; the
checks here add what is cheaper on the Arrow result (:func:`check_by_arrow`: text fields that
hold a JSON list, object or boolean; integers out of range; fields that must not be null). Only
suspect lines are looked at one by one, by :func:`diagnose`, which names what is wrong (the
quarantine reason) or clears the line. Valid input never takes that path.

:func:`note_missing_columns` warns, once per file, about the columns Felix was told not to log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowlens.formats.base import INT64_MAX, INT64_MIN, MAX_EPOCH_SECONDS, Format, coerce_counter
from flowlens.ingest.accounting import FileSummary, without_line_end
from flowlens.ingest.safejson import TooDeep, loads
from flowlens.schema import ARROW_SCHEMA

# First bytes of DuckDB's text of a JSON list, object or boolean
_MAY_NOT_BE_TEXT = np.zeros(256, dtype=bool)
_MAY_NOT_BE_TEXT[[ord("["), ord("{"), ord("t"), ord("f")]] = True
_OPENS = np.zeros(256, dtype=bool)
_OPENS[[ord("["), ord("{")]] = True
_OFFSET_TYPES: dict[pa.DataType, np.dtype[Any]] = {
    pa.string(): np.dtype(np.int32),
    pa.large_string(): np.dtype(np.int64),
}


def _not_text(value: str | None) -> bool:
    return value is not None and (value[:1] in ("[", "{") or value in ("true", "false"))


def texts_not_strings(chunk: pa.Array) -> np.ndarray:
    """Rows of a text array whose value may be DuckDB's text of a JSON list, object or boolean:
    it starts with ``[`` or ``{``, or it is ``true`` or ``false``. The first bytes are read off
    the array's offsets with numpy (some microseconds for thousands of rows); only the few rows
    they leave are looked at as strings."""
    offset_type = _OFFSET_TYPES.get(chunk.type)
    if offset_type is None:  # another text layout (string_view, dictionary)
        return texts_not_strings(chunk.cast(pa.large_string()))
    n = len(chunk)
    odd = np.zeros(n, dtype=bool)
    _, offsets_buf, data_buf = chunk.buffers()
    if n == 0 or data_buf is None or data_buf.size == 0:
        return odd
    offsets = np.frombuffer(
        offsets_buf, dtype=offset_type, count=n + 1, offset=chunk.offset * offset_type.itemsize
    )
    data = np.frombuffer(data_buf, dtype=np.uint8)
    # (an empty or null value may point past the end: clipped, and dropped by its length)
    first = data.take(offsets[:-1], mode="clip")
    rows = np.flatnonzero(_MAY_NOT_BE_TEXT[first])
    lengths = offsets[rows + 1] - offsets[rows]
    opens = _OPENS[first[rows]]
    rows = rows[(lengths > 0) & (opens | (lengths == 4) | (lengths == 5))]
    if rows.size:  # "tcp0" or "fast!" are fine, and a null is no value
        odd[rows] = [_not_text(v) for v in chunk.take(rows).to_pylist()]
    return odd


def labels_not_strings(chunk: pa.Array) -> np.ndarray:
    """Rows of a list-of-labels array with an item that may not have been a ``k=v`` string: it
    starts with ``[`` or ``{`` (a list or an object), it has no ``=`` (a number, a boolean), or
    it is null."""
    items = pc.list_flatten(chunk)
    odd = pc.or_(
        pc.or_(pc.starts_with(items, "["), pc.starts_with(items, "{")),
        pc.invert(pc.match_substring(items, "=")),
    )
    rows = np.zeros(len(chunk), dtype=bool)
    rows[pc.list_parent_indices(chunk).filter(pc.fill_null(odd, True)).to_numpy()] = True  # null: JSON null
    return rows


def _json_numbers(
    texts: pa.Array, read: Callable[[str], tuple[int | None, bool]]
) -> tuple[pa.Array, np.ndarray]:
    """The integers of a column of JSON texts, and the rows ``read`` finds odd. A column of plain
    integers is cast at once (the usual case); otherwise ``read`` (a text -> its value, and
    whether it is odd) reads each distinct text once."""
    try:
        return pc.cast(texts, pa.int64()), np.zeros(len(texts), dtype=bool)  # the usual case
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    encoded = pc.dictionary_encode(texts)
    read_texts = [read(text) for text in encoded.dictionary.to_pylist()]
    values = [value for value, _ in read_texts]
    odd = [is_odd for _, is_odd in read_texts]
    codes = encoded.indices
    rows = pc.fill_null(pc.take(pa.array(odd, pa.bool_()), codes), False).to_numpy(zero_copy_only=False)
    return pc.take(pa.array(values, pa.int64()), codes), rows


def _plain_int(text: str) -> tuple[int | None, bool]:
    try:
        value = loads(text)
    except ValueError:
        value = None
    plain = isinstance(value, int) and not isinstance(value, bool)
    whole = isinstance(value, float) and value.is_integer()
    number = int(value) if plain or whole else None
    fits = number is not None and INT64_MIN <= number <= INT64_MAX
    return (number if fits else None), not (plain and fits)


def plain_ints(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The integers a column of JSON texts of integers holds, and the rows whose text is not a
    plain integer. Each distinct odd text is read as JSON once: a whole number such as ``80.0``
    keeps its value (the diagnosis lets it pass), anything else (a string, a boolean, a fraction,
    an integer beyond 64 bits) is null."""
    return _json_numbers(texts, _plain_int)


def _ints_in_range(texts: pa.Array, low: int, high: int) -> tuple[pa.Array, np.ndarray]:
    """The plain integers of a column of JSON texts (:func:`plain_ints`), null outside
    ``low..high``, and the rows that are not plain integers or are out of range."""
    values, odd = plain_ints(texts)
    outside = pc.fill_null(pc.or_(pc.less(values, low), pc.greater(values, high)), False)
    return pc.if_else(outside, pa.scalar(None, pa.int64()), values), odd | outside.to_numpy(
        zero_copy_only=False
    )


def _counter(text: str) -> tuple[int | None, bool]:
    try:
        value = coerce_counter(loads(text))
    except ValueError:
        value = None
    return value, value is None


def counters(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The integers a column of JSON texts of counters holds, coerced as the diagnosis coerces
    them (:func:`~flowlens.formats.base.coerce_counter`: numeric text, a fraction or a boolean
    counts), and the rows whose value does not coerce (null there). A null (a missing counter)
    stays null and is fine. Each distinct text that is not a plain integer is read once."""
    return _json_numbers(texts, _counter)


def check_by_arrow(fmt: Format, out: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """The rows that the checks ``fmt`` declares on the query's result make suspect
    (``text_columns``, ``json_ints``, ``json_counters``, ``json_times``, ``not_null``,
    ``groups``, and times that need a look: :func:`odd_times`), and the result with each of
    ``json_ints`` and ``json_counters`` an integer column (null where it was not an integer in
    range, or no counter) and each of ``json_times`` a timestamp column (null where it was not
    whole seconds in range)."""
    suspect = np.zeros(out.num_rows, dtype=bool)
    if out.num_rows == 0:
        return suspect, out
    for name in fmt.text_columns:
        column = out[name]
        check = labels_not_strings if pa.types.is_list(column.type) else texts_not_strings
        suspect |= np.concatenate([check(chunk) for chunk in column.chunks])
    for name, (low, high) in fmt.json_ints.items():
        values, odd = _ints_in_range(out[name].combine_chunks(), low, high)
        suspect |= odd
        out = out.set_column(
            out.schema.get_field_index(name), name, values.cast(ARROW_SCHEMA.field(name).type)
        )
    for name in fmt.json_counters:
        values, wrong = counters(out[name].combine_chunks())
        suspect |= wrong
        out = out.set_column(
            out.schema.get_field_index(name), name, values.cast(ARROW_SCHEMA.field(name).type)
        )
    for name in fmt.json_times:
        seconds, odd = _ints_in_range(out[name].combine_chunks(), 0, MAX_EPOCH_SECONDS)
        suspect |= odd
        times = pc.multiply(seconds, 1_000_000).cast(pa.timestamp("us", tz="UTC"))
        out = out.set_column(
            out.schema.get_field_index(name), name, times.cast(ARROW_SCHEMA.field(name).type)
        )
    for name in fmt.not_null:
        suspect |= out[name].is_null().to_numpy(zero_copy_only=False)
    suspect |= odd_times(out)
    for group in fmt.groups:
        nulls = np.zeros(out.num_rows, dtype=np.int8)
        for name in group:
            if out[name].null_count:
                nulls += out[name].is_null().to_numpy(zero_copy_only=False)
        suspect |= (nulls > 0) & (nulls < len(group))
    return suspect, out


def invalid_utf8(lines: pa.Array) -> np.ndarray:
    """Rows of a LargeBinary array of lines that are not UTF-8. Bytes below 0x80 are always
    valid: only the lines holding a higher byte (found with numpy) are decoded, one by one."""
    bad = np.zeros(len(lines), dtype=bool)
    if len(lines) == 0:
        return bad
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    high = np.flatnonzero(data >= 0x80)
    if len(high) == 0:
        return bad
    rows = np.unique(np.searchsorted(offsets[1:] - offsets[0], high, side="right"))
    for row, text in zip(rows.tolist(), lines.take(pa.array(rows)).to_pylist(), strict=True):
        try:
            text.decode("utf-8")
        except UnicodeDecodeError:
            bad[row] = True
    return bad


def null_invalid_utf8(raw: pa.Table) -> pa.Table:
    """``raw`` (the batch's ``line`` and ``line_no``) with its lines that are not UTF-8 made NULL,
    so that DuckDB never fails to decode one (a failure caught per line costs some 40 µs)."""
    lines = raw["line"].combine_chunks()
    bad = invalid_utf8(lines)
    if bad.any():
        raw = raw.set_column(0, "line", pc.if_else(pa.array(bad), pa.scalar(None, lines.type), lines))
    return pa.Table.from_batches(raw.to_batches(max_chunksize=4096))


def odd_times(out: pa.Table) -> np.ndarray:
    """Rows whose times need a closer look: a start or end one second or less after 1970, which
    is what ``true`` and ``false`` become when a record's time is read as an integer (the
    diagnosis tells them from a real 0 or 1), and an end before the start (see
    :func:`end_before_start`)."""
    odd = np.zeros(out.num_rows, dtype=bool)
    if "start_time" not in out.column_names or "end_time" not in out.column_names:
        return odd
    micros = {}
    for name in ("start_time", "end_time"):
        micros[name] = pc.fill_null(out[name].combine_chunks().cast(pa.int64()), 2_000_000).to_numpy(
            zero_copy_only=False
        )
        odd |= micros[name] <= 1_000_000
    return odd | end_before_start(out)


def end_before_start(out: pa.Table) -> np.ndarray:
    """Rows whose ``end_time`` is before their ``start_time`` (no valid record has one)."""
    before = pc.less(out["end_time"], out["start_time"])
    return pc.fill_null(before, False).to_numpy(zero_copy_only=False)


def diagnose(raw_line: bytes, fmt: Format, max_line_bytes: int) -> str | None:
    """Why a suspect line is bad; None if it is fine after all; '' if it carries no record."""
    if len(raw_line) > max_line_bytes:
        return f"line too long ({len(raw_line)} bytes; the limit is {max_line_bytes})"
    try:
        text = raw_line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    stripped = text.strip()
    if fmt.name == "whisker":
        if not stripped or stripped.startswith(fmt.ignorable):
            return ""
        if stripped.startswith("error:"):
            return f"event stream error: {stripped[6:].strip()}"
        if stripped.startswith("data:"):
            stripped = stripped[5:].strip()
    if not stripped:
        return "blank line"
    try:
        doc = loads(stripped)
    except TooDeep as exc:
        return str(exc)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    return fmt.diagnose(doc)


def line_bytes(lines: pa.Array, idx: int) -> bytes:
    """One line of ``lines`` without its line ending."""
    return without_line_end(lines[idx].as_py())


def note_missing_columns(table: pa.Table, files: list[FileSummary], file_of_row: np.ndarray) -> None:
    """Warn once per file about columns Felix was told not to log: a column null in every row
    a batch holds of that file."""
    checks = (
        (
            "source_labels",
            "labels were not logged (Felix flowLogsFileIncludeLabels is off): label columns are null",
        ),
        (
            "enforced_policies",
            "policies were not logged (Felix flowLogsFileIncludePolicies is off): policy columns are null",
        ),
        ("dest_service_name", "service fields were not logged (Felix flowLogsFileIncludeService is off)"),
    )
    # A batch lists a file once per block it read from it: count rows per distinct file.
    slot: dict[int, int] = {}
    unique: list[FileSummary] = []
    for fs in files:
        if id(fs) not in slot:
            slot[id(fs)] = len(unique)
            unique.append(fs)
    rows_of = np.array([slot[id(fs)] for fs in files], dtype=np.int64)[file_of_row]
    rows = np.bincount(rows_of, minlength=len(unique))

    def all_null(col: str) -> np.ndarray:
        column = table[col]
        if column.null_count == 0:
            return np.zeros(len(unique), dtype=bool)
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        return (np.bincount(rows_of, weights=nulls, minlength=len(unique)) == rows) & (rows > 0)

    for col, text in checks:
        missing = all_null(col)
        if col == "enforced_policies":
            missing &= all_null("all_policies")
        for i in np.flatnonzero(missing):
            fs = unique[i]
            if fs.format in ("enterprise", "elasticsearch") and text not in fs.warnings:
                fs.warnings.append(text)
