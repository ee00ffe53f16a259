"""Goldmane flows captured from its gRPC API (grpcurl, Python's MessageToJson: the proto3 JSON
mapping, usually pretty-printed) are stored exactly as the same flows from the emitter.

The captures are written by protobuf's own JSON printer from the generated ``goldmane.Flow``
messages, not by flowlens' mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from flowlens.collect.proto import goldmane_pb2
from flowlens.formats import detect
from flowlens.formats.goldmane_protojson import is_protojson, to_emitter
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import GOLDMANE_EXAMPLE


def _flows() -> list[dict[str, Any]]:
    """Emitter records (Go encoding/json: snake_case, enums as integers, zero fields left out)."""
    first = json.loads(GOLDMANE_EXAMPLE)
    denied = json.loads(GOLDMANE_EXAMPLE)
    denied["Key"].update(
        source_type=2, dest_type=4, dest_port=5432, action=2, reporter=1, dest_name="pub", dest_namespace=""
    )
    denied["Key"]["policies"] = {
        "enforced_policies": [
            {
                "kind": 10,
                "tier": "security",
                "action": 2,
                "policy_index": 1,
                "rule_index": -1,
                "trigger": {"kind": 2, "name": "lockdown", "tier": "security", "action": 2},
            }
        ],
        "pending_policies": [
            {"kind": 3, "namespace": "demo", "name": "db", "tier": "default", "action": 1, "rule_index": 2}
        ],
    }
    del denied["Key"]["dest_service_name"], denied["Key"]["dest_service_port"]
    denied["start_time"] = denied["end_time"] = 1767229200
    denied["num_connections_live"] = 0
    del denied["num_connections_live"]
    return [first, denied]


def _message(record: dict[str, Any]) -> goldmane_pb2.Flow:
    return json_format.ParseDict(record, goldmane_pb2.Flow())


def _emitter_file(tmp_path: Path) -> Path:
    path = tmp_path / "emitter" / "flows.ndjson"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in _flows()))
    return path


def _stored(path: Path, store: Store) -> list[dict[str, Any]]:
    summary = ingest(store, [str(path)])
    assert summary.balanced
    assert summary.total("quarantined") == 0, [f.warnings for f in summary.files]
    return rows_of(store, "SELECT * EXCLUDE (ingest_id, source_file, source_line) FROM f ORDER BY start_time")


def _captures() -> dict[str, str]:
    messages = [_message(r) for r in _flows()]
    results = [goldmane_pb2.FlowResult(id=i + 7, flow=m) for i, m in enumerate(messages)]
    listing = goldmane_pb2.FlowListResult(flows=results)
    listing.meta.totalPages = 1
    listing.meta.totalResults = len(results)
    return {
        # grpcurl ... goldmane.Flows/Stream: one pretty-printed FlowResult after another
        "stream, pretty": "\n".join(json_format.MessageToJson(r) for r in results) + "\n",
        # grpcurl ... goldmane.Flows/List
        "list response": json_format.MessageToJson(listing) + "\n",
        # compact, one per line (e.g. through jq -c)
        "flows, one per line": "".join(json.dumps(json_format.MessageToDict(m)) + "\n" for m in messages),
        # MessageToJson(preserving_proto_field_name=True): snake_case, enums by name, int64 strings
        "proto names": "".join(
            json.dumps(json_format.MessageToDict(m, preserving_proto_field_name=True)) + "\n"
            for m in messages
        ),
        # Goldmane's stream tool: json.MarshalIndent of FlowResult, the emitter's encoding
        "stream tool": "".join(
            json.dumps({"id": i, "flow": r}, indent=2) + "\n" for i, r in enumerate(_flows())
        ),
    }


@pytest.mark.parametrize("shape", list(_captures()))
def test_a_grpc_capture_is_stored_as_the_emitter_lines_of_the_same_flows(tmp_path, shape):
    expected = _stored(_emitter_file(tmp_path), Store(tmp_path / "from-emitter"))
    assert len(expected) == 2
    capture = tmp_path / "capture.json"
    capture.write_text(_captures()[shape])
    assert detect(capture.read_bytes()) == "goldmane"
    got = _stored(capture, Store(tmp_path / "from-capture"))
    assert got == expected
    denied = got[1]
    assert (denied["action"], denied["reporter"], denied["source_type"], denied["dest_type"]) == (
        "deny",
        "src",
        "hep",
        "net",
    )
    assert denied["enforced_policies"][0]["kind"] == "GlobalNetworkPolicy"  # the end of tier's trigger
    assert denied["pending_policies"][0]["rule_index"] == 2


def test_a_capture_read_again_adds_nothing_and_a_cut_one_waits(tmp_path, store):
    capture = tmp_path / "capture.json"
    text = _captures()["stream, pretty"]
    capture.write_text(text[: len(text) // 2])
    first = ingest(store, [str(capture)])
    assert first.total("rows") == 0 and first.total("quarantined") == 0
    capture.write_text(text)
    assert ingest(store, [str(capture)]).total("rows") == 2
    assert ingest(store, [str(capture)]).total("rows") == 0


def test_what_the_mapping_cannot_read_is_quarantined_not_guessed(tmp_path, store):
    record = json_format.MessageToDict(_message(_flows()[0]))
    record["Key"]["reporter"] = "Sideways"  # no Reporter of that name
    other = json_format.MessageToDict(_message(_flows()[1]))
    other["bytesIn"] = "12.5"  # no int64
    capture = tmp_path / "capture.json"
    capture.write_text(json.dumps(record, indent=2) + "\n" + json.dumps(other, indent=2) + "\n")
    summary = ingest(store, [str(capture)])
    assert summary.total("rows") == 0 and summary.total("quarantined") == 2


def test_the_mapping_leaves_emitter_records_as_they_are():
    for record in _flows():
        assert not is_protojson(record)
        assert to_emitter(record) == record
        assert is_protojson(json_format.MessageToDict(_message(record)))
        wrapped = {"id": 3, "flow": record}
        assert to_emitter(wrapped) == wrapped


def test_an_emitter_file_whose_first_line_is_bad_is_still_read_line_by_line(tmp_path, store):
    """A first record with a string time (no emitter writes one, and the mapping cannot make it
    valid either) does not make the file a capture read whole: it is quarantined, the rest stored,
    and a file past the document limit is still read."""
    bad = json.loads(GOLDMANE_EXAMPLE)
    bad["start_time"] = "yesterday"
    path = tmp_path / "flows.ndjson"
    path.write_text(json.dumps(bad) + "\n" + "".join(json.dumps(r) + "\n" for r in _flows()))
    assert path.stat().st_size > 1024
    summary = ingest(store, [str(path)], IngestOptions(max_document_bytes=1024))
    assert (summary.total("rows"), summary.total("quarantined")) == (2, 1)
