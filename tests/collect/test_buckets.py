"""The Goldmane position (flowlens.collect.buckets): whatever order of restarts, resends and
reconnects, each bucket flow is accepted exactly once, and lost history is told exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.collect.buckets import BUCKET_SECONDS, BucketPosition, bucket_of, lost_window

B0 = 1_796_000_010 - 1_796_000_010 % 15


def _stream(buckets: dict[int, list[bytes]], start: int) -> list[tuple[int, bytes]]:
    """What Goldmane sends from ``start`` on: every bucket in order, its flows in any order."""
    return [(b, d) for b in sorted(buckets) if b >= start for d in buckets[b]]


@st.composite
def histories(draw: st.DrawFn) -> tuple[dict[int, list[bytes]], list[tuple[int, bool]]]:
    n = draw(st.integers(1, 8))
    buckets = {
        B0 + i * BUCKET_SECONDS: [bytes([i, j]) * 4 for j in range(draw(st.integers(0, 5)))] for i in range(n)
    }
    # connections: each delivers a prefix of the stream from the resume point; commits keep a
    # prefix of what was delivered, then the collector dies (or not)
    cuts = draw(st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=6))
    return buckets, cuts


@settings(max_examples=300)
@given(histories())
def test_every_bucket_flow_is_stored_once_across_kills_and_reconnects(history):
    buckets, cuts = history
    stored: list[tuple[int, bytes]] = []
    committed = BucketPosition()
    for deliver, killed in cuts:
        had = committed.copy()  # a restart resumes from the last commit
        pending: list[tuple[int, bytes]] = []
        for bucket, digest in _stream(buckets, had.complete_before)[:deliver]:
            if had.accept(bucket, bucket + BUCKET_SECONDS, digest):
                pending.append((bucket, digest))
        if not killed:  # committed; a kill drops what was pending
            stored += pending
            committed = had
    # a last run that reads everything
    had = committed.copy()
    for bucket, digest in _stream(buckets, had.complete_before):
        if had.accept(bucket, bucket + BUCKET_SECONDS, digest):
            stored.append((bucket, digest))
    expected = [(b, d) for b in sorted(buckets) for d in buckets[b]]
    assert sorted(stored) == sorted(expected)
    assert len(stored) == len(set(stored))


def test_a_position_survives_the_manifest_round_trip():
    position = BucketPosition()
    for i in range(3):
        position.accept(B0 + 15, B0 + 30, bytes([i]) * 8)
    position.record_loss(B0 - 600, B0 - 300)
    again = BucketPosition.from_json(position.to_json())
    assert again.complete_before == position.complete_before == B0 + 15
    assert again.open == position.open and again.open_flows() == 3
    assert again.losses == [(B0 - 600, B0 - 300)]
    assert BucketPosition.from_json(None).complete_before == 0


def test_a_later_bucket_completes_the_ones_before_it():
    position = BucketPosition()
    assert position.accept(B0, B0 + 15, b"a" * 8)
    assert position.accept(B0 + 30, B0 + 45, b"b" * 8)
    assert position.complete_before == B0 + 30 and list(position.open) == [B0 + 30]
    assert not position.accept(B0, B0 + 15, b"c" * 8)  # an older bucket: already complete


def test_loss_is_what_lies_before_the_oldest_data_goldmane_still_covers():
    now = B0 + 10_000
    readable = bucket_of(now - 3600) + 15
    assert lost_window(0, None, now, 3600) is None  # never collected: nothing lost
    assert lost_window(now - 600, now - 3000, now, 3600) is None  # still held
    assert lost_window(B0, None, now, 3600) == (B0, readable)
    assert lost_window(B0, now - 100, now, 3600) == (B0, readable)  # held nothing older
    assert lost_window(B0, B0 + 150, now, 3600) == (B0, B0 + 150)  # it kept more than an hour
