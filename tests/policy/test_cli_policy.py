"""The simulate and explain commands: formats, --fail-on, exit codes, the table on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from flowlens.errors import UsageError
from flowlens.output import TERMINAL_ROWS
from tests.factories import flow_row, write_store
from tests.helpers import ROOT, run_cli

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


GUARDRAIL = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: lock-default}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: default}}}
  ingress: [{name: nobody-in, action: Deny, from: [{namespaces: {}}]}]
"""


def test_g1_simulate_evaluates_cluster_guardrails_as_the_detected_or_chosen_calico_version(
    tmp_path: Path,
) -> None:
    store, _ = setup(tmp_path)
    guard = tmp_path / "guard.yaml"
    guard.write_text(GUARDRAIL)
    args = ["simulate", "--policies", str(guard), "--store", str(store), "--format", "json"]
    detected = run_cli(*args)
    assert detected.code == 0, detected
    assert "evaluating as Calico v3.32+ (detected from the manifests)" in detected.stderr
    doc = json.loads(detected.stdout)
    assert doc["totals"]["newly-denied"]["keys"] == 2
    assert {tuple(r["simulated_trace"]) for r in doc["rows"] if r["reporter"] == "dst"} == {
        ("0|kube-admin|kcnp:lock-default|deny|0",)
    }
    older = run_cli(*args, "--calico-version", "3.31")
    assert json.loads(older.stdout)["totals"]["newly-denied"]["keys"] == 0
    assert "ClusterNetworkPolicy lock-default is not enforced by Calico v3.31" in older.stderr
    bad = run_cli(*args, "--calico-version", "next")
    assert bad.code == UsageError.exit_code and "such as 3.31 or 3.32" in bad.stderr


def test_g1_without_guardrail_manifests_the_hits_in_the_store_tell_the_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    trace = [
        "0|adminnetworkpolicy|kanp.adminnetworkpolicy.pass-all|pass|0",
        "1|__PROFILE__|__PROFILE__.kns.default|allow|0",
    ]
    write_store(store, [flow_row(reporter="dst", enforced_policies=trace)])
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    result = run_cli("simulate", "--policies", str(policy), "--store", str(store))
    assert result.code == 0, result
    assert "evaluating as Calico v3.31 (detected from the policy hits in the store)" in result.stderr


def test_g2_explain_shows_the_guardrail_tier_step(tmp_path: Path) -> None:
    store, policy = setup(tmp_path)
    guard = tmp_path / "guard.yaml"
    guard.write_text(GUARDRAIL)
    args = ["explain", "--policies", str(guard), "--policies", str(policy), "--store", str(store)]
    result = run_cli(*args, "--from", "default/client", "--to", "default/server", "--port", "80")
    assert result.code == 0, result
    assert (
        "Tier kube-admin (order 1000, cluster guardrails: Admin, defaultAction Pass) applies" in result.stdout
    )
    assert "ClusterNetworkPolicy lock-default ingress rule 0 'nobody-in' (Deny): matches" in result.stdout


# --------------------------------------------------------------------------------------------
# the CLI, on a real terminal and on a pipe


def _store_with_groups(tmp_path: Path, groups: int) -> tuple[Path, Path]:
    store = tmp_path / "store"
    write_store(
        store,
        [
            flow_row(reporter="dst", source_name_aggr=f"other-{i:04d}-*", source_labels={"app": "other"})
            for i in range(groups)
        ],
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return store, policy


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """``flowlens ARGS`` with stdout a pseudo-terminal: exit code, stdout, stderr."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowlens", *args], stdout=follower, stderr=subprocess.PIPE, env=_env()
    )
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process has exited
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    _, stderr = proc.communicate(timeout=300)
    reader.join(timeout=60)
    os.close(leader)
    stdout = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return proc.returncode, stdout, stderr.decode("utf-8")


def test_the_table_on_a_terminal_is_cut_with_a_note_and_piped_it_is_whole(tmp_path: Path) -> None:
    store, policy = _store_with_groups(tmp_path, TERMINAL_ROWS + 5)
    args = ["simulate", "--policies", str(policy), "--store", str(store)]
    code, stdout, stderr = _run_on_a_terminal(args)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert sum(1 for line in lines if line.startswith("newly-denied  ")) == TERMINAL_ROWS
    assert "newly-denied: 105 keys, 105 records" in stdout
    assert f"… 5 more rows (of {TERMINAL_ROWS + 5}): use --format jsonl" in stderr

    piped = subprocess.run(
        [sys.executable, "-m", "flowlens", *args],
        capture_output=True,
        env=_env(),
        check=False,
        timeout=300,
    )
    assert piped.returncode == 0
    assert sum(1 for line in piped.stdout.decode().splitlines() if line.startswith("newly-denied  ")) == 105
    assert "more rows" not in piped.stderr.decode()
    # jsonl is never cut, even on a terminal.
    code, stdout, stderr = _run_on_a_terminal([*args, "--format", "jsonl"])
    assert code == 0 and len(stdout.splitlines()) == TERMINAL_ROWS + 5
    assert "more rows" not in stderr


def test_simulate_help_names_the_spark_threshold_and_its_default() -> None:
    from flowlens.cli.policy import SIMULATE_HELP
    from flowlens.policy.spark_replay import DEFAULT_DRIVER_KEYS, DRIVER_KEYS_CONF

    text = " ".join(SIMULATE_HELP.split())
    assert f"more than {DEFAULT_DRIVER_KEYS:,} distinct flow keys" in text
    assert f"--spark-conf {DRIVER_KEYS_CONF}=N" in text
