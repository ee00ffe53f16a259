"""Report windows and their folder labels."""

from __future__ import annotations

import datetime as dt

import pytest

from flowlens.errors import UsageError
from flowlens.report.window import check_label, resolve_window

NOW = dt.datetime(2026, 11, 26, 3, 17, 42, tzinfo=dt.UTC)


def test_a_day_window_covers_the_utc_day_and_is_named_by_its_date() -> None:
    w = resolve_window(now=NOW, window="day", at="2026-11-25")
    assert (w.start.isoformat(), w.end.isoformat(), w.label, w.kind) == (
        "2026-11-25T00:00:00+00:00",
        "2026-11-26T00:00:00+00:00",
        "2026-11-25",
        "day",
    )


def test_a_day_window_without_a_date_is_yesterday() -> None:
    assert resolve_window(now=NOW, window="day").label == "2026-11-25"


def test_a_week_window_is_the_iso_week_holding_the_date() -> None:
    w = resolve_window(now=NOW, window="week", at="2026-11-25")
    assert (w.label, w.start.date().isoformat(), w.end.date().isoformat()) == (
        "2026-W48",
        "2026-11-23",
        "2026-11-30",
    )


def test_since_a_duration_ends_now_to_the_minute_and_is_named_by_its_end() -> None:
    w = resolve_window(now=NOW, since="24h")
    assert w.end == dt.datetime(2026, 11, 26, 3, 17, tzinfo=dt.UTC)
    assert w.start == w.end - dt.timedelta(hours=24)
    assert w.label == "last-24h-20261126T0317Z"


def test_since_and_until_as_iso_times_name_both_ends() -> None:
    w = resolve_window(now=NOW, since="2026-11-24T00:00:00Z", until="2026-11-25T12:00:00Z")
    assert w.label == "20261124T0000Z--20261125T1200Z"


def test_the_default_window_is_the_last_24_hours() -> None:
    assert resolve_window(now=NOW).label == "last-24h-20261126T0317Z"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": "day", "since": "24h"},
        {"window": "month"},
        {"at": "2026-11-25"},
        {"window": "day", "at": "yesterday"},
        {"since": "2026-11-26T00:00:00Z", "until": "2026-11-25T00:00:00Z"},
        {"since": "soon"},
    ],
)
def test_contradictory_or_unreadable_window_options_are_usage_errors(kwargs: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        resolve_window(now=NOW, **kwargs)


@pytest.mark.parametrize("label", ["../etc", "a/b", "", ".hidden", "latest", "x" * 101, "a b", "..", "é"])
def test_labels_that_could_leave_the_reports_folder_are_refused(label: str) -> None:
    with pytest.raises(UsageError):
        check_label(label)
