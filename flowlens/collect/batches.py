"""The push receiver's position: the batches it has committed, so that a batch sent again adds nothing.

Senders retry: Goldmane's emitter POSTs a 5-minute window again after any answer but 200 (up to
15 times, backing off to 30 s), Fluent Bit resends a chunk that failed. A retry carries the same
records, but the receiver cannot tell it from new data by the records alone: two identical
lines can be two real flows. What it can tell is the *batch*: a retried request has the same
body. So each committed batch is remembered by a 16-byte XXH3 digest of its content
(decompressed, trailing white space removed, with its format), recorded in the manifest in the
same commit as its rows (:class:`BatchLog`). A request whose digest is known is answered 200 at
once and adds nothing; one whose commit failed was never recorded, and its retry is stored.

The log is bounded: digests older than ``window`` seconds, or beyond the newest ``limit``, are
forgotten (a sender that retries later than that would store its batch twice; the defaults, one
hour and 100,000 batches, are far beyond what Goldmane's emitter and Fluent Bit do).
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import xxhash

DIGEST_BYTES = 16
DEFAULT_WINDOW = 3600.0
DEFAULT_LIMIT = 100_000


def batch_digest(data: bytes, fmt: str) -> bytes:
    """The digest that recognises a batch sent again."""
    h = xxhash.xxh3_128(fmt.encode())
    h.update(b"\0")
    h.update(data.rstrip())
    return h.digest()


@dataclass
class BatchLog:
    """Digests of committed batches, oldest first, grouped by the time of their commit."""

    window: float = DEFAULT_WINDOW
    limit: int = DEFAULT_LIMIT
    _groups: deque[tuple[float, list[bytes]]] = field(default_factory=deque)
    _known: set[bytes] = field(default_factory=set)

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._known

    def __len__(self) -> int:
        return len(self._known)

    def add(self, when: float, digests: list[bytes]) -> None:
        """Remember ``digests`` as committed at ``when`` (a Unix time), and forget what is too old."""
        fresh = [d for d in digests if d not in self._known]
        if fresh:
            self._groups.append((when, fresh))
            self._known.update(fresh)
        self._prune(when)

    def _prune(self, now: float) -> None:
        while self._groups and (self._groups[0][0] < now - self.window or len(self._known) > self.limit):
            _, gone = self._groups.popleft()
            self._known.difference_update(gone)

    def to_json(self) -> list[list[Any]]:
        return [[round(when, 3), base64.b64encode(b"".join(ds)).decode("ascii")] for when, ds in self._groups]

    @classmethod
    def from_json(cls, data: Any, window: float = DEFAULT_WINDOW, limit: int = DEFAULT_LIMIT) -> BatchLog:
        log = cls(window=window, limit=limit)
        for entry in data or []:
            when, packed = float(entry[0]), base64.b64decode(entry[1])
            digests = [packed[i : i + DIGEST_BYTES] for i in range(0, len(packed), DIGEST_BYTES)]
            log._groups.append((when, digests))
            log._known.update(digests)
        return log
