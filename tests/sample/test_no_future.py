"""``flowlens sample --records N`` without ``--days`` ends now: no record of any format ends later."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from tests.helpers import run_cli


def test_records_without_days_write_no_flow_after_now_in_any_format(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = run_cli("sample", "--out", out, "--records", "3000", "--format", "all", "--rotate-mb", "0.2")
    now = dt.datetime.now(dt.UTC)
    assert result.code == 0, result
    for fmt in ("enterprise", "elasticsearch", "goldmane", "whisker"):
        store = tmp_path / f"store-{fmt}"
        ingested = run_cli("ingest", "--store", store, out / fmt)
        assert ingested.code == 0, ingested
        query = "SELECT count(*) AS n, max(end_time) AS last, max(start_time) AS first FROM flows"
        answer = run_cli("query", "--sql", query, "--store", store, "--format", "json")
        assert answer.code == 0, answer
        (row,) = json.loads(answer.stdout)
        last = dt.datetime.fromisoformat(row["last"].replace("Z", "+00:00"))
        assert row["n"] > 0, fmt
        assert last <= now, f"{fmt}: a flow ends at {last}, after {now}"
        assert now - last < dt.timedelta(minutes=15), f"{fmt}: the data should end now, not at {last}"
