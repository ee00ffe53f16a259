"""Activity estimated from report groups: the window's intervals counted from runs of buckets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flowlens.suggest.activity import _covered

runs = st.lists(
    st.tuples(st.integers(-50, 400), st.integers(0, 120)).map(lambda r: (r[0], r[0] + r[1])), max_size=40
)


@given(runs)
def test_runs_of_buckets_count_each_bucket_once_as_a_set_of_them_would(spans: list[tuple[int, int]]) -> None:
    buckets: set[int] = set()
    for first, last in spans:
        buckets.update(range(first, last + 1))
    assert _covered(spans) == len(buckets)


def test_a_year_of_five_minute_buckets_in_overlapping_reports_counts_once() -> None:
    year = 365 * 288
    assert _covered([(0, year - 1), (10, 20), (year - 5, year + 4), (year + 10, year + 10)]) == year + 6
