"""The cyclic garbage collector paused while a computation builds many small objects.

The suggestion and its proof build many small objects (reports, edges,
endpoints, flow keys, decisions) that form no reference cycles, and keep most of them until they
are done. The collector, triggered every 700 allocations, then traverses them again and again,
and with them every object the process holds (pandas, matplotlib, pyarrow): over a quarter of the
CPU time of a day's report. :func:`collector_paused` turns it off for the length of a ``with`` block
and back on afterwards (only if it was on, and only when the last of several nested or
concurrent blocks ends), so the process is left as it was found; reference counting still frees
every object as soon as it is unused, so memory grows only by the cyclic garbage of the block,
collected when it ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the ``with`` block with the cyclic garbage collector off (see the module's notes)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
