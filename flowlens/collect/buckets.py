"""The Goldmane collector's position: which 15-second buckets the store holds, and in full or not.

Goldmane aggregates flows into 15-second buckets (``AGGREGATION_WINDOW``) keyed by their start
time, and keeps about an hour of them (242 buckets). Both ways of reading it deliver whole
buckets, one flow per flow key and bucket, ``start_time`` the bucket's start and ``end_time``
its end:

* ``List`` over ``[B, B + 15)`` returns every flow key of bucket ``B``, each aggregated over that
  one bucket (the windows with ``start >= B`` and ``end <= B + 15``);
* ``Stream`` with ``start_time_gte = B`` first sends every bucket from ``B`` up to the one due to
  be streamed next (its backfill), then each bucket once, in order, as Goldmane rolls it over,
  about 15-30 s after it ends.

So the unit of collection is a *bucket flow*: one flow key in one bucket. Its **dedupe key** is
the bucket (``start_time``, ``end_time``) and the flow key (every ``FlowKey`` field, policy
trace included), hashed to 8 bytes (:func:`flowlens.collect.goldmane_json.flow_digest`).
``FlowResult.id`` is not used: Goldmane says it does not survive a restart.

The **position** (:class:`BucketPosition`) says what the store has:

* ``complete_before``: every bucket that starts before it is stored in full (as far as Goldmane
  held it): a stream delivers buckets in order, so a flow of bucket ``S`` proves the buckets
  before ``S`` complete, and a listed bucket is complete when its last page is in;
* ``open``: for the buckets at or after ``complete_before`` that are stored in part (the
  newest one, typically, committed before the stream moved on), the dedupe keys stored.

After a restart the collector asks for everything from ``complete_before`` on and drops what
``open`` says is stored: nothing missed while Goldmane still holds it, nothing stored twice. A
bucket streamed again (after a reconnect) or listed again adds nothing; the same key in the same
bucket with other counters (Goldmane updated a bucket after streaming it: late reports from a
node) is dropped too, as a duplicate: the first version stored stands.

**Loss**: when ``complete_before`` is older than the oldest data Goldmane still holds (the
collector was down longer than Goldmane's history, about an hour), the buckets between are gone;
:func:`lost_window` says which, and the collector logs it, counts it and records it in the
position.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

BUCKET_SECONDS = 15
#: How much history Goldmane keeps: 240 buckets of 15 s behind the current one.
GOLDMANE_HISTORY_SECONDS = 240 * BUCKET_SECONDS
DIGEST_BYTES = 8
LOSSES_KEPT = 20


def bucket_of(epoch: int) -> int:
    """The start of the 15-second bucket that holds ``epoch`` (Goldmane aligns buckets to it)."""
    return epoch - epoch % BUCKET_SECONDS


@dataclass
class BucketPosition:
    """What a Goldmane collector has (committed, or received and about to be committed)."""

    complete_before: int = 0
    open: dict[int, set[bytes]] = field(default_factory=dict)
    newest_end: int = 0  # end of the newest bucket had (for the lag)
    losses: list[tuple[int, int]] = field(default_factory=list)

    def accept(self, start: int, end: int, digest: bytes) -> bool:
        """Whether a flow of the bucket ``[start, end)`` with dedupe key ``digest`` is new; if it
        is, it is had from now on. Flows must come in the order Goldmane sends them (bucket after
        bucket) since the last :meth:`resume_from`."""
        if start < self.complete_before:
            return False
        had = self.open.get(start)
        if had is not None and digest in had:
            return False
        if start > self.complete_before:
            # a later bucket: the ones before it are complete
            self.open = {b: d for b, d in self.open.items() if b >= start}
            self.complete_before = start
        self.open.setdefault(start, set()).add(digest)
        self.newest_end = max(self.newest_end, end)
        return True

    def complete_until(self, boundary: int) -> None:
        """Every bucket that starts before ``boundary`` is had in full (its listing ended)."""
        if boundary > self.complete_before:
            self.open = {b: d for b, d in self.open.items() if b >= boundary}
            self.complete_before = boundary
            self.newest_end = max(self.newest_end, boundary)

    def record_loss(self, start: int, end: int) -> None:
        self.losses = [*self.losses, (start, end)][-LOSSES_KEPT:]

    def copy(self) -> BucketPosition:
        return BucketPosition(
            self.complete_before,
            {b: set(d) for b, d in self.open.items()},
            self.newest_end,
            list(self.losses),
        )

    def open_flows(self) -> int:
        return sum(len(d) for d in self.open.values())

    def to_json(self) -> dict[str, Any]:
        """The position as the manifest keeps it (digests packed: 8 bytes each, base64)."""
        return {
            "complete_before": self.complete_before,
            "open": {
                str(b): base64.b64encode(b"".join(sorted(d))).decode("ascii")
                for b, d in sorted(self.open.items())
            },
            "newest_end": self.newest_end,
            "losses": [list(x) for x in self.losses],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> BucketPosition:
        """The position a manifest recorded (an empty one for None or a position of another kind)."""
        if not data:
            return cls()
        found = cls(
            complete_before=int(data.get("complete_before", 0)), newest_end=int(data.get("newest_end", 0))
        )
        for bucket, packed in dict(data.get("open", {})).items():
            raw = base64.b64decode(packed)
            found.open[int(bucket)] = {raw[i : i + DIGEST_BYTES] for i in range(0, len(raw), DIGEST_BYTES)}
        found.losses = [(int(a), int(b)) for a, b in data.get("losses", [])]
        return found


def lost_window(
    complete_before: int, oldest_held: int | None, now: int, history: int
) -> tuple[int, int] | None:
    """The buckets a collector missed for good, or None.

    ``complete_before``: the collector's position (0: it never collected; nothing is lost then);
    ``oldest_held``: the start of the oldest flow Goldmane returns (None: it holds none);
    ``history``: how many seconds Goldmane keeps. Goldmane holds everything after ``now -
    history``, and whatever older flows it still returns; buckets older than both, from
    ``complete_before`` on, are gone."""
    if complete_before <= 0:
        return None
    readable = bucket_of(now - history) + BUCKET_SECONDS  # the oldest bucket surely still held
    if oldest_held is not None:
        readable = min(readable, oldest_held)
    if complete_before >= readable:
        return None
    return complete_before, readable
