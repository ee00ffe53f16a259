"""One value of a result as the text formats write it, in Python: the definition the SQL follows.

Owns :func:`plain` (a value from ``Table.to_pylist`` in its JSON-ready form: times in UTC ISO-8601
with ``Z``, maps and structs as objects with sorted keys, decimals as integers when whole, bytes
as hex, durations in seconds), :func:`records` (a table's rows so) and :func:`cell` (a plain value
as the text of a table, CSV or Markdown cell). The aligned table is written from these;
:mod:`flowlens.output.sql` writes the same text in DuckDB for the streamed formats, and a test
checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import TYPE_CHECKING, Any

from flowlens.output.text import json_safe

if TYPE_CHECKING:
    import pyarrow as pa

#: Seconds in the month and day of an interval, as DuckDB counts them (``epoch(INTERVAL ...)``).
_MONTH_SECONDS = 30 * 86400
_DAY_SECONDS = 86400


def plain(value: Any) -> Any:
    """A JSON-ready form of one value from ``Table.to_pylist``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if type(value).__name__ == "MonthDayNano":
        # pyarrow's interval: a named tuple (months, days, nanoseconds), in seconds as DuckDB counts.
        months, days, nanoseconds = value
        return float(months * _MONTH_SECONDS + days * _DAY_SECONDS) + nanoseconds / 1e9
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def records(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of ``table`` as JSON-ready dicts (maps become objects)."""
    maps = any(_has_map(t) for t in table.schema.types)
    rows = table.to_pylist(maps_as_pydicts="strict") if maps else table.to_pylist()
    return [{k: plain(v) for k, v in row.items()} for row in rows]


def _has_map(type_: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_map(type_):
        return True
    return any(_has_map(type_.field(i).type) for i in range(type_.num_fields))


def cell(value: Any) -> str:
    """A plain value (see :func:`plain`) as the text of a table, CSV or Markdown cell (lists and
    objects as compact JSON, escaped as the JSON formats escape)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json_safe(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return str(value)


def is_numeric(type_: pa.DataType) -> bool:
    """Whether a column of this type is right-aligned (and marked ``---:`` in Markdown)."""
    import pyarrow as pa

    return pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)
