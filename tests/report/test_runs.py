"""The reports folder over several runs: idempotent re-runs, history, changes, trend, index, latest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from flowlens.errors import InputError, UsageError
from flowlens.report import generate, resolve_window
from flowlens.report.runs import inside
from flowlens.store import Store
from tests.factories import T0, write_store
from tests.report.helpers import PROFILE, net, row, shop_rows, wep

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
DAY1 = T0  # 2026-11-25 12:00
DAY2 = T0 + dt.timedelta(days=1)


def _day(day: str):
    return resolve_window(now=NOW, window="day", at=day)


def _two_days(root: Path) -> Store:
    """Day 1: the shop. Day 2: the shop, plus a new talker, a new external destination, a new denial,
    and backend's egress to db now explicit."""
    day2 = [
        r
        for r in shop_rows(DAY2)
        if not (r["source_namespace"] == "backend" and r["dest_namespace"] == "db" and r["reporter"] == "src")
    ]
    day2 += [
        row(
            wep("source", "backend", "api-6c7d8e9f0-*"),
            wep("dest", "db", "postgres-0"),
            "src",
            ["0|default|np:backend/default.api-egress|allow|0"],
            port=5432,
            connections=5,
            byte_count=50000,
            at=DAY2,
        ),
        row(
            wep("source", "ops", "tool-1-*"),
            wep("dest", "backend", "api-6c7d8e9f0-*"),
            "dst",
            ["0|default|knp:backend/allow-tool|allow|0"],
            port=8080,
            at=DAY2,
        ),
        row(
            wep("source", "ops", "tool-1-*"),
            net("dest"),
            "src",
            [PROFILE.format(ns="ops")],
            port=443,
            dest_domains=["pypi.org"],
            at=DAY2,
        ),
        row(
            wep("source", "ops", "tool-1-*"),
            wep("dest", "db", "postgres-0"),
            "src",
            ["0|security|gnp:security.deny-ops|deny|0"],
            action="deny",
            port=5432,
            at=DAY2,
        ),
    ]
    write_store(root, shop_rows(DAY1), name="day1")
    write_store(root, day2, name="day2")
    return Store(root)


FAST = ("md", "json")  # HTML (charts) is tested elsewhere; leaving it out keeps these tests quick.


def _history(reports: Path) -> list[dict]:
    return [json.loads(line) for line in (reports / "history.jsonl").read_text().splitlines()]


def test_re_running_a_window_replaces_its_report_and_history_entry(tmp_path: Path) -> None:
    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    first = generate(store, _day("2026-11-25"), reports, formats=FAST)
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}
    (first.folder / "stray.txt").write_text("left by hand")
    again = generate(store, _day("2026-11-25"), reports, formats=FAST)
    after = {p.name: p.read_bytes() for p in again.folder.iterdir()}
    assert after == before  # same bytes, and the folder was replaced as a whole
    assert [h["label"] for h in _history(reports)] == ["2026-11-25"]
    assert [p.name for p in reports.iterdir() if p.name.startswith(".")] == [".lock"]


def test_the_second_day_shows_changes_since_the_first(tmp_path: Path) -> None:
    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    generate(store, _day("2026-11-25"), reports, formats=FAST)
    second = generate(store, _day("2026-11-26"), reports, formats=FAST)
    ch = second.document["changes"]
    assert ch["previous"] == "2026-11-25"
    assert ch["new_talkers"] == {
        "count": 2,
        "items": ["ops/tool-1-* -> backend/api-6c7d8e9f0-* tcp/8080", "ops/tool-1-* -> pub tcp/443"],
    }
    assert ch["new_external_destinations"] == {"count": 1, "items": ["pypi.org tcp/443"]}
    assert ch["newly_denied_flows"] == {
        "count": 1,
        "items": ["ops/tool-1-* -> db/postgres-0 tcp/5432 at src"],
    }
    # Egress: backend -> db (5 connections) became explicit, ops added 1 profile connection.
    first_egress = 12 / 27
    second_egress = 17 / 28
    assert ch["egress_coverage_delta"] == pytest.approx(
        round(second_egress, 4) - round(first_egress, 4), abs=1e-4
    )
    assert ch["score_delta"] is not None and ch["score_delta"] > 0
    md = (second.folder / "report.md").read_text()
    assert "Previous run: 2026-11-25." in md
    assert "  - pypi.org tcp/443" in md


def test_the_trend_lists_every_run_up_to_the_window_in_window_order(tmp_path: Path) -> None:
    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    # Run the later day first: the trend and the previous run follow window ends, not run order.
    late = generate(store, _day("2026-11-26"), reports, formats=FAST)
    assert [h["label"] for h in late.document["trend"]] == ["2026-11-26"]
    assert late.document["changes"]["previous"] is None
    early = generate(store, _day("2026-11-25"), reports, formats=FAST)
    assert [h["label"] for h in early.document["trend"]] == ["2026-11-25"]
    rerun = generate(store, _day("2026-11-26"), reports, formats=FAST)
    assert [h["label"] for h in rerun.document["trend"]] == ["2026-11-25", "2026-11-26"]
    assert rerun.document["changes"]["previous"] == "2026-11-25"
    assert [h["label"] for h in _history(reports)] == ["2026-11-25", "2026-11-26"]


def test_index_lists_runs_newest_first_and_latest_points_to_the_newest_window(tmp_path: Path) -> None:
    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    generate(store, _day("2026-11-26"), reports, formats=FAST)
    generate(
        store, _day("2026-11-25"), reports, formats=FAST
    )  # an older window run later does not become latest
    index = (reports / "index.html").read_text()
    assert index.index('href="2026-11-26/report.json"') < index.index('href="2026-11-25/report.json"')
    assert 'href="2026-11-26/report.html"' not in index  # only the files a run wrote are linked
    latest = reports / "latest"
    assert latest.is_symlink()
    assert latest.resolve() == (reports / "2026-11-26").resolve()
    assert (latest / "report.json").is_file()
    assert "url=2026-11-26/report.md" in (reports / "latest.html").read_text()  # no HTML was written


def test_a_since_window_gets_its_own_folder_beside_day_windows(tmp_path: Path) -> None:
    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    w = resolve_window(now=NOW, since="48h", until="2026-11-27T00:00:00Z")
    out = generate(store, w, reports, formats=FAST)
    assert out.folder == reports / "last-48h-20261127T0000Z"
    assert out.document["summary"]["records"] == 15 + 15 - 1 + 4


def test_a_damaged_history_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "history.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match=r"history.jsonl:1"):
        generate(store, _day("2026-11-25"), reports, formats=FAST)


def test_report_folders_never_resolve_outside_the_reports_folder(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (reports / "sneaky").symlink_to(tmp_path / "elsewhere")
    for label in ("../elsewhere", "sneaky/..", "sneaky"):
        with pytest.raises(UsageError):
            inside(reports, label)


def test_overlapping_runs_keep_both_history_entries(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = _two_days(tmp_path / "store")
    reports = tmp_path / "reports"
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(
            pool.map(
                lambda day: generate(store, _day(day), reports, formats=FAST), ["2026-11-25", "2026-11-26"]
            )
        )
    assert sorted(h["label"] for h in _history(reports)) == ["2026-11-25", "2026-11-26"]
    assert all((g.folder / "report.json").is_file() for g in done)
