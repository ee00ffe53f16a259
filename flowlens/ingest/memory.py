"""The Arrow memory pool ingest allocates from: the C library's allocator while a parser is open.

pyarrow allocates from mimalloc by default. Ingest allocates and frees large buffers all the
time (each batch's takes, casts and dictionaries, some tens of MB, then the Parquet writer's
pages), and with mimalloc the process spends about twice as long in the kernel as with the C
library's ``malloc`` (with fewer page faults, so not for faulting memory in; a native profile
shows ``madvise`` calls among it). 1 M records of the
``labels-policies`` layout took 13.4 s of CPU with mimalloc (3.0 s of it in the kernel) and
11.9 s with the system allocator (1.3 s in the kernel), one run each, with about the same peak
memory (0.99 GB). The stored values do not depend on the allocator.

While at least one :class:`IngestMemory` is open (each
:class:`~flowlens.ingest.parse.BatchParser` holds one), the system pool is Arrow's default pool;
the pool before it comes back when the last one closes. Arrays keep the pool they were allocated
from, so the switch is safe at any moment. A process whose default pool is not mimalloc (chosen
with Arrow's ``ARROW_DEFAULT_MEMORY_POOL=jemalloc`` or ``system``, or ``pa.set_memory_pool``)
keeps it; so does one that called :func:`keep_chosen_pool`, as the ``flowlens`` command does when
``ARROW_DEFAULT_MEMORY_POOL`` is set at all (``mimalloc`` included).
"""

from __future__ import annotations

import threading

import pyarrow as pa

#: Arrow's own setting, which names the pool a process wants: when set, the command leaves it alone
POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"

_lock = threading.Lock()
_open = 0  # IngestMemory objects open
_before: pa.MemoryPool | None = None  # the default pool to restore, while switched
_keep = False  # keep_chosen_pool() was called


def keep_chosen_pool(keep: bool = True) -> None:
    """Leave Arrow's default pool alone during ingest (``keep``), or switch again (False)."""
    global _keep
    _keep = keep


def ingest_pool() -> pa.MemoryPool | None:
    """The pool ingest allocates from; None when the process chose its own."""
    if _keep or pa.default_memory_pool().backend_name != "mimalloc":
        return None
    return pa.system_memory_pool()


class IngestMemory:
    """Makes :func:`ingest_pool` Arrow's default pool until :meth:`close` (the last one open
    restores the pool that was the default before the first)."""

    def __init__(self) -> None:
        global _open, _before
        self._closed = False
        with _lock:
            if _open == 0:
                pool = ingest_pool()
                current = pa.default_memory_pool()
                if pool is not None and pool.backend_name != current.backend_name:
                    _before = current
                    pa.set_memory_pool(pool)
            _open += 1

    def close(self) -> None:
        global _open, _before
        with _lock:
            if self._closed:
                return
            self._closed = True
            _open -= 1
            if _open == 0 and _before is not None:
                pa.set_memory_pool(_before)
                _before = None
