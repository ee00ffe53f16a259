"""The push receiver over real HTTP and HTTPS on 127.0.0.1: emitter windows and Fluent Bit
batches committed once however often they are sent, gzip, concurrent senders, limits, bad input,
client certificates, and a store that cannot be written for a while."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlens.collect.http import TLSOptions
from flowlens.collect.receiver import ServeOptions
from flowlens.sample import SampleOptions, iter_lines, load_model
from flowlens.store import Store, open_writer
from tests.collect.conftest import stored_rows
from tests.collect.helpers.certs import Pki
from tests.collect.helpers.push import Sender, Served, fluent_bit_json_lines, lines_body


@pytest.fixture(scope="module")
def windows() -> list[list[str]]:
    """Goldmane emitter windows of the sample cluster: one list of lines per 5-minute window."""
    options = SampleOptions(start=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), days=2 / 24, formats=("goldmane",))
    by_start: dict[int, list[str]] = {}
    for _, line in iter_lines(load_model(), options, "goldmane"):
        by_start.setdefault(json.loads(line)["start_time"], []).append(line)
    return [by_start[k] for k in sorted(by_start)]


@pytest.fixture(scope="module")
def enterprise_lines() -> list[str]:
    options = SampleOptions(
        start=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), days=1 / 24, formats=("enterprise",)
    )
    return [line for _, line in iter_lines(load_model(), options, "enterprise")]


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    s = Served(store)
    yield s
    s.close()


def quarantined(store: Store) -> int:
    import duckdb

    files = [str(p) for p in store.quarantine_files()]
    return (
        int(duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({files})").fetchone()[0])
        if files
        else 0
    )


def test_an_emitter_window_sent_again_adds_nothing(served: Served, store: Store, windows):
    sender = Sender(served.port)
    window = windows[0]
    status, answer = sender.post(lines_body(window))
    assert (status, answer["status"], answer["lines"], answer["format"]) == (
        200,
        "committed",
        len(window),
        "goldmane",
    )
    for _ in range(3):  # the emitter retries (its 200 was lost, say)
        status, answer = sender.post(lines_body(window))
        assert (status, answer["status"], answer["stored"]) == (200, "duplicate", 0)
    assert stored_rows(store) == (len(window), len(window))
    assert served.metrics.get("duplicates_dropped_total") == 3 * len(window)


def test_both_paths_take_flows_and_other_paths_and_methods_are_refused(served: Served, windows):
    sender = Sender(served.port)
    assert sender.post(lines_body(windows[1]), path="/flows")[0] == 200
    assert sender.post(lines_body(windows[2]), path="/api/v1/flows/bulk")[0] == 200
    status, answer = sender.post(b"{}", path="/elsewhere")
    assert status == 404 and "POST flows to /flows" in answer["error"]
    assert sender.get("/flows")[0] == 405


def test_gzip_bodies_and_fluent_bit_json_lines_of_enterprise_records(
    served: Served, store: Store, enterprise_lines
):
    sender = Sender(served.port, path="/flows")
    half = len(enterprise_lines) // 2
    first, second = enterprise_lines[:half], enterprise_lines[half:]
    status, answer = sender.post(fluent_bit_json_lines(first), gzipped=True)
    assert (status, answer["format"], answer["lines"]) == (200, "enterprise", len(first))
    status, answer = sender.post(fluent_bit_json_lines(second))
    assert status == 200
    # the same chunk again, compressed this time: the same batch
    status, answer = sender.post(fluent_bit_json_lines(second), gzipped=True)
    assert (status, answer["status"]) == (200, "duplicate")
    assert stored_rows(store)[0] == len(enterprise_lines)


def test_concurrent_senders_retrying_store_every_batch_once_in_shared_commits(store: Store, windows):
    served = Served(store, options=ServeOptions(commit_every=0.3))
    try:
        errors: list[BaseException] = []

        def send(batches: list[list[str]]) -> None:
            sender = Sender(served.port)
            try:
                for window in batches:
                    sender.post_until_ok(lines_body(window))
                sender.post_until_ok(lines_body(batches[0]))  # a retry of one already stored
            except BaseException as exc:  # reported below
                errors.append(exc)

        groups = [windows[i::6] for i in range(6)]
        threads = [threading.Thread(target=send, args=(g,)) for g in groups]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        total = sum(len(w) for w in windows)
        assert stored_rows(store) == (total, total)
        commits = served.metrics.get("commits_total")
        assert 1 <= commits < len(windows)  # batches that arrived together shared a commit
    finally:
        served.close()


def test_bad_lines_are_quarantined_and_counted_the_rest_stored(served: Served, store: Store, windows):
    window = windows[3]
    body = lines_body(
        [
            *window[:5],
            '{"Key": {"action": 9, "reporter": 1}, "start_time": 5, "end_time": 6}\n',
            "not json\n",
            *window[5:10],
        ]
    )
    status, answer = Sender(served.port).post(body)
    assert status == 200 and answer["lines"] == 12
    assert stored_rows(store)[0] == 10
    assert quarantined(store) == 2
    assert served.metrics.get("flows_quarantined_total") == 2


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"this is not json\n", {}, 400, "not a Calico flow log"),
        (b"plain text, not gzip", {"Content-Encoding": "gzip"}, 400, "cannot be decompressed"),
        (gzip.compress(b'{"Key": {}}\n', mtime=0)[:-6], {"Content-Encoding": "gzip"}, 400, "truncated"),
        (b'{"Key": {}}\n', {"Content-Encoding": "br"}, 415, "not supported"),
        (b'{"Key": {}}\n', {"X-Flowlens-Format": "syslog"}, 400, "unknown format"),
    ],
)
def test_a_body_that_is_not_a_flow_log_gets_a_4xx_with_the_reason(
    served: Served, store: Store, body, headers, status, reason
):
    sender = Sender(served.port)
    connection = sender._connection(10)
    connection.request("POST", "/flows", body=body, headers=headers)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == status
    assert reason in answer["error"]
    assert stored_rows(store) == (0, 0)


def test_oversized_and_bombs_are_refused_before_they_cost_memory(store: Store):
    served = Served(store, options=ServeOptions(commit_every=0.05, max_body_bytes=4096))
    try:
        sender = Sender(served.port)
        status, answer = sender.post(b'{"Key": {}}\n' * 1000)
        assert status == 413 and "more than 4096" in answer["error"]
        bomb = b'{"Key": {}}\n' * 100_000  # 1.2 MB that gzips to a few KB
        status, answer = sender.post(bomb, gzipped=True)
        assert status == 413 and "decompresses to more than 4096" in answer["error"]
        connection = sender._connection(10)
        connection.putrequest("POST", "/flows")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 411
        connection.close()
    finally:
        served.close()
    assert stored_rows(store) == (0, 0)


def test_a_store_locked_past_the_wait_answers_503_and_the_retry_is_stored_once(store: Store, windows):
    served = Served(store, lock_wait=0.2)
    try:
        sender = Sender(served.port)
        with open_writer(store):  # another writer (an ingest) holds the store
            status, answer = sender.post(lines_body(windows[4]))
        assert status == 503 and "send it again" in answer["error"]
        answer = sender.post_until_ok(lines_body(windows[4]))
        assert answer["status"] == "committed"
    finally:
        served.close()
    assert stored_rows(store)[0] == len(windows[4])


def test_https_requires_a_client_certificate_from_the_trusted_ca(store: Store, pki: Pki, windows):
    tls = TLSOptions(pki.server_cert, pki.server_key, client_ca=pki.ca)
    served = Served(store, tls=tls)
    try:
        good = Sender(served.port, tls=pki, cert=(pki.client_cert, pki.client_key))
        status, answer = good.post(lines_body(windows[5]))
        assert (status, answer["status"]) == (200, "committed")
        for cert in (None, (pki.stranger_cert, pki.stranger_key)):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                Sender(served.port, tls=pki, cert=cert).post(lines_body(windows[6]))
    finally:
        served.close()
    assert stored_rows(store)[0] == len(windows[5])
    import duckdb

    files = [str(p) for p in store.flow_files()]
    (source,) = duckdb.connect().execute(f"SELECT DISTINCT source_file FROM read_parquet({files})").fetchall()
    assert source == ("push:flowlens-collector",)  # the sender, by its certificate's name


def test_health_readiness_and_metrics(served: Served, windows):
    sender = Sender(served.port)
    sender.post(lines_body(windows[7]))
    status, body = sender.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert sender.get("/readyz")[0] == 200
    status, text = sender.get("/metrics")
    metrics = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line and not line.startswith("#")
    }
    assert metrics["flowlens_collect_flows_committed_total"] == len(windows[7])
    assert metrics["flowlens_collect_commits_total"] == 1
    assert metrics["flowlens_collect_last_commit_timestamp_seconds"] > 0
    assert "# TYPE flowlens_collect_duplicates_dropped_total counter" in text.decode()


def test_the_position_survives_a_restart_so_a_retry_after_it_adds_nothing(
    store: Store, windows, tmp_path: Path
):
    first = Served(store)
    try:
        assert Sender(first.port).post(lines_body(windows[8]))[0] == 200
    finally:
        first.close()
    second = Served(store)
    try:
        status, answer = Sender(second.port).post(lines_body(windows[8]))
        assert (status, answer["status"]) == (200, "duplicate")
    finally:
        second.close()
    assert stored_rows(store)[0] == len(windows[8])
