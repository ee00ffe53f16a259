"""What every input format provides, and the checks they share.

A format turns one input record (a JSON text) into the canonical columns of
:mod:`flowlens.schema`. The fast path is SQL run by DuckDB over a batch of lines: ``structure`` is
the ``json_transform`` structure that parses a record once, ``columns`` are the SQL expressions
that map the parsed struct (``j``) to canonical columns, and ``suspect`` is a cheap SQL condition
that, with the checks the format declares on the query's Arrow result (``text_columns``,
``json_ints``, ``json_counters``, ``not_null``, ``groups``), is true for every record that *might* be bad. Only
suspect records are looked at one by one, in Python, by ``diagnose``, which either names what is
wrong (the record is quarantined with that reason) or returns ``None`` (the record is fine, e.g.
an old record without optional keys).

Label columns come out of the SQL as lists of ``k=v`` strings and policy columns as lists of raw
hit texts (a hit string, or the JSON text of a Goldmane/Whisker hit object); :mod:`flowlens.ingest`
turns them into maps and POLICY_HIT structs with Arrow, which is much faster than SQL lambdas.
A format may instead name them in ``json_columns``: the SQL then yields the JSON text of the
labels object or of the whole policies object, and ingest converts (and checks) each distinct
text once; label sets and policy traces repeat endlessly, so this is the cheapest way of all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# JSON "types" used by the per-record checks.
INT = "int"
STR = "str"
#: text where a JSON number is kept as its text too: what the batch query makes of any scalar in
#: a field it reads as VARCHAR (it cannot tell ``5`` from ``"5"``); a boolean, a list or an object
#: there is wrong (the batch tells those apart by their text)
TEXT = "text"
STR_LIST = "str_list"
#: a list of TEXT items
TEXT_LIST = "text_list"
INT_LIST = "int_list"
LABELS_OBJ = "labels_obj"  # {"labels": ["k=v", ...]}
STR_OR_INT = "str_or_int"
#: a counter, coerced the way Elasticsearch coerces the flow index's numeric fields: an integer, a
#: number (rounded), numeric text or a boolean; anything else is wrong (see coerce_counter)
COUNTER = "counter"
#: a date as Elasticsearch's default date mapping takes one (``strict_date_optional_time||epoch_millis``):
#: epoch milliseconds (a number, or numeric text), or an ISO-8601 date text (what fluent-bit's
#: Elasticsearch output writes for ``@timestamp``); one out of range is no time, and not wrong
DATE_OR_EPOCH_MS = "date_or_epoch_ms"
ANY = "any"

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Seconds since the epoch that DuckDB and Parquet can hold as a timestamp (years 1..9999).
MAX_EPOCH_SECONDS = 253_402_300_799


@dataclass(frozen=True)
class Format:
    """One input format."""

    name: str
    description: str
    structure: Mapping[str, Any]
    columns: Mapping[str, str]
    suspect: str
    diagnose: Callable[[Any], str | None]
    #: SQL expression turning the raw line ``t`` into the JSON text of the record (NULL: not a
    #: record, e.g. framing of an event stream).
    record_sql: str = "t"
    #: text a line may start with when it carries no record (counted as ignored, not quarantined)
    ignorable: tuple[str, ...] = ()
    #: SQL expressions for the JSON text of ``source_labels`` / ``dest_labels`` (an object
    #: ``{"labels": ["k=v", ...]}``) and of ``policies`` (an object of the four traces, each a list
    #: of hit strings), converted by ingest once per distinct text instead of through ``columns``.
    json_columns: Mapping[str, str] = field(default_factory=dict)
    #: Result columns, text or lists of label texts, that carry a JSON string field as written
    #: (perhaps lower-cased or defaulted). DuckDB puts any JSON value into a VARCHAR field as its
    #: text, so ingest makes a record suspect when such a value may not have been a string:
    #: text that starts with ``[`` or ``{``, or is ``true`` or ``false``; a label that starts
    #: with ``[`` or ``{``, has no ``=`` or is null. Checked on the query's Arrow result, which costs a
    #: small part of the same test in ``suspect``.
    text_columns: tuple[str, ...] = ()
    #: Result columns that hold the JSON text of an integer field (a field the structure reads
    #: as JSON, because null is a valid value there and a value of the wrong type must not pass
    #: for null), each with the range its value must lie in. Ingest turns them into integers on
    #: the query's Arrow result: a text that is not a plain integer (a string, a boolean, a
    #: fraction) or a value out of range makes the record suspect.
    json_ints: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: Result columns that hold the JSON text of a counter field (COUNTER; read as JSON so that a
    #: value of the wrong type is not read as a missing one). Ingest turns them into integers on
    #: the query's Arrow result with :func:`coerce_counter`, the diagnosis' own coercion: a value
    #: that coerces is stored coerced, one that does not makes the record suspect.
    json_counters: tuple[str, ...] = ()
    #: Result columns that hold the JSON text of a time in whole seconds since 1970 (read as JSON
    #: so that numeric text or a fraction, which the diagnosis rejects, is not taken for the
    #: number it spells). Ingest makes them timestamps on the query's Arrow result, as
    #: ``json_ints`` with the range 0..MAX_EPOCH_SECONDS: anything else is null there, and suspect.
    json_times: tuple[str, ...] = ()
    #: Result columns that no valid record leaves null (a field that is missing, of the wrong
    #: type or out of range is null there): a null makes the record suspect.
    not_null: tuple[str, ...] = ()
    #: Groups of result columns that Calico writes all or none of (an older release lacks the
    #: whole group): a row where some but not all of a group's columns are null is suspect. A
    #: group's integer columns should be ``json_ints`` or ``json_counters``, whose values of the
    #: wrong type are seen, so that a group with a wrong value is never taken for a group that
    #: is not there.
    groups: tuple[tuple[str, ...], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def structure_json(self) -> str:
        return json.dumps(self.structure, separators=(",", ":"), sort_keys=True)


def _is_text(value: Any) -> bool:
    """A string, or a number (not a boolean), which the batch reads as its text."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def type_error(name: str, value: Any, kind: str) -> str | None:
    """None when ``value`` fits ``kind`` (null always fits), else a reason naming the field."""
    if value is None:
        return None
    ok: bool
    if kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX
        if not ok and isinstance(value, float) and value.is_integer():
            ok = True
    elif kind == STR:
        ok = isinstance(value, str)
    elif kind in (TEXT, STR_OR_INT):
        ok = _is_text(value)
    elif kind == COUNTER:
        ok = coerce_counter(value) is not None
    elif kind == DATE_OR_EPOCH_MS:
        ok = _is_text(value) and (
            not isinstance(value, str) or _is_number(value) or iso_date(value) is not None
        )
    elif kind == STR_LIST:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind == TEXT_LIST:
        ok = isinstance(value, list) and all(_is_text(v) for v in value)
    elif kind == INT_LIST:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif kind == LABELS_OBJ:
        ok = isinstance(value, dict) and type_error(name, value.get("labels"), STR_LIST) is None
    else:
        ok = True
    if ok:
        return None
    return f"wrong type for field '{name}': expected {_KIND_WORDS[kind]}, got {_json_type(value)}"


def coerce_counter(value: Any) -> int | None:
    """The integer a counter value (parsed JSON) coerces to, or None (see COUNTER)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, str):
        text = value.strip()
        if "_" in text:  # (Python reads 1_000; Elasticsearch does not)
            return None
        try:
            return coerce_counter(int(text, 0) if text[:2].lower() == "0x" else int(text))
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return None
    if isinstance(value, float) and value == value and abs(value) < 2**63:  # (not NaN)
        return round(value)
    return None


_KIND_WORDS = {
    INT: "an integer",
    COUNTER: "a number",
    STR: "a string",
    TEXT: "a string",
    STR_OR_INT: "a string or an integer",
    STR_LIST: "a list of strings",
    TEXT_LIST: "a list of strings",
    INT_LIST: "a list of integers",
    LABELS_OBJ: 'an object {"labels": [strings]}',
    DATE_OR_EPOCH_MS: "epoch milliseconds or an ISO-8601 date",
}


def iso_date(text: str) -> dt.datetime | None:
    """The instant an ISO-8601 date text names (UTC when it names no offset), or None."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the number {value}" if INT64_MIN <= value <= INT64_MAX else "an integer out of range"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def check_fields(doc: Mapping[str, Any], types: Mapping[str, str], required: tuple[str, ...]) -> str | None:
    """The first problem with ``doc``: a missing required field or a field of the wrong type."""
    for name in required:
        if doc.get(name) is None:
            return f"missing required field '{name}'"
    for name, kind in types.items():
        reason = type_error(name, doc.get(name), kind)
        if reason:
            return reason
    return None


def check_range(doc: Mapping[str, Any], name: str, low: int, high: int) -> str | None:
    value = doc.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
        return f"field '{name}' out of range: {value} (expected {low}..{high})"
    return None


def check_labels(items: list[str] | None, name: str) -> str | None:
    """Labels are ``k=v`` strings; a key given twice cannot become a map."""
    if not items:
        return None
    keys = [item.split("=", 1)[0] for item in items]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})[0]
        return f"duplicate label key '{dup}' in '{name}'"
    return None


# --- SQL building blocks shared by the formats -------------------------------------------------


def sql_not_plain_int(expr: str) -> str:
    """True where a field read as JSON holds something other than a plain integer in 64 bits:
    numeric text (``"123"``), a fraction or exponent (``12.5``, ``1e3``), a boolean, a list, an
    object. ``TRY_CAST`` alone reads numeric text and rounds a fraction, which the diagnosis
    rejects (an integer INT field); a plain integer's JSON text is exactly its digits."""
    return f"({expr} IS NOT NULL AND TRY_CAST({expr} AS BIGINT)::VARCHAR IS DISTINCT FROM {expr}::VARCHAR)"


def sql_shape_lost(expr: str, key: str) -> str:
    """True where a list or object field came out NULL although the record names its key: a
    value of another shape (``"a=b"`` where a list belongs, a list where an object does) reads as
    NULL, as a missing field does, and must not pass for one. The text test runs only on the
    rows where the field is NULL; an explicit null, or the key's name inside some text, only
    has the line looked at (the diagnosis clears it)."""
    # (a CASE: the text is searched on those rows only, where AND would search every line)
    return f"CASE WHEN {expr} IS NULL THEN contains(rec, '\"{key}\"') ELSE false END"


def sql_epoch_seconds(expr: str) -> str:
    return f"CASE WHEN {expr} BETWEEN 0 AND {MAX_EPOCH_SECONDS} THEN to_timestamp({expr}) END"


def sql_epoch_ms(expr: str) -> str:
    return f"CASE WHEN {expr} BETWEEN 0 AND {MAX_EPOCH_SECONDS * 1000} THEN epoch_ms({expr}) END"


def sql_date_or_epoch_ms(text: str) -> str:
    """A :data:`DATE_OR_EPOCH_MS` field read as VARCHAR (a JSON number reads as its digits) as a
    timestamp: epoch milliseconds when it is an integer, else the ISO-8601 date it names; NULL
    when it is neither (the line is then suspect, see :func:`sql_date_or_epoch_ms_odd`, and
    kept without a time if it is some other number)."""
    # (a whole number only: the cast to BIGINT alone would also read hex text and round a fraction)
    ms = f"CASE WHEN TRY_CAST({text} AS DOUBLE) = TRY_CAST({text} AS BIGINT) THEN TRY_CAST({text} AS BIGINT) END"
    return f"COALESCE({sql_epoch_ms(ms)}, TRY_CAST({text} AS TIMESTAMPTZ))"


def sql_date_or_epoch_ms_odd(text: str) -> str:
    """True where a :data:`DATE_OR_EPOCH_MS` field holds something :func:`sql_date_or_epoch_ms`
    makes no timestamp of (a boolean, a list, a text that is no date, a number out of range):
    the diagnosis names what is wrong, or clears the line."""
    return f"({text} IS NOT NULL AND {sql_date_or_epoch_ms(text)} IS NULL)"
