"""Every query on the checked-in sample cluster's Calico Enterprise logs, ingested for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlens.engine import connect, load_queries


@pytest.mark.slow
def test_every_standalone_query_runs_on_the_sample_and_finds_what_the_sample_holds(
    sample_store: Path,
) -> None:
    with connect(sample_store) as engine:
        total = engine.sql("SELECT count(*) AS n FROM flows").to_pylist()[0]["n"]
        assert total > 1000
        for name, spec in load_queries().items():
            if name.startswith("coverage-") or any(p.required for p in spec.params):
                continue  # helpers of other modules (they read tables those modules register)
            engine.run(name)
        denied = engine.run("denied").to_pylist()
        unexpected = engine.run("unexpected-allowed").to_pylist()
        deny_records = engine.sql("SELECT count(*) AS n FROM flows WHERE action = 'deny'").to_pylist()[0]["n"]
    assert sum(r["records"] for r in denied) == deny_records > 0
    assert all(r["policy"] for r in denied)  # the sample logs its policies
    assert {r["category"] for r in unexpected} == {
        "default-allow",
        "public-ingress",
        "public-egress",
        "cross-namespace",
        "staged-deny",
        "host-endpoint",
    }
    assert all(r["why"] for r in unexpected)


@pytest.mark.slow
def test_the_sample_gives_the_same_answers_with_and_without_its_hourly_summaries(sample_store: Path) -> None:
    assert any((sample_store / "summary").rglob("*.parquet"))
    windows = [(None, None), ("2026-11-24T07:35:00Z", "2026-11-25T13:20:00Z"), ("2026-11-25T10:00:00Z", None)]
    for since, until in windows:
        answers = []
        for summaries in (True, False):
            with connect(sample_store, since=since, until=until, summaries=summaries) as engine:
                answers.append(
                    (
                        engine.run("unexpected-allowed").to_pylist(),
                        sorted(engine.run("coverage-facts").to_pylist(), key=repr),
                    )
                )
        assert answers[0] == answers[1]
        assert answers[0][0], "the sample has unexpectedly allowed flows in every window"
