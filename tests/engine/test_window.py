"""flowlens.engine.window: --since/--until parsing and the partitions a window reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flowlens.engine.window import parse_time, plan_summary, resolve_window, select_files
from flowlens.errors import UsageError
from flowlens.store import Store
from tests.factories import flow_row, write_store
from tests.queries.helpers import summarise

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _at(day_offset: int, hour: int = 12, **overrides: object) -> dict[str, object]:
    start = dt.datetime(2026, 11, 20, hour, 0, tzinfo=dt.UTC) + dt.timedelta(days=day_offset)
    return flow_row(start_time=start, end_time=start + dt.timedelta(minutes=5), **overrides)


# ---------------------------------------------------------------------------- parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("24h", NOW - dt.timedelta(hours=24)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2w", NOW - dt.timedelta(weeks=2)),
        ("45s", NOW - dt.timedelta(seconds=45)),
        (" 7D ", NOW - dt.timedelta(days=7)),
        ("now", NOW),
        ("2026-11-25T12:00:00Z", dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)),
        ("2026-11-25T14:00:00+02:00", dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)),
        ("2026-11-25T12:00:00", dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)),
        ("2026-11-25", dt.datetime(2026, 11, 25, tzinfo=dt.UTC)),
    ],
)
def test_since_accepts_durations_before_now_and_iso_8601_times_in_utc(
    text: str, expected: dt.datetime
) -> None:
    got = parse_time(text, NOW)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "", "7 days", "-3h", "2026-13-01", "3y"])
def test_an_unreadable_time_is_a_usage_error_that_names_the_option_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_time(text, NOW, option="--since")
    assert "--since" in str(err.value)
    assert "24h" in str(err.value) and "ISO-8601" in str(err.value)


def test_files_are_chosen_by_their_date_directory_with_until_exclusive_at_midnight(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(d) for d in range(5)])
    store = Store(tmp_path)

    def days(since: dt.datetime | None, until: dt.datetime | None) -> list[str]:
        return [p.parent.name for p in select_files(store, since, until)]

    midnight = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    assert days(None, None) == [f"date=2026-11-{d}" for d in range(20, 25)]
    assert days(midnight, None) == ["date=2026-11-22", "date=2026-11-23", "date=2026-11-24"]
    assert days(None, midnight) == ["date=2026-11-20", "date=2026-11-21"]
    assert days(None, midnight + dt.timedelta(seconds=1)) == [f"date=2026-11-{d}" for d in (20, 21, 22)]


# ---------------------------------------------------------------------------- the window's bounds


def test_a_window_is_read_relative_to_now_and_must_not_be_empty() -> None:
    assert resolve_window("24h", None, NOW) == (NOW - dt.timedelta(hours=24), None)
    naive = dt.datetime(2026, 11, 25, 12)
    assert resolve_window(None, naive, NOW) == (None, naive.replace(tzinfo=dt.UTC))
    with pytest.raises(UsageError, match=r"--since .* must be before --until"):
        resolve_window("2026-11-25", "2026-11-25", NOW)


# ---------------------------------------------------------------------------- the summary plan


def test_a_summary_plan_reads_whole_hours_from_the_summaries_and_groups_the_partial_hours(
    tmp_path: Path,
) -> None:
    write_store(tmp_path, [_at(0), _at(1)])
    summarise(tmp_path)
    store = Store(tmp_path)
    files = select_files(store, None, None)
    since = dt.datetime(2026, 11, 20, 11, 30, tzinfo=dt.UTC)
    until = dt.datetime(2026, 11, 21, 12, 20, tzinfo=dt.UTC)

    plan = plan_summary(store, files, since, until)
    assert [flows for flows, _ in plan.summarised] == files
    assert all(summary.is_file() for _, summary in plan.summarised)
    assert plan.unsummarised == () and not plan.group_unsummarised
    assert (plan.hours_from, plan.hours_until) == (
        since.replace(minute=0) + dt.timedelta(hours=1),
        until.replace(minute=0),
    )
    assert plan.edges == ((since, plan.hours_from), (plan.hours_until, until))


def test_without_summaries_or_whole_hours_every_record_is_grouped_at_query_time(tmp_path: Path) -> None:
    write_store(tmp_path, [_at(0)])
    store = Store(tmp_path)
    files = select_files(store, None, None)
    unsummarised = plan_summary(store, files, None, None)
    assert unsummarised.summarised == () and unsummarised.unsummarised == tuple(files)

    summarise(tmp_path)
    ignored = plan_summary(store, files, None, None, use_summaries=False)
    assert ignored.summarised == () and ignored.group_unsummarised
    inside_one_hour = plan_summary(
        store,
        files,
        dt.datetime(2026, 11, 20, 12, 5, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 20, 12, 55, tzinfo=dt.UTC),
    )
    assert inside_one_hour.summarised == () and inside_one_hour.unsummarised == tuple(files)
    # Over no files the view still needs its columns: the (empty) records part is grouped.
    assert plan_summary(store, [], None, None).group_unsummarised
