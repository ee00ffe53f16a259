"""Fixtures of the collector tests: certificates, sample flows in Goldmane's buckets, a Goldmane
served over mutual TLS on 127.0.0.1, and what the store holds afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from flowlens.collect.buckets import bucket_of
from flowlens.store import Store
from tests.collect.helpers.certs import Pki, make_pki
from tests.collect.helpers.fake_goldmane import (
    BUCKET,
    FakeGoldmane,
    GoldmaneServer,
    bucket_flows,
    sample_flow_objects,
)

#: the identity of a stored flow: its bucket and every flow-key column
IDENTITY = (
    "start_time, end_time, source_type, source_namespace, source_name_aggr, dest_type, dest_namespace, "
    "dest_name_aggr, dest_port, dest_service_namespace, dest_service_name, dest_service_port, "
    "dest_service_port_num, proto, reporter, action, enforced_policies::VARCHAR, pending_policies::VARCHAR"
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def sample_objects() -> list[list[dict]]:
    """Flows of 60 five-minute intervals of the sample cluster (about 38 flow keys each)."""
    return sample_flow_objects(60)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


class Ring:
    """Buckets of sample flows placed around the current time, as Goldmane holds them."""

    def __init__(self, objects: list[list[dict]], buckets: int, now: float | None = None) -> None:
        self.objects = objects
        now = time.time() if now is None else now
        # The bucket Goldmane streams next is the one that ended 15 s ago; history before it.
        self.next_stream = bucket_of(int(now)) - 2 * BUCKET
        self.first = self.next_stream - buckets * BUCKET
        self.used = 0
        self.buckets = {b: self.flows(b) for b in range(self.first, self.next_stream, BUCKET)}

    def flows(self, bucket: int) -> list:
        objects = self.objects[self.used % len(self.objects)]
        self.used += 1
        return bucket_flows(objects, bucket)


@pytest.fixture
def goldmane(pki: Pki, sample_objects: list[list[dict]]) -> Iterator[Callable[..., GoldmaneServer]]:
    """Start a Goldmane holding ``buckets`` buckets of sample flows (``goldmane(buckets=20)``)."""
    started: list[GoldmaneServer] = []

    def start(buckets: int = 20, keep: int = 242) -> GoldmaneServer:
        ring = Ring(sample_objects, buckets)
        fake = FakeGoldmane(ring.buckets, ring.next_stream, keep=keep)
        fake.ring = ring  # type: ignore[attr-defined]
        server = GoldmaneServer(fake, pki).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def stored_rows(store: Store) -> tuple[int, int]:
    """(rows, distinct flows by identity) in the store."""
    files = [str(p) for p in store.flow_files()]
    if not files:
        return 0, 0
    con = duckdb.connect()
    rel = con.read_parquet(files, hive_partitioning=True)
    con.register("f", rel)
    rows, distinct = con.execute(f"SELECT count(*), count(DISTINCT ({IDENTITY})) FROM f").fetchone()
    return int(rows), int(distinct)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
