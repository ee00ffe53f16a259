"""Collectors killed with SIGKILL (real subprocesses) between commits and at each step inside
one, then started again: the store ends with every flow exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlens.store import Store
from tests.collect.conftest import stored_rows, wait_until
from tests.collect.helpers.fake_goldmane import GoldmaneServer
from tests.collect.helpers.procs import Collector, goldmane_args
from tests.collect.helpers.push import Sender, lines_body

FAULTS = ["staged", "decided", "moved"]


class Rolling:
    """Goldmane rolls a new bucket over every 0.2 s until stopped."""

    def __init__(self, server: GoldmaneServer) -> None:
        self.fake = server.fake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.fake.rollover(self.fake.ring.flows(self.fake.next_stream))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def rolling() -> Iterator[list[Rolling]]:
    made: list[Rolling] = []
    yield made
    for r in made:
        r.stop()


@pytest.mark.parametrize("fault", [*FAULTS, "between"])
def test_a_goldmane_collector_killed_anywhere_resumes_with_every_flow_once(
    fault, goldmane, pki, store, rolling
):
    server = goldmane(buckets=6)
    rolling.append(Rolling(server))
    args = goldmane_args(server.address, pki, store.root, commit_every=0.3, commit_flows=40)
    if fault == "between":
        first = Collector(args)
        wait_until(lambda: first.count("commit") >= 2, timeout=60, what="two commits")
        first.kill()
    else:
        first = Collector(args, fault=(fault, 2))
        assert first.wait(60) == -9, "\n".join(first.text[-20:])
    assert first.count("commit") >= 1
    killed_at = stored_rows(store)
    assert killed_at[0] == killed_at[1]  # nothing doubled, even half-way
    second = Collector(args)
    if fault in ("decided", "moved"):
        assert second.event("recovered")["message"].startswith("finished interrupted commit")
    second.event("stream")
    rolling[0].stop()
    fake = server.fake
    wait_until(lambda: stored_rows(store)[0] >= fake.total(), timeout=60, what="every flow")
    assert second.stop() == 0
    rows, distinct = stored_rows(store)
    assert rows == distinct == fake.total()
    stopped = second.event("stopped")
    assert stopped["outcome"] in ("nothing pending",) or stopped["outcome"].startswith("committed")


@pytest.fixture(scope="module")
def window_lines() -> list[str]:
    import json

    from tests.collect.helpers.fake_goldmane import sample_flow_objects

    return [json.dumps(o) + "\n" for o in sample_flow_objects(2)[1]]


def serve_args(store: Store, commit_every: str = "0.05") -> list[str]:
    return [
        "collect",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--store",
        str(store.root),
        "--commit-every",
        commit_every,
    ]


@pytest.mark.parametrize("fault", [*FAULTS, "answered"])
def test_a_receiver_killed_inside_a_commit_stores_the_retried_batch_once(fault, store: Store, window_lines):
    body = lines_body(window_lines)
    first = Collector(serve_args(store), fault=(fault, 1))
    port = first.event("start")["port"]
    with pytest.raises(OSError):  # the connection dies with the receiver: no answer
        Sender(port).post(body)
    assert first.wait(30) == -9
    second = Collector(serve_args(store))
    answer = Sender(second.event("start")["port"]).post_until_ok(body)
    # recovery finished a decided commit, so the retry is a duplicate; an undecided one was dropped
    assert answer["status"] == ("committed" if fault == "staged" else "duplicate")
    assert second.stop() == 0
    assert stored_rows(store)[0] == len(window_lines)


def test_a_receiver_killed_while_a_request_waits_for_its_commit_loses_nothing(store: Store, window_lines):
    body = lines_body(window_lines)
    first = Collector(serve_args(store, commit_every="30"))  # the batch waits for company
    port = first.event("start")["port"]
    result: list[object] = []

    def send() -> None:
        try:
            result.append(Sender(port).post(body))
        except OSError as exc:
            result.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: Path(store.root).exists(), what="the store")
    import time

    time.sleep(1.0)  # the body is in, waiting for its commit
    first.kill()
    sender.join(10)
    assert len(result) == 1 and isinstance(result[0], OSError)
    assert stored_rows(store) == (0, 0)
    second = Collector(serve_args(store))
    assert Sender(second.event("start")["port"]).post_until_ok(body)["status"] == "committed"
    assert second.stop() == 0
    assert stored_rows(store)[0] == len(window_lines)


def test_sigterm_commits_the_open_batch_and_answers_its_sender(store: Store, window_lines):
    body = lines_body(window_lines)
    first = Collector(serve_args(store, commit_every="30"))
    port = first.event("start")["port"]
    result: list[tuple[int, dict]] = []
    sender = threading.Thread(target=lambda: result.append(Sender(port).post(body)))
    sender.start()
    import time

    time.sleep(1.0)
    assert first.stop() == 0
    sender.join(10)
    assert result and result[0][0] == 200 and result[0][1]["status"] == "committed"
    assert stored_rows(store)[0] == len(window_lines)
