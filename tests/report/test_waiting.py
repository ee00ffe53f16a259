"""The report's "suggestions waiting": per namespace what a suggestion would close and hold back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from flowlens.report import generate, resolve_window
from flowlens.store import Store
from tests.factories import write_store
from tests.report.helpers import PROFILE, row, shop_rows, wep

NOW = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)


def _day():
    return resolve_window(now=NOW, window="day", at="2026-11-25")


def test_each_namespace_says_what_its_suggestion_would_close_and_what_it_holds_back(tmp_path: Path) -> None:
    rows = shop_rows(dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC))
    at = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)
    for port in range(5433, 5453):  # the frontend scans the database: 20 ports, one tiny connection each
        for reporter in ("src", "dst"):
            rows.append(
                row(
                    wep("source", "frontend", "web-7d4f8c9b5-*"),
                    wep("dest", "db", "postgres-0"),
                    reporter,
                    [PROFILE.format(ns="db")],
                    port=port,
                    byte_count=120,
                    at=at,
                )
            )
    write_store(tmp_path / "store", rows)
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    doc = json.loads((out.folder / "report.json").read_text())
    by_ns = {w["namespace"]: w for w in doc["suggestions"]["namespaces"]}
    assert by_ns["db"]["held_back"] == 1 and by_ns["db"]["held_back_edges"] == 20
    assert by_ns["frontend"]["held_back"] == 1  # the same group touches both namespaces
    assert all(w["broken"] == 0 for w in by_ns.values())
    assert doc["suggestions"]["namespaces_waiting"] == sum(w["waiting"] for w in by_ns.values()) > 0
    closes = [w["pairs_closed"] + w["external_closed"] for w in doc["suggestions"]["namespaces"]]
    assert closes == sorted(closes, reverse=True)
    md = (out.folder / "report.md").read_text()
    assert "## Suggestions waiting" in md and "| db |" in md
    assert '<section id="suggestions">' in (out.folder / "report.html").read_text()


def test_no_suggestions_leaves_the_section_out(tmp_path: Path) -> None:
    write_store(tmp_path / "store", shop_rows(dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)))
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports", suggestions=False)
    assert "suggestions" not in json.loads((out.folder / "report.json").read_text())
    assert "Suggestions waiting" not in (out.folder / "report.md").read_text()
