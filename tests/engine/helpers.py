"""What the engine tests share: a query file whose header declares every kind of parameter."""

from __future__ import annotations

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
