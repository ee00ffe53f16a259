"""JSON from untrusted input, read with bounded nesting.

Flow records nest a few levels deep (a Whisker item inside a response: five). A line of a few
thousand brackets makes Python's :func:`json.loads` raise ``RecursionError``, which is no
``ValueError`` and used to abort the whole run. :func:`loads` refuses anything nested deeper than
:data:`MAX_JSON_DEPTH` with :class:`TooDeep` (a ``ValueError``, so every caller that handles
invalid JSON handles it too), before Python parses it; :func:`json_depth` measures the nesting
with numpy, strings and escapes respected, so a string full of brackets is not counted.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 64

_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


class TooDeep(ValueError):
    """JSON nested deeper than the limit."""


def json_depth(data: bytes | str) -> int:
    """The deepest nesting of lists and objects in JSON text (0 for a scalar), not counting
    brackets inside strings. Text that is not JSON gets a number too (its brackets counted the
    same way); only its comparison with a limit matters."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    a = np.frombuffer(raw, dtype=np.uint8)
    quotes = a == ord('"')
    backslash = a == ord("\\")
    if backslash.any():
        # A quote is escaped when an odd number of backslashes precedes it.
        idx = np.arange(len(a))
        last_other = np.maximum.accumulate(np.where(backslash, -1, idx))
        run = idx - last_other  # backslashes ending at each position (0 where none)
        before = np.concatenate([[0], run[:-1]])
        quotes &= (before % 2) == 0
    inside = (np.cumsum(quotes) % 2).astype(bool)  # after an opening quote, up to its closing one
    delta = np.where(inside, 0, _OPEN[a]).astype(np.int64)
    depth = np.cumsum(delta)
    return int(depth.max()) if len(depth) else 0


def check_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`TooDeep` when ``data`` nests deeper than ``limit``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    if json_depth(raw) > limit:
        raise TooDeep(f"JSON nested deeper than {limit} levels")


def loads(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """:func:`json.loads`, refusing JSON nested deeper than ``limit`` (:class:`TooDeep`)."""
    check_depth(data, limit)
    try:
        return json.loads(data)
    except RecursionError:  # (cannot happen below the limit; a guard all the same)
        raise TooDeep(f"JSON nested deeper than {limit} levels") from None
