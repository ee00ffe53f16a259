"""The push receiver's batch log: a batch is known again by its content, for a bounded time."""

from __future__ import annotations

from flowlens.collect.batches import BatchLog, batch_digest


def test_a_batch_is_known_by_its_content_and_format_not_its_last_newline():
    body = b'{"a": 1}\n{"a": 2}'
    assert batch_digest(body, "goldmane") == batch_digest(body + b"\n", "goldmane")
    assert batch_digest(body, "goldmane") != batch_digest(body, "enterprise")
    assert batch_digest(body, "goldmane") != batch_digest(b'{"a": 2}\n{"a": 1}', "goldmane")


def test_the_log_forgets_what_is_older_than_its_window_or_beyond_its_limit():
    log = BatchLog(window=100, limit=3)
    log.add(1000.0, [b"a" * 16, b"b" * 16])
    log.add(1050.0, [b"c" * 16])
    assert b"a" * 16 in log and len(log) == 3
    log.add(1060.0, [b"d" * 16])  # past the limit: the oldest group goes
    assert b"a" * 16 not in log and b"c" * 16 in log
    log.add(1200.0, [b"e" * 16])  # past the window
    assert len(log) == 1 and b"e" * 16 in log


def test_the_log_survives_the_manifest_round_trip():
    log = BatchLog()
    log.add(1000.5, [bytes([i]) * 16 for i in range(5)])
    again = BatchLog.from_json(log.to_json())
    assert all(bytes([i]) * 16 in again for i in range(5)) and len(again) == 5
