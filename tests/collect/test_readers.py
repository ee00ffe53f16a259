"""Readers running while a collector commits see whole commits only: every count they read is
the total after some commit, never a part of one (``query`` in a loop through the engine, and
``flowlens query`` and ``flowlens report`` as commands).

The batches here each fall within one day. A commit that spans two days writes two flows files,
and readers that list files from the folders can see one without the other; readers that take
the committed file list from the manifest (the store workstream) close that gap, and this test
then covers two-day batches too."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

from flowlens.engine import connect
from flowlens.store import Store
from tests.collect.helpers.fake_goldmane import sample_flow_objects
from tests.collect.helpers.push import Sender, Served, lines_body

ROOT = Path(__file__).resolve().parents[2]


def test_queries_and_reports_during_commits_see_whole_commits(store: Store, tmp_path: Path):
    windows = []
    for i, objects in enumerate(sample_flow_objects(24)):
        start = int(dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC).timestamp()) + i * 300
        windows.append(
            [json.dumps({**o, "start_time": start, "end_time": start + 300}) + "\n" for o in objects]
        )
    totals = {0}
    running = 0
    for w in windows:
        running += len(w)
        totals.add(running)

    served = Served(store)
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            engine = connect(store, since="2026-11-30T00:00:00Z", until="2026-12-04T00:00:00Z")
            try:
                seen.append(int(engine.sql("SELECT count(*) AS n FROM flows")["n"][0].as_py()))
            finally:
                engine.close()

    reader = threading.Thread(target=read)
    reader.start()
    commands: list[subprocess.CompletedProcess[str]] = []

    def run_commands() -> None:
        for args in (
            ["query", "--sql", "SELECT count(*) AS n FROM flows", "--format", "json"],
            ["report", "--reports", str(tmp_path / "reports"), "--format", "json"],
        ):
            commands.append(
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "flowlens",
                        *args,
                        "--store",
                        str(store.root),
                        "--since",
                        "2026-11-30T00:00:00Z",
                        "--until",
                        "2026-12-04T00:00:00Z",
                    ],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    check=False,
                )
            )

    cli = threading.Thread(target=run_commands)
    cli.start()
    try:
        sender = Sender(served.port)
        for w in windows:
            assert sender.post(lines_body(w))[1]["status"] == "committed"
    finally:
        cli.join()
        done.set()
        reader.join()
        served.close()
    assert len(seen) > 5
    assert set(seen) <= totals, sorted(set(seen) - totals)
    assert seen[-1] <= running
    query, report = commands
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout)[0]["n"] in totals
    assert report.returncode == 0, report.stderr
    folder = Path(report.stdout.strip().splitlines()[-1])
    assert json.loads((folder / "report.json").read_text())["summary"]["records"] in totals
