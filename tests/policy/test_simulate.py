"""Replaying a store against candidate policies, and the consistency check."""

from __future__ import annotations

from pathlib import Path

from flowlens.engine import connect
from flowlens.policy.simulate import check_consistency, simulate
from flowlens.store import Store
from tests.factories import flow_row, write_store
from tests.policy.helpers import policies

DENY_SERVER_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lock-server, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: 80}]}]
"""


def make_store(tmp_path: Path) -> Store:
    rows = [
        # client -> server:80 seen at both ends, three records at dst
        flow_row(reporter="src"),
        flow_row(reporter="dst"),
        flow_row(reporter="dst", bytes_in=10, bytes_out=0),
        flow_row(reporter="dst", num_flows=4),
        # other -> server:80 at dst: will be newly denied
        flow_row(
            reporter="dst",
            source_name_aggr="other-1-*",
            source_labels={"app": "other"},
        ),
        # client -> server:81, recorded denied: stays denied
        flow_row(
            reporter="dst",
            dest_port=81,
            action="deny",
            enforced_policies=["0|default|knp:default/lock-server|deny|-1"],
        ),
    ]
    write_store(tmp_path / "store", rows)
    return Store(tmp_path / "store")


def test_simulate_reports_newly_denied_and_unchanged_keys_with_counts(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with connect(store) as engine:
        result = simulate(engine, policies(DENY_SERVER_INGRESS))
    by = {(r.reporter, r.source_name_aggr, r.dest_port): r for r in result.rows}
    assert len(result.rows) == 4
    other = by[("dst", "other-1-*", 80)]
    assert (other.recorded_action, other.simulated_action, other.change) == ("allow", "deny", "newly-denied")
    assert other.simulated_trace == ("0|default|knp:default/lock-server|deny|-1",)
    client = by[("dst", "client-5d8f7b9c6-*", 80)]
    assert (client.change, client.records, client.num_flows, client.bytes) == ("unchanged", 3, 6, 3010)
    assert client.simulated_trace == ("0|default|knp:default/lock-server|allow|0",)
    assert by[("dst", "client-5d8f7b9c6-*", 81)].change == "unchanged"
    assert result.rows[0].change == "newly-denied"  # changes sort first
    assert result.totals["newly-denied"] == {"keys": 1, "records": 1, "num_flows": 1, "bytes": 1500}


def test_simulate_reports_newly_allowed_when_the_candidate_opens_a_port(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with connect(store) as engine:
        result = simulate(engine, policies(DENY_SERVER_INGRESS.replace("port: 80}", "port: 80}, {port: 81}")))
    assert [r.dest_port for r in result.rows if r.change == "newly-allowed"] == [81]


def test_simulate_filters_by_namespace(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with connect(store) as engine:
        assert simulate(engine, policies(DENY_SERVER_INGRESS), namespace="elsewhere").rows == ()


def test_the_consistency_check_finds_records_the_policies_do_not_reproduce(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    with connect(store) as engine:
        report = check_consistency(engine, policies(DENY_SERVER_INGRESS))
    problems = sorted((m.row.reporter, m.row.source_name_aggr, m.row.dest_port) for m in report.mismatches)
    # Recorded with the profile trace while lock-server would have been in force.
    assert problems == [("dst", "client-5d8f7b9c6-*", 80), ("dst", "other-1-*", 80)]
    assert report.records_checked == 6 and not report.ok
    with connect(store) as engine:
        assert check_consistency(engine, policies("")).mismatches != ()


def test_simulate_keeps_the_recorded_verdict_when_missing_facts_allow_it(tmp_path: Path) -> None:
    write_store(
        tmp_path / "s",
        [
            flow_row(
                reporter="src",
                dest_type="net",
                dest_namespace="-",
                dest_name_aggr="pub",
                dest_labels=None,
                dest_port=443,
                enforced_policies=["0|default|np:default/egress|allow|1"],
            )
        ],
    )
    text = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: egress, namespace: default}
spec:
  egress:
  - {action: Deny, protocol: TCP, destination: {nets: [169.254.169.254/32]}}
  - {action: Allow}
"""
    with connect(Store(tmp_path / "s")) as engine:
        result = simulate(engine, policies(text))
        report = check_consistency(engine, policies(text))
    (row,) = result.rows
    assert (row.change, row.simulated_action, row.undecided) == ("unchanged", "allow", True)
    assert row.simulated_trace == ("0|default|np:default/egress|allow|1",)
    assert any("recorded verdict allow is kept" in n for n in row.notes)
    assert report.ok and report.undecided_keys == 1


def test_keys_that_differ_only_in_unprinted_labels_come_out_in_the_same_order_whatever_the_input_order(
    tmp_path: Path,
) -> None:
    # Twelve keys that print alike (same workloads, ports and verdicts) and differ only in the
    # labels recorded for the client: the output must not depend on the order DuckDB groups them.
    rows = [
        flow_row(
            reporter="src", source_labels={"app": "client", "pod-template-hash": f"h{i:02d}"}, num_flows=i + 1
        )
        for i in range(12)
    ]
    outputs = set()
    for name, ordered in (("forward", rows), ("backward", rows[::-1]), ("split", rows[1::2] + rows[::2])):
        root = tmp_path / name
        for part in range(3):
            write_store(root, ordered[part::3], name=f"part-{part}")
        with connect(Store(root)) as engine:
            result = simulate(engine, policies(DENY_SERVER_INGRESS))
        outputs.add(tuple((r.num_flows, r.records) for r in result.rows))
    assert len(outputs) == 1
