"""The simulate and explain commands: formats, --fail-on, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.factories import flow_row, write_store
from tests.helpers import run_cli

POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lock-server, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: 80}]}]
"""


def setup(tmp_path: Path) -> tuple[Path, Path]:
    store = tmp_path / "store"
    write_store(
        store,
        [
            flow_row(reporter="dst"),
            flow_row(reporter="dst", source_name_aggr="other-1-*", source_labels={"app": "other"}),
            flow_row(reporter="src"),
        ],
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return store, policy


def test_simulate_jsonl_has_one_object_per_key_and_reporter_with_the_documented_fields(
    tmp_path: Path,
) -> None:
    store, policy = setup(tmp_path)
    result = run_cli("simulate", "--policies", str(policy), "--store", str(store), "--format", "jsonl")
    assert result.code == 0, result
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    first = rows[0]
    for field in [
        "reporter",
        "source_type",
        "source_namespace",
        "source_name",
        "source_name_aggr",
        "source_ip",
        "dest_type",
        "dest_namespace",
        "dest_name",
        "dest_name_aggr",
        "dest_ip",
        "proto",
        "dest_port",
        "recorded_action",
        "simulated_action",
        "change",
        "simulated_trace",
        "records",
        "num_flows",
        "bytes",
    ]:
        assert field in first
    assert (first["change"], first["source_name_aggr"], first["simulated_trace"]) == (
        "newly-denied",
        "other-1-*",
        ["0|default|knp:default/lock-server|deny|-1"],
    )


def test_simulate_table_groups_by_change_and_workload_pair_with_totals(tmp_path: Path) -> None:
    store, policy = setup(tmp_path)
    result = run_cli("simulate", "--policies", str(policy), "--store", str(store))
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["CHANGE", "SOURCE", "DEST", "PORTS"]
    assert lines[1].startswith("newly-denied  default/other-1-*")
    assert "newly-denied: 1 keys, 1 records" in result.stdout


def test_simulate_fail_on_exits_10_for_ci_gates(tmp_path: Path) -> None:
    store, policy = setup(tmp_path)
    args = ["simulate", "--policies", str(policy), "--store", str(store), "--format", "json"]
    failed = run_cli(*args, "--fail-on", "newly-denied")
    assert failed.code != 0
    assert (
        failed.code == 10
        and "flowlens: error: --fail-on newly-denied: 1 newly-denied flow keys" in failed.stderr
    )
    assert json.loads(failed.stdout)["totals"]["newly-denied"]["keys"] == 1  # the output comes first
    ok = run_cli(*args, "--fail-on", "newly-allowed")
    assert ok.code == 0
    assert json.loads(ok.stdout)["totals"]["newly-denied"]["keys"] == 1


def test_explain_walks_both_sides_with_workloads_from_the_store(tmp_path: Path) -> None:
    store, policy = setup(tmp_path)
    result = run_cli(
        "explain",
        "--policies",
        str(policy),
        "--store",
        str(store),
        "--from",
        "default/other",
        "--to",
        "default/server",
        "--port",
        "80/tcp",
    )
    assert result.code == 0, result
    out = result.stdout
    assert "DENIED" in out
    assert "Egress (at the source):" in out and "Ingress (at the destination):" in out
    assert "end-of-tier deny" in out
    assert "0|default|knp:default/lock-server|deny|-1" in out


def test_explain_rejects_a_bad_port(tmp_path: Path) -> None:
    _, policy = setup(tmp_path)
    result = run_cli(
        "explain", "--policies", str(policy), "--from", "1.2.3.4", "--to", "5.6.7.8", "--port", "http"
    )
    assert result.code == 2 and "--port 'http': give a port number" in result.stderr


def test_simulate_base_applies_the_candidate_on_top_of_the_policies_in_force(tmp_path: Path) -> None:
    store, _ = setup(tmp_path)
    base = tmp_path / "base.yaml"
    # In force: lock-server (only 'client' may connect) and a policy that stops client egress.
    base.write_text(
        POLICY
        + """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-no-egress, namespace: default}
spec: {podSelector: {matchLabels: {app: client}}, policyTypes: [Egress]}
"""
    )
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(POLICY.replace("{app: client}", "{}"))  # lock-server now admits any pod
    out = tmp_path / "out" / "sim.jsonl"
    args = ["simulate", "--base", str(base), "--policies", str(candidate), "--store", str(store)]
    result = run_cli(*args, "--format", "jsonl", "--out", str(out))
    assert result.code == 0, result
    assert result.stdout == ""
    rows = {(r["reporter"], r["source_name_aggr"]): r for r in map(json.loads, out.read_text().splitlines())}
    assert rows[("dst", "other-1-*")]["change"] == "unchanged"  # the candidate replaced lock-server
    assert rows[("src", "client-5d8f7b9c6-*")]["change"] == "newly-denied"  # the base policy stays
    assert rows[("src", "client-5d8f7b9c6-*")]["simulated_trace"] == [
        "0|default|knp:default/client-no-egress|deny|-1"
    ]


def test_a_policy_file_built_to_hurt_is_one_short_error_line_and_exit_code_6(tmp_path: Path) -> None:
    from tests.policy.manifests.test_documents import ALIAS_BOMB

    store, policy = setup(tmp_path)
    policy.write_text(POLICY + "---\n" + ALIAS_BOMB)
    result = run_cli("simulate", "--policies", str(policy), "--store", str(store))
    assert result.code == 6, result
    assert "Traceback" not in result.stderr and "aliases expand" in result.stderr
    assert max(len(line) for line in result.stderr.splitlines()) < 400
