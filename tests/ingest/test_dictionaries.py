"""Label sets, policy traces and provenance travel with dictionary-encoded strings: the values,
and the files readers see, are the same as with plain strings."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import flowlens.ingest.dictionaries as dicts
import flowlens.ingest.parse as parse
import flowlens.ingest.sources as sources
from flowlens.ingest import ingest
from flowlens.ingest.dictionaries import WRITE_SCHEMA, LeafDictionaries
from flowlens.schema import ARROW_SCHEMA, LABELS, POLICY_LIST
from flowlens.store import Store
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_D, GOLDMANE_EXAMPLE

HIT = {
    "policy_index": 0,
    "tier": "default",
    "kind": "NetworkPolicy",
    "namespace": "demo",
    "name": "allow-web",
    "action": "allow",
    "rule_index": 0,
    "staged": False,
    "end_of_tier": False,
    "hit": "0|default|demo/default.allow-web|allow|0",
}


def _leaves(arr: pa.Array) -> list[pa.Array]:
    """The string leaves of ``arr`` (a map or a list of structs)."""
    if pa.types.is_map(arr.type):
        return [arr.keys, arr.items]
    return [arr.values.field(i) for i, f in enumerate(arr.values.type) if f.type == dicts.CODED_STRING]


def _address(strings: pa.Array) -> int:
    return strings.buffers()[2].address


def test_labels_with_null_and_empty_maps_read_back_as_the_plain_values():
    plain = pa.array([[("app", "web"), ("tier", "")], None, [], [("app", "db")]], LABELS)
    encoded = LeafDictionaries().encode("source_labels", plain)
    assert encoded.type == WRITE_SCHEMA.field("source_labels").type
    assert all(pa.types.is_dictionary(leaf.type) for leaf in _leaves(encoded))
    assert encoded.cast(LABELS).to_pylist() == plain.to_pylist()
    assert encoded.is_null().to_pylist() == [False, True, False, False]


def test_traces_with_null_lists_and_null_fields_read_back_as_the_plain_values():
    profile = {**HIT, "tier": "__PROFILE__", "kind": "Profile", "namespace": None, "name": "kns.demo"}
    plain = pa.array([[HIT, profile], None, [], [{**HIT, "hit": None, "action": "deny"}]], POLICY_LIST)
    encoded = LeafDictionaries().encode("enforced_policies", plain)
    assert encoded.type == WRITE_SCHEMA.field("enforced_policies").type
    assert encoded.cast(POLICY_LIST).to_pylist() == plain.to_pylist()


def test_a_dictionary_lasts_from_batch_to_batch_and_only_grows():
    leaves = LeafDictionaries()
    first = leaves.encode("dest_labels", pa.array([[("app", "web")], [("app", "db")]], LABELS))
    again = leaves.encode("dest_labels", pa.array([[("app", "db")]], LABELS))
    # no new string: the very same dictionary (the Parquet writer then keeps writing codes)
    assert _address(again.items.dictionary) == _address(first.items.dictionary)
    grown = leaves.encode("dest_labels", pa.array([[("app", "cache"), ("team", "a")]], LABELS))
    old, new = first.items.dictionary, grown.items.dictionary
    assert new.slice(0, len(old)).equals(old)  # earlier codes keep their meaning
    assert new.to_pylist() == ["web", "db", "cache", "a"]
    assert grown.cast(LABELS).to_pylist() == [[("app", "cache"), ("team", "a")]]


def test_a_dictionary_past_its_limit_starts_again_from_the_batch_at_hand(monkeypatch):
    monkeypatch.setattr(dicts, "LEAF_DICTIONARY_LIMIT", 3)
    leaves = LeafDictionaries()
    leaves.encode("source_labels", pa.array([[("a", "1"), ("b", "2")]], LABELS))
    batch = pa.array([[("c", "3")], [("d", "4")], [("a", "1")]], LABELS)
    encoded = leaves.encode("source_labels", batch)
    assert sorted(encoded.keys.dictionary.to_pylist()) == ["a", "c", "d"]  # this batch's strings only
    assert encoded.cast(LABELS).to_pylist() == batch.to_pylist()


def test_a_batch_with_more_strings_than_the_limit_is_its_own_dictionary(monkeypatch):
    monkeypatch.setattr(dicts, "LEAF_DICTIONARY_LIMIT", 3)
    leaves = LeafDictionaries()
    leaves.encode("source_labels", pa.array([[("a", "1")]], LABELS))
    batch = pa.array([[("uid", str(i)), ("a", "1")] for i in range(5)] + [None], LABELS)
    encoded = leaves.encode("source_labels", batch)
    assert encoded.items.dictionary.to_pylist() == ["0", "1", "2", "3", "4"]  # the batch's own strings
    assert encoded.cast(LABELS).to_pylist() == batch.to_pylist()
    after = leaves.encode("source_labels", pa.array([[("a", "2")]], LABELS))
    assert after.items.dictionary.to_pylist() == ["2"]  # the next batch starts again
    assert after.cast(LABELS).to_pylist() == [[("a", "2")]]


def _lines(count: int, first: int = 0) -> bytes:
    """Enterprise records whose label values and policy names change from line to line (``first``:
    the number of the first, which sets its times)."""
    base = json.loads(EXAMPLE_D)
    out = []
    for i in range(count):
        t = first + i
        rec = dict(base, start_time=base["start_time"] + t, end_time=base["end_time"] + t)
        rec["source_labels"] = {"labels": [f"app=access-{i % 7}", f"build=b{i}"]}
        rec["policies"] = {
            "enforced_policies": [f"0|default|policy-demo/default.allow-{i % 5}|allow|{i % 3}"],
            "pending_policies": [f"0|security|gnp:security.lockdown-{i % 4}|deny|-1"],
        }
        out.append(json.dumps(rec))
    return "\n".join(out).encode() + b"\n"


@pytest.mark.parametrize("limit", [1, 1024])
def test_files_written_across_dictionary_changes_hold_the_plain_values(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(parse, "BATCH_BYTES", 4000)  # many batches, each with new strings
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "flows.log").write_bytes(_lines(120))
    # another format, whose traces and labels are encoded per row instead of per distinct text
    (logs / "goldmane.json").write_text(GOLDMANE_EXAMPLE + "\n")
    plain_store = Store(tmp_path / "plain")
    ingest(plain_store, [str(logs)])  # the limit at its default

    monkeypatch.setattr(dicts, "LEAF_DICTIONARY_LIMIT", limit)  # 1: a new dictionary every batch
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(logs)])
    assert summary.balanced and summary.total("rows") == 121 and summary.total("quarantined") == 0

    sql = (
        "SELECT source_line, source_labels, enforced_policies, pending_policies, all_policies "
        "FROM f ORDER BY source_file, source_line"
    )
    got = rows_of(store, sql)
    assert got == rows_of(plain_store, sql)
    assert got[0]["source_labels"] == {"app": "access-0", "build": "b0"}
    assert got[119]["enforced_policies"][0]["name"] == "allow-4"
    assert got[120]["enforced_policies"][0]["name"] == "allow-client"  # the Goldmane record
    assert got[120]["source_labels"] == {"app": "client", "pod-template-hash": "7d4f8c9b5"}
    for file in store.flow_files():
        # Readers (pyarrow here) see the store's schema: plain strings, no dictionaries.
        assert pq.read_schema(file).equals(ARROW_SCHEMA, check_metadata=False)
        table = pq.read_table(file)
        assert not any(pa.types.is_dictionary(leaf.type) for leaf in _leaves(table["source_labels"].chunk(0)))


def test_provenance_names_each_rows_file_when_one_batch_holds_several_files(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "BLOCK_BYTES", 3000)  # a file read in several blocks
    logs = tmp_path / "logs"
    logs.mkdir()
    sizes = {"a.log": 3, "b.log": 40, "c.log": 5}
    for first, (name, count) in enumerate(sizes.items()):
        (logs / name).write_bytes(_lines(count, first=1000 * first))  # other content in each file
    store = Store(tmp_path / "store")
    summary = ingest(store, [str(logs)])
    assert summary.balanced and summary.total("rows") == sum(sizes.values())
    got = rows_of(
        store,
        "SELECT source_file, format, ingest_id, count(*) AS n, min(source_line) AS first, "
        "max(source_line) AS last FROM f GROUP BY ALL ORDER BY source_file",
    )
    assert got == [
        {
            "source_file": str(logs / name),
            "format": "enterprise",
            "ingest_id": summary.ingest_id,
            "n": count,
            "first": 1,
            "last": count,
        }
        for name, count in sizes.items()
    ]
    for file in store.flow_files():
        assert pq.read_schema(file).equals(ARROW_SCHEMA, check_metadata=False)
