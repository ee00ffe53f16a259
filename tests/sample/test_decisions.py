"""The action and trace of every record come from the policy engine, once per distinct flow, and
agree with what the model declares."""

from __future__ import annotations

import datetime as dt
import json

import yaml

from flowlens.sample import SampleOptions, declared_decisions, iter_lines, load_model, parse_model
from flowlens.sample.decide import engine_decisions
from flowlens.sample.model import DEFAULT_MODEL, ClusterModel
from flowlens.sample.traffic import TrafficModel

START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def test_the_declared_traces_agree_with_the_policy_engine_for_every_flow(model: ClusterModel) -> None:
    declared = declared_decisions(model)
    engine = engine_decisions(model)
    assert engine is not None
    traffic = TrafficModel(model, declared)
    checked = 0
    mismatches = []
    for conn, reporter, src, dst, port in traffic.distinct_flows():
        want = declared(conn, reporter, src, dst, conn.proto, port)
        got = engine(conn, reporter, src, dst, conn.proto, port)
        checked += 1
        if got != want:
            mismatches.append((conn.id, reporter, src.name, dst.name, port, [h.hit for h in got.enforced]))
    assert checked > 1000
    assert mismatches == []


def test_the_generator_takes_its_traces_from_the_policy_engine(tmp_path) -> None:
    # declare a wrong trace: the output must still carry the engine's
    doc = yaml.safe_load(DEFAULT_MODEL.read_text())
    for conn in doc["connections"]:
        if conn["id"] == "frontend-to-backend":
            conn["expect"]["dst"] = {"enforced": ["0|__PROFILE__|pro:kns.production|allow|0"]}
    doc["policies"] = str(DEFAULT_MODEL.parent / "policies")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    model = load_model(path)
    opts = SampleOptions(start=START, days=0.05)
    docs = [json.loads(line) for _, line in iter_lines(model, opts)]
    hits = {
        tuple(d["policies"]["enforced_policies"])
        for d in docs
        if d["reporter"] == "dst"
        and d["dest_name_aggr"] == "backend-84c6d5f7b9-*"
        and d["source_name_aggr"].startswith("frontend-")
    }
    assert hits
    assert all("1|default|knp:production/allow-frontend-to-backend|allow|0" in h for h in hits)


def test_decisions_are_asked_once_per_distinct_flow_not_per_record(model: ClusterModel) -> None:
    declared = declared_decisions(model)
    calls = []

    def counting(conn, reporter, src, dst, proto, port):
        calls.append((conn.id, reporter, src.full_id, dst.full_id, proto, port))
        return declared(conn, reporter, src, dst, proto, port)

    opts = SampleOptions(start=START, days=0.5)
    records = sum(1 for _ in iter_lines(model, opts, "enterprise", counting))
    assert records > 5000
    assert len(calls) < records / 5
    assert len(calls) == len(set(calls))  # never the same flow twice


def test_a_model_without_a_policies_folder_uses_its_declared_traces() -> None:
    doc = yaml.safe_load(DEFAULT_MODEL.read_text())
    doc.pop("policies")
    model = parse_model(doc, DEFAULT_MODEL)
    assert engine_decisions(model) is None
    assert sum(1 for _ in iter_lines(model, SampleOptions(start=START, days=0.02))) > 50


def test_the_legacy_hits_are_what_calico_v3_31_writes_with_the_admin_network_policies(
    model: ClusterModel, tmp_path
) -> None:
    """rulebook G10: --legacy-hits writes the ClusterNetworkPolicy hits as the hits of their
    AdminNetworkPolicy / BaselineAdminNetworkPolicy counterparts (policies-v3.31/), which the
    policy engine, as Calico v3.31, computes from those manifests."""
    import dataclasses
    import shutil

    from flowlens.formats.hits import to_legacy
    from flowlens.sample.layouts import legacy_hit

    assert model.policies_dir is not None
    folder = tmp_path / "policies"
    folder.mkdir()
    for path in model.policies_dir.glob("*.yaml"):
        if "cluster-guardrails" not in path.name:
            shutil.copy(path, folder / path.name)
    for path in (model.policies_dir.parent / "policies-v3.31").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    legacy = engine_decisions(dataclasses.replace(model, policies_dir=folder))
    assert legacy is not None
    declared = declared_decisions(model)
    guardrail_hits = 0
    mismatches = []
    for conn, reporter, src, dst, port in TrafficModel(model, declared).distinct_flows():
        want = [legacy_hit(h) for h in declared(conn, reporter, src, dst, conn.proto, port).enforced]
        got = [to_legacy(h) for h in legacy(conn, reporter, src, dst, conn.proto, port).enforced]
        guardrail_hits += sum("adminnetworkpolicy" in h for h in want)
        if got != want:
            mismatches.append((conn.id, reporter, want, got))
    assert mismatches == []
    assert guardrail_hits > 50
