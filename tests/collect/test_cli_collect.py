"""The collectors on the command line and beside other writers: status lists them, an ingest
waits its turn while a collector commits, two collectors of one name refuse to share a store."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowlens.cli import app
from flowlens.collect.committer import CollectOptions, Committer, Lines
from flowlens.errors import CollectError, StoreLockedError
from flowlens.ingest import ingest
from flowlens.store import Store, open_writer
from tests.collect.conftest import stored_rows
from tests.collect.helpers.fake_goldmane import sample_flow_objects
from tests.collect.helpers.push import Sender, Served, lines_body


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return [json.dumps(o) + "\n" for o in sample_flow_objects(2)[0]]


def test_status_lists_each_collector_with_its_source_totals_and_position(store: Store, lines):
    served = Served(store)
    try:
        body = lines_body(lines)
        Sender(served.port).post(body)
        Sender(served.port).post(body)
    finally:
        served.close()
    result = CliRunner().invoke(app, ["status", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "collector:    serve (push) from test, last commit " in result.output
    assert f"{len(lines)} rows, 0 quarantined, {len(lines)} duplicates dropped" in result.output
    assert "position:   1 recent batch digest(s) remembered against retries" in result.output
    data = json.loads(CliRunner().invoke(app, ["status", "--store", str(store.root), "--json"]).stdout)
    (collector,) = data["collectors"]
    assert collector["totals"] == {
        "batches": 1,
        "duplicates": len(lines),
        "quarantined": 0,
        "rows": len(lines),
    }


def test_an_ingest_waits_its_turn_while_a_collector_commits(store: Store, lines, tmp_path: Path):
    log = tmp_path / "flows.ndjson"
    log.write_text("".join(json.dumps({**json.loads(x), "start_time": 1796000000}) + "\n" for x in lines))
    released = threading.Event()

    def hold() -> None:  # a collector's commit, stretched
        with open_writer(store):
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    with pytest.raises(StoreLockedError):
        ingest(store, [str(log)])  # at once, as before
    threading.Timer(0.5, released.set).start()
    summary = ingest(store, [str(log)], lock_wait=10)  # waits, then runs
    holder.join()
    assert summary.total("rows") == len(lines)


def test_two_collectors_of_one_name_refuse_to_share_a_store(store: Store, lines):
    first = Committer(store, "serve", CollectOptions())
    second = Committer(store, "serve", CollectOptions())
    try:
        first.commit([Lines("".join(lines).encode(), "goldmane", "push:a")], {"kind": "push"})
        with pytest.raises(CollectError, match="another collector named 'serve'"):
            second.commit([Lines("".join(lines).encode(), "goldmane", "push:b")], {"kind": "push"})
        other = Committer(store, "other", CollectOptions())  # another name: fine
        other.commit([Lines(b"", "goldmane", "push:c")], {"kind": "push"})
        other.close()
    finally:
        first.close()
        second.close()
    assert stored_rows(store)[0] == len(lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--cert", "x.crt"], "--cert and --key go together"),
        (["serve", "--format", "syslog"], "unknown format 'syslog'"),
        (["serve", "--listen", "nonsense"], "give HOST:PORT"),
        (["goldmane", "--address", "x:1", "--commit-every", "0"], "--commit-every must be positive"),
    ],
)
def test_bad_options_are_one_line_errors(args, message, tmp_path: Path):
    from flowlens.errors import FlowlensError

    result = CliRunner().invoke(app, ["collect", *args, "--store", str(tmp_path / "s")])
    assert result.exit_code != 0
    error = result.exception if isinstance(result.exception, FlowlensError) else None
    assert error is not None and message in str(error), result.output


def test_help_teaches_both_collectors():
    for name, words in (("goldmane", "15-second bucket"), ("serve", "200 only once")):
        result = CliRunner().invoke(app, ["collect", name, "--help"])
        assert result.exit_code == 0 and words in " ".join(result.output.split())
