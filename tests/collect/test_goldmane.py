"""The Goldmane collector against a real gRPC server (mutual TLS, 127.0.0.1) serving sample flows
the way Goldmane does: backfill and stream, reconnects, restarts, re-sent buckets, lost history.
Every test checks exact counts: each bucket flow stored once, none missed while it is held."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from flowlens.collect.buckets import BucketPosition, bucket_of
from flowlens.collect.committer import CollectOptions, Committer
from flowlens.collect.goldmane import GoldmaneCollector, GoldmaneOptions
from flowlens.collect.metrics import Metrics
from flowlens.errors import CollectError
from flowlens.store import Store
from tests.collect.conftest import stored_rows, wait_until
from tests.collect.helpers.certs import Pki
from tests.collect.helpers.fake_goldmane import BUCKET, GoldmaneServer


class Running:
    """A collector running in a thread of the test."""

    def __init__(
        self,
        store: Store,
        server: GoldmaneServer,
        pki: Pki,
        clock: Callable[[], float] = time.time,
        **options: object,
    ) -> None:
        self.committer = Committer(store, "goldmane", CollectOptions(lock_wait=10))
        self.options = GoldmaneOptions(
            address=server.address,
            ca=pki.ca,
            cert=pki.client_cert,
            key=pki.client_key,
            server_name="localhost",
            commit_every=0.2,
            backoff_max=0.5,
            page_size=7,
        )
        self.options = replace(self.options, **options)  # type: ignore[arg-type]
        self.metrics = Metrics("goldmane", "goldmane")
        self.collector = GoldmaneCollector(self.committer, self.options, self.metrics, clock=clock)
        self.thread = threading.Thread(target=self.collector.run, daemon=True)
        self.thread.start()

    def committed(self) -> float:
        return self.metrics.get("flows_committed_total")

    def stop(self, commit: bool = True) -> str:
        self.collector.stop()
        self.thread.join(timeout=30)
        outcome = self.collector.finish(commit=commit, wait=5)
        self.committer.close()
        return outcome


@pytest.fixture
def running(store: Store, pki: Pki) -> Iterator[Callable[..., Running]]:
    made: list[Running] = []

    def start(server: GoldmaneServer, clock: Callable[[], float] = time.time, **options: object) -> Running:
        r = Running(store, server, pki, clock, **options)
        made.append(r)
        return r

    yield start
    for r in made:
        if r.thread.is_alive():
            r.stop()


def test_a_first_run_lists_what_goldmane_holds_then_streams_new_buckets(goldmane, running, store):
    server = goldmane(buckets=20)
    fake = server.fake
    run = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the backfill")
    for _ in range(3):
        fake.rollover(fake.ring.flows(fake.next_stream))
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the streamed buckets")
    run.stop()
    rows, distinct = stored_rows(store)
    assert rows == distinct == fake.total()
    assert fake.list_calls > 20  # bucket by bucket, page by page (7 flows a page)
    assert run.metrics.get("duplicates_dropped_total") == 0


def test_a_restart_resumes_where_the_last_commit_ended_without_a_gap_or_a_duplicate(goldmane, running, store):
    server = goldmane(buckets=10)
    fake = server.fake
    first = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the first run")
    assert first.stop() == "nothing pending"
    # while the collector is down, Goldmane goes on
    for _ in range(4):
        fake.rollover(fake.ring.flows(fake.next_stream))
    second = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the second run")
    fake.rollover(fake.ring.flows(fake.next_stream))
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the next bucket")
    second.stop()
    rows, distinct = stored_rows(store)
    assert rows == distinct == fake.total()
    # the second run asked only for what the store lacked, and dropped what it re-read of the open bucket
    assert second.metrics.get("flows_received_total") - second.metrics.get("duplicates_dropped_total") == (
        second.metrics.get("flows_committed_total")
    )


def test_a_bucket_committed_in_part_is_completed_after_a_restart_and_not_doubled(goldmane, running, store):
    server = goldmane(buckets=4)
    fake = server.fake
    # two List calls find the oldest flow, one sees whether there is anything to list; then two
    # pages of 7 flows of the first bucket, and Goldmane stalls: the commit at 10 flows ends
    # inside that bucket
    fake.list_limit = 5
    first = running(server, commit_every=3600.0, commit_flows=10)
    wait_until(lambda: first.committed() >= 10, what="a commit")
    first.collector.stop()
    fake.list_gate.set()
    first.thread.join()
    first.collector.finish(commit=False)
    first.committer.close()
    fake.list_limit = None
    position = BucketPosition.from_json(first.committer.position())
    assert position.open, "the last commit ended inside a bucket"
    partial = stored_rows(store)[0]
    assert 0 < partial < fake.total()
    second = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the rest")
    second.stop()
    rows, distinct = stored_rows(store)
    assert rows == distinct == fake.total()
    assert second.metrics.get("duplicates_dropped_total") == position.open_flows()


def test_a_goldmane_restart_and_broken_streams_lose_nothing_and_double_nothing(goldmane, running, store):
    server = goldmane(buckets=6)
    fake = server.fake
    run = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the backfill")
    fake.break_streams()
    fake.rollover(fake.ring.flows(fake.next_stream))
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the bucket after a broken stream")
    server.stop()  # Goldmane restarts (its memory kept: a pod restart loses it, see the loss test)
    fake.rollover(fake.ring.flows(fake.next_stream))
    time.sleep(0.5)
    server.start()
    fake.rollover(fake.ring.flows(fake.next_stream))
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the buckets after the restart")
    run.stop()
    rows, distinct = stored_rows(store)
    assert rows == distinct == fake.total()
    assert run.metrics.get("reconnects_total") >= 2


def test_a_bucket_streamed_again_after_a_reconnect_adds_nothing_even_with_other_counters(
    goldmane, running, store
):
    server = goldmane(buckets=3)
    fake = server.fake
    run = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the backfill")
    bucket = fake.rollover(fake.ring.flows(fake.next_stream))
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the new bucket")
    # Goldmane updated the bucket after streaming it (a node reported late), then the stream
    # breaks: the collector resumes from that bucket, still open, and gets it again
    for flow in fake.buckets[bucket]:
        flow.packets_in += 1
    before = run.metrics.get("duplicates_dropped_total")
    fake.break_streams()
    wait_until(
        lambda: run.metrics.get("duplicates_dropped_total") - before == len(fake.buckets[bucket]),
        what="the bucket sent again",
    )
    run.stop()
    rows, distinct = stored_rows(store)
    assert rows == distinct == fake.total()
    assert run.metrics.get("reconnects_total") == 1


def test_downtime_longer_than_goldmanes_history_is_reported_as_lost(goldmane, running, store, sample_objects):
    server = goldmane(buckets=4)
    fake = server.fake
    run = running(server)
    wait_until(lambda: stored_rows(store)[0] == fake.total(), what="the backfill")
    assert run.stop() == "nothing pending"
    first_total = fake.total()
    had = run.committer.position()["complete_before"]
    # Goldmane restarts with an empty memory and runs for longer than it keeps flows
    server.stop()
    fake.buckets.clear()
    now = time.time() + 2 * 3600
    fresh_first = fake.next_stream + 2 * 3600 - 4 * BUCKET
    fake.next_stream = fresh_first + 4 * BUCKET
    for b in range(fresh_first, fake.next_stream, BUCKET):
        fake.buckets[b] = fake.ring.flows(b)
    server.start()
    later = running(server, clock=lambda: now)
    wait_until(lambda: later.metrics.get("lost_seconds_total") > 0, what="the loss")
    held = sum(map(len, fake.buckets.values()))
    wait_until(lambda: stored_rows(store)[0] == first_total + held, what="the flows Goldmane holds")
    later.stop()
    position = later.committer.position()
    ((lost_from, lost_to),) = position["losses"]
    # lost: from where the store ended to the oldest bucket Goldmane surely still covers (it
    # holds nothing older: what it did not receive since its restart cannot be told apart)
    assert lost_from == had
    assert lost_to == bucket_of(int(now) - 3600) + BUCKET
    assert later.metrics.get("lost_seconds_total") == lost_to - lost_from
    # and the flows it does hold are all stored
    assert (
        stored_rows(store)[0] == stored_rows(store)[1] == sum(map(len, fake.buckets.values())) + first_total
    )


def test_a_client_without_the_right_certificate_is_refused_and_retried(goldmane, running, store, pki):
    server = goldmane(buckets=2)
    run = running(server, cert=pki.stranger_cert, key=pki.stranger_key)
    wait_until(lambda: run.metrics.get("reconnects_total") >= 1, what="a refused connection")
    run.stop()
    assert stored_rows(store) == (0, 0)


def test_missing_or_unreadable_certificates_are_a_clear_error(store, pki, tmp_path: Path):
    committer = Committer(store, "goldmane", CollectOptions())
    try:
        with pytest.raises(CollectError, match="--cert and --key go together"):
            GoldmaneCollector(
                committer, GoldmaneOptions(address="x:1", cert=pki.client_cert), Metrics("g", "goldmane")
            )
        with pytest.raises(CollectError, match="cannot read the CA bundle"):
            GoldmaneCollector(
                committer, GoldmaneOptions(address="x:1", ca=tmp_path / "nope.crt"), Metrics("g", "goldmane")
            )
    finally:
        committer.close()
