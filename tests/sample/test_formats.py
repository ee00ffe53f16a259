"""Every emitted line of every format is what Calico writes: fields, types, order, masking per
aggregation level, reporters, counters and policy traces."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.formats.enterprise import diagnose_document, diagnose_hit
from flowlens.formats.goldmane import diagnose as diagnose_goldmane
from flowlens.formats.hits import is_modern, parse_hit, sort_trace
from flowlens.sample import SampleOptions, declared_decisions, iter_lines
from flowlens.sample.model import ClusterModel

from .conftest import lines_of

# Field order of Felix's JSONOutput (Calico Enterprise 2026).
ENT_2026_KEYS = [
    "start_time", "end_time", "source_ip", "source_name", "source_name_aggr", "source_namespace",
    "nat_outgoing_ports", "source_port", "source_type", "source_labels", "dest_ip", "dest_name",
    "dest_name_aggr", "dest_namespace", "dest_port", "dest_type", "dest_labels",
    "dest_service_namespace", "dest_service_name", "dest_service_port", "dest_service_port_num",
    "dest_domains", "proto", "action", "reporter", "policies", "bytes_in", "bytes_out", "num_flows",
    "num_flows_started", "num_flows_completed", "packets_in", "packets_out", "transit_bytes_in",
    "transit_bytes_out", "transit_packets_in", "transit_packets_out", "http_requests_allowed_in",
    "http_requests_denied_in", "process_name", "num_process_names", "process_id", "num_process_ids",
    "process_args", "num_process_args", "original_source_ips", "num_original_source_ips",
    "tcp_mean_send_congestion_window", "tcp_min_send_congestion_window", "tcp_mean_smooth_rtt",
    "tcp_max_smooth_rtt", "tcp_mean_min_rtt", "tcp_max_min_rtt", "tcp_mean_mss", "tcp_min_mss",
    "tcp_total_retransmissions", "tcp_lost_packets", "tcp_unrecovered_to",
]  # fmt: skip
LABEL = re.compile(r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_enterprise_lines_have_every_felix_key_in_order_and_pass_the_ingest_checks(
    enterprise_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    assert len(enterprise_docs) > 5000
    for rel, doc in enterprise_docs:
        assert list(doc) == ENT_2026_KEYS
        assert diagnose_document(doc) is None, (rel, doc)
        assert rel.endswith("/flows.log") and rel.split("/")[0] in ("control-plane-1", "worker-1", "worker-2")
        assert doc["end_time"] - doc["start_time"] == 300
        assert doc["proto"] in ("tcp", "udp")
        assert doc["policies"]["transit_policies"] is None
        for side in ("source_labels", "dest_labels"):
            assert all(LABEL.match(x) for x in doc[side]["labels"])


def test_allowed_records_are_aggregated_at_level_2_and_denied_at_level_1(
    enterprise_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    seen = set()
    for _, doc in enterprise_docs:
        assert doc["source_port"] is None  # aggregated at level 1 and 2
        if doc["action"] == "allow":
            assert doc["source_ip"] is None and doc["dest_ip"] is None
            assert doc["source_name"] == "-" and doc["dest_name"] == "-"
        else:
            assert doc["source_ip"] and doc["dest_ip"]
            for side in ("source", "dest"):
                if doc[f"{side}_type"] == "wep":
                    name, aggr = doc[f"{side}_name"], doc[f"{side}_name_aggr"]
                    assert name != "-"
                    assert name == aggr or (aggr.endswith("*") and name.startswith(aggr[:-1]))
        seen.add(doc["action"])
        for side in ("source", "dest"):
            kind = doc[f"{side}_type"]
            if kind == "net":
                assert doc[f"{side}_name"] == "-" and doc[f"{side}_name_aggr"] in ("pub", "pvt")
                assert doc[f"{side}_namespace"] == "-" and doc[f"{side}_labels"] == {"labels": []}
            if kind == "hep":
                assert doc[f"{side}_namespace"] == "-"
                assert doc[f"{side}_name_aggr"] in ("control-plane-1", "worker-1", "worker-2")
    assert seen == {"allow", "deny"}


def test_only_cluster_endpoints_report_and_both_do_when_both_are_in_the_cluster(
    enterprise_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    by_interval: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for _, doc in enterprise_docs:
        if doc["reporter"] == "src":
            assert doc["source_type"] in ("wep", "hep")
        else:
            assert doc["dest_type"] in ("wep", "hep")
        key = (
            doc["start_time"] - doc["start_time"] % 300,
            doc["source_name_aggr"],
            doc["dest_name_aggr"],
            doc["dest_port"],
            doc["proto"],
        )
        by_interval[key].add(doc["reporter"] + ":" + doc["action"])
    frontend_backend = [
        v for k, v in by_interval.items() if k[1].startswith("frontend-7d4") and k[2].startswith("backend-84")
    ]
    assert frontend_backend and all(v == {"src:allow", "dst:allow"} for v in frontend_backend)
    scrapes = [
        v for k, v in by_interval.items() if k[1] == "prometheus-k8s-*" and k[2].startswith("backend-84")
    ]
    assert scrapes and all(v == {"src:allow", "dst:deny"} for v in scrapes)
    fraud = [v for k, v in by_interval.items() if k[1].startswith("payments-worker") and k[2] == "pub"]
    assert fraud and all(v == {"src:deny"} for v in fraud)  # denied at the source: no dst record


def test_counters_are_consistent_and_long_connections_continue(
    enterprise_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    continued = 0
    for _, doc in enterprise_docs:
        assert doc["num_flows"] >= doc["num_flows_started"] >= 0
        assert doc["num_flows"] >= doc["num_flows_completed"] >= 0
        assert doc["num_flows"] > 0
        for direction in ("in", "out"):
            assert (doc[f"bytes_{direction}"] > 0) == (doc[f"packets_{direction}"] > 0)
        if doc["action"] == "deny":
            incoming = "bytes_out" if doc["reporter"] == "src" else "bytes_in"
            assert doc["bytes_in" if incoming == "bytes_out" else "bytes_out"] == 0
        if doc["num_flows_started"] == 0:
            continued += 1
            assert doc["action"] == "allow"
    assert continued > 100


def test_labels_of_aggregated_records_are_the_intersection(
    enterprise_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    frontend_on_worker_1 = [
        set(doc["source_labels"]["labels"])
        for rel, doc in enterprise_docs
        if rel.startswith("worker-1/")
        and doc["reporter"] == "src"
        and doc["source_name_aggr"].startswith("frontend-7d4")
    ]
    # two frontend pods run on worker-1, one labelled debug=true by hand: records that aggregate
    # both lack the label, records of that pod alone carry it
    assert any("debug=true" not in labels for labels in frontend_on_worker_1)
    assert any("debug=true" in labels for labels in frontend_on_worker_1)
    assert all("pod-template-hash=7d4f8c9b5d" in labels for labels in frontend_on_worker_1)


def test_the_trace_decides_the_action_and_the_staged_policy_only_shows_in_pending(
    enterprise_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    pending_denies = 0
    for _, doc in enterprise_docs:
        enforced = sort_trace([parse_hit(h) for h in doc["policies"]["enforced_policies"]])
        pending = sort_trace([parse_hit(h) for h in doc["policies"]["pending_policies"]])
        assert [h.policy_index for h in enforced] == list(range(len(enforced)))
        assert enforced[-1].action == doc["action"]
        assert all(is_modern(h.split("|")[2]) for h in doc["policies"]["enforced_policies"])
        assert not any(h.staged for h in enforced)
        if pending[-1].staged and pending[-1].action == "deny":
            pending_denies += 1
            assert doc["action"] == "allow" and doc["source_namespace"] == "production"
    assert pending_denies > 0


def test_the_daily_cycle_is_visible(enterprise_docs: list[tuple[str, dict[str, Any]]]) -> None:
    per_hour: dict[int, int] = defaultdict(int)
    for _, doc in enterprise_docs:
        per_hour[doc["start_time"] // 3600 % 24] += doc["num_flows_started"]
    assert per_hour[14] > 3 * per_hour[3]


def test_legacy_lines_use_f1_hits_all_policies_and_the_2025_layout(model: ClusterModel) -> None:
    docs = [json.loads(line) for _, line in lines_of(model, "enterprise", days=0.1, legacy_hits=True)]
    staged_seen = False
    for doc in docs:
        assert "transit_bytes_in" not in doc
        assert list(doc["policies"]) == ["all_policies", "enforced_policies", "pending_policies"]
        assert diagnose_document(doc) is None
        for hit in doc["policies"]["all_policies"] + doc["policies"]["pending_policies"]:
            assert not is_modern(hit.split("|")[2])
            parse_hit(hit)
        staged = [h for h in doc["policies"]["all_policies"] if "staged:" in h]
        if staged:
            staged_seen = True
            assert staged[0].split("|")[2] == "production/default.staged:restrict-egress"
            assert len(doc["policies"]["all_policies"]) == len(doc["policies"]["enforced_policies"]) + 1
    assert staged_seen


def test_elasticsearch_lines_are_export_hits_with_what_fluentd_and_linseed_add(model: ClusterModel) -> None:
    ids = set()
    for rel, line in lines_of(model, "elasticsearch", days=0.1):
        hit = json.loads(line)
        assert rel == "flows-2026-11-24.ndjson"
        assert list(hit) == ["_index", "_id", "_score", "_source"]
        assert hit["_index"] == "tigera_secure_ee_flows.flowlens-demo.linseed-000001"
        src = hit["_source"]
        assert list(src)[: len(ENT_2026_KEYS)] == ENT_2026_KEYS
        assert list(src)[len(ENT_2026_KEYS) :] == ["host", "@timestamp", "cluster", "generated_time"]
        assert src["@timestamp"] == src["end_time"] * 1000
        assert src["cluster"] == "flowlens-demo" and RFC3339.match(src["generated_time"])
        assert diagnose_hit(hit) is None
        ids.add(hit["_id"])
    assert len(ids) > 100


def _omitempty(obj: Any) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert value not in (0, "", [], None, {}), key
            _omitempty(value)
    elif isinstance(obj, list):
        for value in obj:
            _omitempty(value)


def test_goldmane_lines_are_go_encoded_flows_with_integer_enums_and_no_empty_fields(
    model: ClusterModel,
) -> None:
    end_of_tier = profile = 0
    for rel, line in lines_of(model, "goldmane", days=0.1):
        flow = json.loads(line)
        assert rel == "flows-2026-11-24.ndjson"
        assert list(flow)[:3] == ["Key", "start_time", "end_time"]
        assert flow["start_time"] % 300 == 0 and flow["end_time"] == flow["start_time"] + 300
        _omitempty(flow)
        assert diagnose_goldmane(flow) is None
        key = flow["Key"]
        assert key["reporter"] in (1, 2) and key["action"] in (1, 2) and key["source_type"] in (1, 2, 4)
        assert "source_ip" not in key and "dest_ip" not in key
        assert flow.get("source_labels", []) == sorted(flow.get("source_labels", []))
        for hit in key["policies"]["enforced_policies"]:
            if hit["kind"] == 10:
                end_of_tier += 1
                assert hit["rule_index"] == -1 and "name" not in hit and hit["trigger"]["name"]
            if hit["kind"] == 9:
                profile += 1
                assert "tier" not in hit and hit["name"].startswith(("kns.", "projectcalico"))
    assert end_of_tier and profile


def test_whisker_responses_use_enum_names_joined_labels_and_network_names(model: ClusterModel) -> None:
    lines = lines_of(model, "whisker", days=0.25)
    responses = [json.loads(line) for rel, line in lines if rel.endswith(".json")]
    assert len(responses) == 6  # one per hour
    names = set()
    kinds = set()
    for resp in responses:
        assert list(resp) == ["total", "items"] and resp["total"] == {"totalPages": 1}
        for item in resp["items"]:
            assert item["action"] in ("Allow", "Deny") and item["reporter"] in ("Src", "Dst")
            assert RFC3339.match(item["start_time"]) and RFC3339.match(item["end_time"])
            assert " | " in item["dest_labels"] or item["dest_labels"].count("=") <= 1
            names.add(item["source_name"])
            for hit in item["policies"]["enforced"]:
                assert hit["kind"] in (
                    "CalicoNetworkPolicy",
                    "GlobalNetworkPolicy",
                    "NetworkPolicy",
                    "ClusterNetworkPolicy",
                    "Profile",
                    "EndOfTier",
                )
                kinds.add(hit["kind"] if hit["trigger"] is None else hit["trigger"]["kind"])
                assert (hit["trigger"] is None) == (hit["kind"] != "EndOfTier")
    assert "PUBLIC NETWORK" in names and "pub" not in names
    assert "ClusterNetworkPolicy" in kinds  # the cluster guardrails (rulebook G10)
    stream = [line for rel, line in lines if rel == "flows-watch.sse"]
    assert stream and all(line.startswith("data: {") or line == "\n" for line in stream)
    events = [json.loads(line[6:]) for line in stream if line.startswith("data: ")]
    assert all(e["start_time"] >= "2026-11-24T05:00:00Z" for e in events)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32), hour=st.integers(min_value=0, max_value=23))
def test_any_seed_and_hour_keep_felix_invariants(model: ClusterModel, seed: int, hour: int) -> None:
    start = dt.datetime(2026, 11, 24, hour, tzinfo=dt.UTC)
    opts = SampleOptions(start=start, days=0.02, seed=seed)
    lines = list(iter_lines(model, opts, "enterprise", declared_decisions(model)))
    assert lines
    keys = set()
    for rel, line in lines:
        doc = json.loads(line)
        # Felix's flow-log key at the levels used (the node is the file)
        key = (
            rel,
            json.dumps(doc["policies"]),
            json.dumps(doc["dest_domains"]),
            *(
                doc[k]
                for k in (
                    "start_time",
                    "source_ip",
                    "source_name",
                    "source_name_aggr",
                    "source_namespace",
                    "dest_ip",
                    "dest_name",
                    "dest_name_aggr",
                    "dest_namespace",
                    "dest_port",
                    "dest_service_name",
                    "proto",
                    "reporter",
                    "action",
                )
            ),
        )
        assert key not in keys  # one record per key, node and interval
        keys.add(key)
        assert doc["num_flows"] >= max(doc["num_flows_started"], doc["num_flows_completed"])
        assert (doc["source_ip"] is None) == (doc["action"] == "allow")
        last = sort_trace([parse_hit(h) for h in doc["policies"]["enforced_policies"]])[-1]
        assert last.action == doc["action"]
