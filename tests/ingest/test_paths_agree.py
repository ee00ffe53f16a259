"""The batch and the one-by-one diagnosis agree on every line: a record is stored exactly when its
diagnosis finds nothing wrong with it.

The batch query reads most fields with DuckDB's own conversions, which take more than the formats
allow (numeric text for a number, a rounded fraction, a list item of another type, an object where
a list belongs read as a missing field); only lines it marks suspect are diagnosed. Wherever the two
differed, whether a bad record was kept depended on whether something else on its line had it
looked at. Each format's records here are valid ones with fields, at the top or deep inside
(labels, traces, hits), swapped for values of every JSON type, or dropped: a few thousand per
format, each judged both ways."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest

from flowlens.formats import get_format
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store
from tests.ingest import helpers
from tests.ingest.conftest import quarantine_of, rows_of

SEEDS: dict[str, dict[str, Any]] = {
    "enterprise": json.loads(helpers.EXAMPLE_C),
    "elasticsearch": {"_id": "a", "_index": "flows", "_source": json.loads(helpers.EXAMPLE_D)},
    "goldmane": json.loads(helpers.GOLDMANE_EXAMPLE),
    "whisker": dict(helpers.WHISKER_ITEM),
}
SCALARS = [
    None, True, False, 0, 1, -1, 5, 80, 443, 65536, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64,
    1767228900, 0.0, 1.5, 2.5, -0.5, 80.0, 1e3, 1767228900.0, 1767228900.5, 1e300,
    "", "-", "5", " 12 ", "1_000", "0x1A", "1e3", "2.5", "true", "null", "abc", "[1]", "{}",
    "allow", "deny", "src", "dst", "tcp", "k=v", "2023-02-04T00:03:21Z", "1767228900",
]  # fmt: skip
HIT_TEXTS = [
    "0|default|knp:shop/x|allow|0",
    "0|t|gnp:t.x|allow|99999999999",
    "99999999999|t|gnp:t.x|deny|0",
    "0|default|knp:shop/x|allow|-1",
    "junk",
]


def _value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(8)
    if kind == 0 and depth < 2:
        return [_value(rnd, depth + 1) for _ in range(rnd.randrange(3))]
    if kind == 1 and depth < 2:
        keys = ["labels", "a", "enforced_policies", "pending_policies", "all_policies", "name", "kind"]
        return {rnd.choice(keys): _value(rnd, depth + 1) for _ in range(rnd.randrange(3))}
    if kind == 2:
        return {"labels": rnd.choice([["a=b"], [], ["a=b", "a=c"], [1], ["nokey"], None])}
    if kind == 3:
        return [rnd.choice(HIT_TEXTS)]
    return rnd.choice(SCALARS)


def _mutate(record: dict[str, Any], rnd: random.Random) -> None:
    """Change one to two fields of ``record`` (an Elasticsearch hit's ``_source``): at its top
    (or a Goldmane ``Key``'s), or somewhere inside its objects and lists."""
    if rnd.random() < 0.5:
        node: Any = record
        for _ in range(rnd.randrange(1, 5)):
            items = node.items() if isinstance(node, dict) else enumerate(node)
            inside = [v for _, v in items if isinstance(v, (dict, list)) and v]
            if not inside:
                break
            node = rnd.choice(inside)
        if isinstance(node, dict) and node:
            key = rnd.choice(sorted(node))
            if rnd.random() < 0.8:
                node[key] = _value(rnd)
            else:
                del node[key]
        elif isinstance(node, list) and node:
            node[rnd.randrange(len(node))] = _value(rnd) if rnd.random() < 0.8 else rnd.choice(HIT_TEXTS)
        return
    targets = [record] + ([record["Key"]] if isinstance(record.get("Key"), dict) else [])
    for _ in range(rnd.randrange(1, 3)):
        target = rnd.choice(targets)
        key = rnd.choice(sorted(target))
        if rnd.random() < 0.85:
            target[key] = _value(rnd)
        else:
            del target[key]


def _verdict(fmt: str, doc: dict[str, Any]) -> bool:
    """Whether a record is to be stored: its diagnosis finds nothing, and its end is not before
    its start (checked on the rows, after the diagnosis)."""
    if get_format(fmt).diagnose(doc) is not None:
        return False
    record = doc["_source"] if fmt == "elasticsearch" else doc.get("flow", doc)
    start, end = record.get("start_time"), record.get("end_time")
    if fmt == "whisker":
        start, end = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end))
    return not (start is not None and end is not None and end < start)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@pytest.mark.parametrize("seed", [1, 2])
def test_a_record_is_stored_exactly_when_its_diagnosis_finds_nothing_wrong(
    tmp_path: Path, fmt: str, seed: int
):
    rnd = random.Random(seed)
    docs = []
    for i in range(1500):
        doc = copy.deepcopy(SEEDS[fmt])
        if fmt == "elasticsearch":
            doc["_id"] = f"hit-{i}"  # (distinct documents: a repeated id is a copy, skipped)
        _mutate(doc["_source"] if fmt == "elasticsearch" else doc, rnd)
        docs.append(doc)
    log = tmp_path / "in.log"
    log.write_text("".join(json.dumps(d) + "\n" for d in docs))
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(log)], IngestOptions(format=fmt))
    assert summary.balanced
    stored = {r["source_line"] for r in rows_of(store, "SELECT source_line FROM f")}
    quarantined = {q["source_line"]: q["reason"] for q in quarantine_of(store)}
    assert len(stored) + len(quarantined) == len(docs)
    disagree = [
        (line, quarantined.get(line, "stored"), json.dumps(doc)[:300])
        for line, doc in enumerate(docs, 1)
        if _verdict(fmt, doc) != (line in stored)
    ]
    assert disagree == []
    # Both verdicts occur in numbers (the mutations are neither all harmless nor all fatal).
    assert min(len(stored), len(quarantined)) > len(docs) // 5


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("name", 7, "policy hit field 'name' is not a string"),
        ("namespace", ["demo"], "policy hit field 'namespace' is not a string"),
        ("tier", {"a": 1}, "policy hit field 'tier' is not a string"),
        ("policy_index", "3", "policy hit field 'policy_index' is not an integer"),
        ("rule_index", 1.5, "policy hit field 'rule_index' is not an integer"),
        ("policy_index", 2**40, "policy index 1099511627776 out of range"),
    ],
)
def test_a_goldmane_hit_field_of_the_wrong_type_quarantines_its_line_only(
    tmp_path: Path, field, value, reason
):
    """A hit whose name was a number used to stop the whole ingest with a pyarrow error."""
    good = json.loads(helpers.GOLDMANE_EXAMPLE)
    bad = copy.deepcopy(good)
    bad["Key"]["policies"]["enforced_policies"][0][field] = value
    log = tmp_path / "flows.ndjson"
    log.write_text(f"{json.dumps(good)}\n{json.dumps(bad)}\n{json.dumps(good)}\n")
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(log)], IngestOptions(format="goldmane"))
    assert (summary.total("rows"), summary.total("quarantined")) == (2, 1)
    (q,) = quarantine_of(store)
    assert q["source_line"] == 2 and reason in q["reason"]
    assert get_format("goldmane").diagnose(bad) is not None


@pytest.mark.parametrize("shape", ["elasticsearch response", "scroll pages", "whisker list"])
def test_records_inside_whole_documents_are_judged_the_same_way(tmp_path: Path, shape: str):
    """The records of a ``_search`` response (or of its scroll pages, one per line) and of a
    Whisker list response are numbered in order: record N is stored exactly when its diagnosis
    finds nothing wrong."""
    fmt = "whisker" if shape == "whisker list" else "elasticsearch"
    rnd = random.Random(3)
    docs = []
    for i in range(600):
        doc = copy.deepcopy(SEEDS[fmt])
        if fmt == "elasticsearch":
            doc["_id"] = f"hit-{i}"
        _mutate(doc["_source"] if fmt == "elasticsearch" else doc, rnd)
        docs.append(doc)
    if shape == "elasticsearch response":
        text = json.dumps({"took": 2, "hits": {"total": {"value": len(docs)}, "hits": docs}}, indent=1)
    elif shape == "scroll pages":
        text = "".join(
            json.dumps({"_scroll_id": "s", "hits": {"hits": docs[i : i + 100]}}) + "\n"
            for i in range(0, 600, 100)
        )
    else:
        text = json.dumps({"total": {"totalPages": 1}, "items": docs})
    log = tmp_path / "export.json"
    log.write_text(text)
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(log)], IngestOptions(format=fmt))
    assert summary.balanced and summary.total("lines_read") == len(docs)
    stored = {r["source_line"] for r in rows_of(store, "SELECT source_line FROM f")}
    assert stored == {n for n, doc in enumerate(docs, 1) if _verdict(fmt, doc)}
    assert 0 < len(stored) < len(docs)
