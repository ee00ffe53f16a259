"""Label lists to maps (Goldmane and Whisker give labels per row): each distinct label is split
once, and a row whose keys ascend is known to repeat none without a hash of its own. Whatever
the order of a row's labels, the result is the plain rule's: split on the first ``=``, and a row
that repeats a key or holds a null label is reported instead of stored."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.ingest.traces import labels_to_map

LABELS = st.one_of(
    st.none(),
    st.sampled_from(["app=a", "app=b", "app.kubernetes.io/name=x", "app>x=1", "tier=", "=v", "k", "a=b=c"]),
    st.text(alphabet="ab=.>", max_size=5),
)
ROWS = st.lists(st.one_of(st.none(), st.lists(LABELS, max_size=6)), max_size=12)


def _rule(row: list[str | None] | None) -> tuple[list[tuple[str, str]] | None, str | None]:
    """A row's map items, or why it cannot be a map (the start of its reason)."""
    if row is None:
        return None, None
    if any(label is None for label in row):
        return None, "a label that is null"
    pairs = [(k, v) for k, _, v in (label.partition("=") for label in row if label is not None)]
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        return None, "duplicate label key"
    return pairs, None


@settings(deadline=None)  # (a shared machine: a draw's time says nothing here)
@given(rows=ROWS, ascending=st.booleans())
def test_labels_become_the_map_the_plain_rule_gives(rows, ascending):
    if ascending:  # the usual row: sorted as Calico writes it, where the quick test decides
        rows = [sorted(r, key=lambda x: (x is None, x or "")) if r is not None else None for r in rows]
    mapped, bad, reasons = labels_to_map(pa.array(rows, pa.list_(pa.string())))
    for i, row in enumerate(rows):
        items, why = _rule(row)
        if why is None:
            assert not bad[i] and i not in reasons
            assert mapped[i].as_py() == items
        else:
            assert bad[i] and reasons[i].startswith(why)
            assert mapped[i].as_py() is None


def test_a_repeated_key_in_labels_that_ascend_is_reported():
    """``app=a`` < ``app=b``: ascending labels, yet one key twice."""
    _, bad, reasons = labels_to_map(pa.array([["app=a", "app=b"], ["a=1", "b=2"]], pa.list_(pa.string())))
    assert bad.tolist() == [True, False]
    assert reasons == {0: "duplicate label key 'app'"}
