"""flowlens.report.metrics: the arithmetic on coverage figures, worked out by hand."""

from __future__ import annotations

import pytest

from flowlens.report.metrics import Traffic, default_deny_status, weighted_coverage


@pytest.mark.parametrize(
    ("traffic", "expected"),
    [
        (Traffic(), "no traffic"),
        (Traffic(denied_records=1, allowed_records=1, explicit_records=1), "enforced"),
        (Traffic(denied_records=1, allowed_records=2, explicit_records=1, profile_records=1), "partial"),
        (Traffic(allowed_records=2, explicit_records=2), "implied"),
        (Traffic(allowed_records=2, explicit_records=1, profile_records=1), "absent"),
        (Traffic(allowed_records=1, unknown_records=1), "unknown"),
    ],
)
def test_default_deny_status_of_one_direction(traffic: Traffic, expected: str) -> None:
    assert default_deny_status(traffic) == expected


def test_weighted_coverage_caps_one_chatty_workload() -> None:
    # One workload with 1000 connections at 0 % and nine with 10 connections at 100 %:
    # uncapped the mean would be ~8 %; capped, the big one weighs 0.1 like the others (each ~0.0099 share).
    items = [(1000, 0.0)] + [(10, 1.0)] * 9
    share = 10 / 1090
    assert weighted_coverage(items) == pytest.approx(9 * share / (0.1 + 9 * share))
    assert weighted_coverage([(5, 0.5), (5, 1.0)]) == pytest.approx(0.75)
    assert weighted_coverage([]) is None
    assert weighted_coverage([(0, None)]) is None
