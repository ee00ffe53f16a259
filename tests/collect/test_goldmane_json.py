"""Goldmane messages as emitter lines: what the collector stores is what Goldmane's emitter
would have posted, read by the same ``goldmane`` format."""

from __future__ import annotations

import json

from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from flowlens.collect.goldmane_json import flow_digest, flow_line
from flowlens.collect.proto import goldmane_pb2 as pb

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
ints = st.integers(0, 2**40)


@st.composite
def hits(draw: st.DrawFn, depth: int = 1) -> pb.PolicyHit:
    hit = pb.PolicyHit(
        kind=draw(st.sampled_from([0, 1, 2, 3, 6, 9, 10, 11])),
        namespace=draw(names),
        name=draw(names),
        tier=draw(names),
        action=draw(st.integers(0, 3)),
        policy_index=draw(st.integers(-2, 50)),
        rule_index=draw(st.integers(-1, 50)),
    )
    if depth and draw(st.booleans()):
        hit.trigger.CopyFrom(draw(hits(depth=0)))
    return hit


@st.composite
def flows(draw: st.DrawFn) -> pb.Flow:
    key = pb.FlowKey(
        source_name=draw(names),
        source_namespace=draw(names),
        source_type=draw(st.integers(0, 4)),
        dest_name=draw(names),
        dest_namespace=draw(names),
        dest_type=draw(st.integers(0, 4)),
        dest_port=draw(st.integers(0, 65535)),
        dest_service_name=draw(names),
        proto=draw(st.sampled_from(["tcp", "udp", ""])),
        reporter=draw(st.integers(0, 2)),
        action=draw(st.integers(0, 3)),
    )
    if draw(st.booleans()):
        key.policies.enforced_policies.extend(draw(st.lists(hits(), max_size=3)))
        key.policies.pending_policies.extend(draw(st.lists(hits(), max_size=3)))
    return pb.Flow(
        Key=key,
        start_time=draw(ints),
        end_time=draw(ints),
        source_labels=draw(st.lists(names, max_size=3)),
        dest_labels=draw(st.lists(names, max_size=3)),
        packets_in=draw(ints),
        bytes_out=draw(ints),
        num_connections_live=draw(ints),
    )


@given(flows())
def test_a_line_reads_back_as_the_same_flow(flow: pb.Flow):
    line = flow_line(flow)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json_format.ParseDict(json.loads(line), pb.Flow()) == flow


def test_zero_and_empty_fields_are_left_out_and_enums_are_numbers_as_the_emitter_writes():
    flow = pb.Flow(
        Key=pb.FlowKey(source_name="a", reporter=pb.Dst, action=pb.Allow), start_time=30, end_time=45
    )
    assert json.loads(flow_line(flow)) == {
        "Key": {"source_name": "a", "reporter": 2, "action": 1},
        "start_time": 30,
        "end_time": 45,
    }


def test_the_dedupe_key_is_the_flow_key_and_bucket_not_the_counters():
    a = pb.Flow(Key=pb.FlowKey(source_name="a", dest_port=80), start_time=30, end_time=45, packets_in=1)
    b = pb.Flow(Key=pb.FlowKey(source_name="a", dest_port=80), start_time=30, end_time=45, packets_in=9)
    c = pb.Flow(Key=pb.FlowKey(source_name="a", dest_port=81), start_time=30, end_time=45)
    d = pb.Flow(Key=pb.FlowKey(source_name="a", dest_port=80), start_time=30, end_time=60)
    assert flow_digest(a) == flow_digest(b)
    assert len({flow_digest(a), flow_digest(c), flow_digest(d)}) == 3
