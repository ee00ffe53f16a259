"""Label lists to maps (Goldmane and Whisker give labels per row): each distinct label is split
once, and a row whose keys ascend is known to repeat none without a hash of its own. Whatever
the order of a row's labels, the result is the plain rule's: split on the first ``=``, and a row
that repeats a key or holds a null label is reported instead of stored."""

from __future__ import annotations

import json

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.ingest import ingest, traces
from flowlens.ingest.traces import DistinctJson, HitMapper, labels_to_map
from flowlens.store import Store
from tests.ingest.conftest import quarantine_of, rows_of
from tests.ingest.helpers import EXAMPLE_D

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


# --- many distinct label texts at once (Arrow's JSON reader) -----------------------------------

LABEL_ITEM = st.one_of(
    LABELS,
    st.integers(-3, 3),
    st.booleans(),
    st.text(alphabet='ab=\\"\u00e9\U0001f600', max_size=4),
    st.sampled_from(["a=\u0000", "labels", "\u00e9=\u00e8"]),
)
LABEL_TEXT = st.one_of(
    st.builds(lambda items: json.dumps({"labels": items}), st.lists(LABEL_ITEM, max_size=5)),
    st.builds(lambda items: json.dumps({"x": {"y": [1]}, "labels": items}), st.lists(LABELS, max_size=3)),
    st.sampled_from(
        [
            "null",
            "{}",
            '{"labels":null}',
            '{"labels":"a=b"}',
            '{"labels":{"a":"b"}}',
            '{"labels":["a=1"],"labels":["b=2"]}',
            "[1]",
            '{"labels":["a=b"]' + "}",
            '{"labels":[' + "[" * 70 + "]" * 70 + "]}",
            '{"labels":["\\u0061=b"]}',
        ]
    ),
)


@settings(deadline=None, max_examples=60)
@given(texts=st.lists(st.one_of(st.none(), LABEL_TEXT), max_size=40), unique=st.integers(260, 400))
def test_label_texts_parsed_at_once_give_what_one_by_one_gives(texts, unique):
    # Past LABELS_AT_ONCE_MIN distinct texts a batch is parsed at once; padded with distinct plain
    # label sets so that it is, and compared with the same batch converted one text at a time.
    batch = texts + [json.dumps({"labels": [f"job-uid={i}", "app=a"]}) for i in range(unique)]
    column = pa.chunked_array([pa.array(batch, pa.string())])
    at_once = DistinctJson(HitMapper()).map("source_labels", column)
    original = traces.LABELS_AT_ONCE_MIN
    traces.LABELS_AT_ONCE_MIN = 10**9
    try:
        one_by_one = DistinctJson(HitMapper()).map("source_labels", column)
    finally:
        traces.LABELS_AT_ONCE_MIN = original
    (v1, c1, bad1, why1, shape1), (v2, c2, bad2, why2, shape2) = at_once, one_by_one
    assert isinstance(v1, pa.Array) and isinstance(v2, pa.Array)
    assert v1.take(c1).to_pylist() == v2.take(c2).to_pylist()
    assert bad1.tolist() == bad2.tolist() and shape1.tolist() == shape2.tolist()
    assert why1 == why2


def test_many_distinct_label_texts_are_parsed_without_python_per_text(monkeypatch):
    texts = [json.dumps({"labels": [f"controller-uid={i:x}", "app=batch"]}) for i in range(1000)]
    seen: list[str] = []
    converter = DistinctJson(HitMapper())
    monkeypatch.setattr(converter, "_convert", lambda kind, text: seen.append(text) or (None, None))
    values, codes, bad, _, shape = converter.map("dest_labels", pa.chunked_array([pa.array(texts)]))
    assert seen == []
    assert not bad.any() and not shape.any()
    assert values.take(codes).to_pylist()[7] == [("controller-uid", "7"), ("app", "batch")]


def test_a_store_of_a_label_set_per_record_is_the_one_the_per_text_way_writes(tmp_path, monkeypatch):
    # 400 records, each its own label set (a Job's uid), among them a repeated key and a number:
    # stored and quarantined exactly as when every text is converted one by one in Python.
    base = json.loads(EXAMPLE_D)
    lines = []
    for i in range(400):
        record = dict(base, start_time=base["start_time"] + i, end_time=base["end_time"] + i)
        record["source_labels"] = {"labels": [f"controller-uid={i:08x}", f"job-name=job-{i}"]}
        if i == 7:
            record["source_labels"] = {"labels": ["app=a", "app=b"]}
        if i == 9:
            record["dest_labels"] = {"labels": ["app=a", 5]}
        lines.append(json.dumps(record))
    log = tmp_path / "flows.log"
    log.write_text("\n".join(lines) + "\n")
    stores = {}
    parsed: list[int] = []
    real = traces.labels_at_once

    def counted(texts: pa.Array) -> object:
        result = real(texts)
        parsed.append(0 if result is None else int(result[1].sum()))
        return result

    monkeypatch.setattr(traces, "labels_at_once", counted)
    for way, minimum in (("at once", traces.LABELS_AT_ONCE_MIN), ("one by one", 10**9)):
        monkeypatch.setattr(traces, "LABELS_AT_ONCE_MIN", minimum)
        stores[way] = Store(tmp_path / way.replace(" ", "-"))
        summary = ingest(stores[way], [str(log)])
        assert summary.balanced and summary.total("rows") == 398 and summary.total("quarantined") == 2
        if way == "at once":
            assert sum(parsed) >= 398  # the source labels of every record but the repeated key's
    sql = "SELECT source_line, source_labels, dest_labels FROM f ORDER BY source_line"
    assert rows_of(stores["at once"], sql) == rows_of(stores["one by one"], sql)
    reasons = [(q["source_line"], q["reason"]) for q in quarantine_of(stores["at once"])]
    assert reasons == [(q["source_line"], q["reason"]) for q in quarantine_of(stores["one by one"])]
    assert rows_of(stores["at once"], sql)[0]["source_labels"] == {
        "controller-uid": "00000000",
        "job-name": "job-0",
    }


def test_the_cache_of_distinct_texts_holds_a_bounded_number_of_bytes():
    """Traces distinct on nearly every record are converted as before, but the texts kept for the
    next batches stay under the byte bound instead of growing to 100,000 of them."""
    converter = DistinctJson(HitMapper())
    texts = [
        json.dumps(
            {
                "enforced_policies": [f"{k}|tier{k}|ns/tier{k}.policy-{i}-{k}|pass|{k}" for k in range(30)],
                "pending_policies": None,
            }
        )
        for i in range(26_000)
    ]
    assert sum(len(t) for t in texts) > 2 * traces._DISTINCT_CACHE_BYTES  # (the bound is reached)
    for start in range(0, len(texts), 2000):  # batches of 2,000 records, each text new
        chunk = pa.chunked_array([pa.array(texts[start : start + 2000])])
        values, codes, bad, _, _ = converter.map("policies", chunk)
        assert not bad.any() and len(codes) == 2000
        enforced = values[codes[7].as_py()][0]
        assert enforced[3] == f"3|tier3|ns/tier3.policy-{start + 7}-3|pass|3"
        assert converter._cache_bytes <= traces._DISTINCT_CACHE_BYTES + len(texts[0])
    assert converter._cache_bytes > 0
