"""What the engine tests share: a query file whose header declares every kind of parameter, and a
report's JSON without the times it was made at (to compare the engines' reports)."""

from __future__ import annotations

from typing import Any

HEADER = """\
-- name: {name}
-- description: Flows of one namespace.
-- Longer text,
-- on two lines.
-- param: namespace VARCHAR = NULL  -- only this namespace
-- param: min_bytes BIGINT = 0  -- at least this many bytes
-- param: label VARCHAR = 'it''s'  -- a quoted default
-- param: port INTEGER  -- required
SELECT $namespace AS ns, $min_bytes AS b, $label AS l, $port AS p -- $not_a_param
"""


def without_times(value: Any) -> Any:
    """A report's JSON without the times it was generated at (the rest is the same on every run)."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if "generated" not in k}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value
