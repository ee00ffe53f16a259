"""Record layouts: each named layout writes the groups it names, as Calico writes them, in
Felix's field order, and every record passes the ingest diagnosis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from flowlens.cli import app
from flowlens.errors import UsageError
from flowlens.formats.enterprise import GROUPS, diagnose_document, diagnose_hit
from flowlens.formats.hits import is_modern, parse_hit
from flowlens.sample import SampleOptions
from flowlens.sample.layouts import ABSENT, LAYOUTS, OFF, ON, POLICY_KEYS, TCP_KEYS, Layout
from flowlens.sample.model import ClusterModel

from .conftest import START, lines_of
from .test_formats import ENT_2026_KEYS

# The keys of each optional group (Felix's JSONOutput names).
GROUP_KEYS = {
    "labels": ("source_labels", "dest_labels"),
    "policies": ("policies",),
    "services": ("dest_service_namespace", "dest_service_name", "dest_service_port", "dest_service_port_num"),
    "domains": ("dest_domains",),
    "nat_ports": ("nat_outgoing_ports",),
    "transit": GROUPS["transit"],
    "http": GROUPS["http"],
    "process": (
        "process_name",
        "num_process_names",
        "process_id",
        "num_process_ids",
        "process_args",
        "num_process_args",
    ),
    "original_ips": ("original_source_ips", "num_original_source_ips"),
    "tcp": TCP_KEYS,
}
ES_KEYS = ["host", "@timestamp", "cluster", "generated_time", "id"]


def _docs(model: ClusterModel, layout: str, fmt: str = "enterprise") -> list[dict[str, Any]]:
    return [json.loads(line) for _, line in lines_of(model, fmt, days=0.1, layout=layout)]


def _expected_keys(layout: Layout) -> list[str]:
    absent = {key for group, keys in GROUP_KEYS.items() if getattr(layout, group) == ABSENT for key in keys}
    return [k for k in ENT_2026_KEYS if k not in absent] + (ES_KEYS if layout.es_fields else [])


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_writes_its_groups_in_felix_order_and_passes_the_diagnosis(
    model: ClusterModel, name: str
) -> None:
    layout = LAYOUTS[name]
    docs = _docs(model, name)
    assert len(docs) > 100
    for doc in docs:
        assert list(doc) == _expected_keys(layout)
        assert diagnose_document(doc) is None, doc
        if layout.policies == ON:
            assert list(doc["policies"]) == list(layout.policy_keys)
        for group in ("labels", "policies"):
            if getattr(layout, group) == OFF:
                assert all(doc[key] is None for key in GROUP_KEYS[group])
        if layout.services == OFF:
            assert doc["dest_service_name"] == "-" and doc["dest_service_port_num"] is None


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_layout_spells_its_hits_as_its_release_did(model: ClusterModel, name: str) -> None:
    layout = LAYOUTS[name]
    if layout.policies != ON:
        pytest.skip("no policies in this layout")
    hits = [h for doc in _docs(model, name) for key in layout.policy_keys for h in doc["policies"][key] or []]
    assert hits
    for hit in hits:
        parse_hit(hit, strict=False)
        assert hit.count("|") == (3 if layout.hits == "f0" else 4)
        assert is_modern(hit.split("|")[2]) == (layout.hits == "modern")


def test_the_full_layout_has_values_in_every_optional_group(model: ClusterModel) -> None:
    docs = _docs(model, "full")
    assert all(set(doc["policies"]) == set(POLICY_KEYS) for doc in docs)
    assert any(doc["nat_outgoing_ports"] for doc in docs)
    assert any(doc["original_source_ips"] for doc in docs)
    assert any(doc["http_requests_allowed_in"] for doc in docs)
    assert any(doc["tcp_mean_smooth_rtt"] for doc in docs)
    assert any(doc["process_name"] not in ("-", "*") for doc in docs)
    assert any(doc["process_name"] == "*" for doc in docs)
    for doc in docs:
        assert doc["@timestamp"] == doc["end_time"] * 1000
        ports = doc["nat_outgoing_ports"]
        assert ports is None or (1 <= len(ports) <= 3 and ports == sorted(ports))
        assert doc["num_process_args"] == (0 if doc["process_args"] == ["-"] else len(doc["process_args"]))
        if doc["proto"] != "tcp":
            assert all(doc[k] == 0 for k in TCP_KEYS)


def test_elasticsearch_hits_follow_the_layout_too(model: ClusterModel) -> None:
    for line in lines_of(model, "elasticsearch", days=0.05, layout="2019"):
        hit = json.loads(line[1])
        assert "process_name" not in hit["_source"] and list(hit["_source"]["policies"]) == ["all_policies"]
        assert diagnose_hit(hit) is None


def test_the_default_layout_is_the_sample_and_legacy_hits_is_the_2025_layout(model: ClusterModel) -> None:
    assert lines_of(model, "enterprise", days=0.05) == lines_of(
        model, "enterprise", days=0.05, layout="sample"
    )
    assert lines_of(model, "enterprise", days=0.05, legacy_hits=True) == lines_of(
        model, "enterprise", days=0.05, layout="2025"
    )


def test_an_unknown_layout_or_a_contradiction_is_refused() -> None:
    with pytest.raises(UsageError, match=r"unknown layout 'newest'.*full"):
        SampleOptions(start=START, layout="newest")
    with pytest.raises(UsageError, match="--legacy-hits"):
        SampleOptions(start=START, layout="full", legacy_hits=True)
    with pytest.raises(UsageError, match="tcp must be on, off or absent"):
        Layout("mine", "", tcp="sometimes")


def test_the_cli_writes_a_layout(tmp_path) -> None:
    result = CliRunner().invoke(
        app,
        ["sample", "--out", str(tmp_path), "--layout", "felix-defaults", "--days", "0.05",
         "--start", "2026-11-24T00:00:00Z"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "enterprise" / "worker-1" / "flows.log").read_text().splitlines()[0])
    assert doc["source_labels"] is None and doc["policies"] is None
