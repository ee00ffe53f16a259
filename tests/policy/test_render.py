"""Rendering simulate and explain output (flowlens.policy.render): golden files in every format.

The goldens were written by the renderers as they were in ``flowlens/cli/policy.py`` before they
moved into the library, so they also hold the move to byte-identical output.
Regenerate with ``FLOWLENS_UPDATE_GOLDEN=1`` after an intended change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flowlens.errors import UsageError
from flowlens.policy import Endpoint, Evaluator, Explanation
from flowlens.policy.render import (
    EXPLANATION_FORMATS,
    SIMULATION_FORMATS,
    change_groups,
    render_explanation,
    render_simulation,
)
from flowlens.policy.simulate import SimulationResult, SimulationRow
from tests.policy.helpers import cluster, pod, policies

GOLDEN = Path(__file__).parent / "golden"
SUFFIX = {"table": "txt", "markdown": "md", "json": "json", "jsonl": "jsonl", "text": "txt"}


DENY = ("0|default|knp:shop/lock-api|deny|-1",)
ALLOW = ("0|security|gnp:security.pass|pass|0", "1|__PROFILE__|pro:kns.shop|allow|0")


def row(change: str, source: str, dest: str, **fields: object) -> SimulationRow:
    values: dict[str, object] = {
        "reporter": "dst",
        "source_type": "wep",
        "source_namespace": "shop",
        "source_name": "-",
        "source_name_aggr": source,
        "source_ip": None,
        "dest_type": "wep",
        "dest_namespace": "shop",
        "dest_name": "-",
        "dest_name_aggr": dest,
        "dest_ip": None,
        "proto": "tcp",
        "dest_port": 80,
        "recorded_action": "allow",
        "simulated_action": "deny" if change == "newly-denied" else "allow",
        "change": change,
        "simulated_trace": DENY if change == "newly-denied" else ALLOW,
        "pending_action": "deny" if change == "newly-denied" else "allow",
        "pending_trace": DENY if change == "newly-denied" else ALLOW,
        "records": 10,
        "records_allowed": 10,
        "records_denied": 0,
        "num_flows": 12,
        "bytes": 123_456,
    }
    values.update(fields)
    return SimulationRow(**values)  # type: ignore[arg-type]


def simulation_result() -> SimulationResult:
    """Two changes, ports of several protocols (one unknown, one missing), traces decided at
    both reporters, a name with a pipe, and repeated notes."""
    return SimulationResult(
        rows=(
            row("newly-denied", "web-*", "api-*", dest_port=8080),
            row("newly-denied", "web-*", "api-*", dest_port=443, records=3, num_flows=3, bytes=900),
            row(
                "newly-denied",
                "web-*",
                "api-*",
                reporter="src",
                dest_port=80,
                records=25,
                simulated_trace=("0|default|np:shop/egress-lock|deny|2",),
                notes=("the labels of namespace shop are not known (give --inventory)",),
                undecided=True,
            ),
            row("newly-denied", "web-*", "api-*", proto="udp", dest_port=53, records=1, bytes=64),
            row(
                "newly-allowed",
                "pub",
                "front|door-*",
                source_type="net",
                source_namespace="-",
                source_ip="203.0.113.9",
                dest_port=None,
                proto=None,
                recorded_action="deny",
                records_allowed=0,
                records_denied=4,
                records=4,
                num_flows=4,
                bytes=0,
            ),
            row(
                "unchanged",
                "worker-*",
                "db-0",
                dest_type="wep",
                dest_port=5432,
                records=1_234_567,
                num_flows=2_000_000,
                bytes=9_876_543_210,
            ),
            row(
                "unchanged",
                "worker-*",
                "db-0",
                proto="sctp",
                dest_port=5432,
                simulated_trace=(),
                pending_trace=DENY,
            ),
        ),
        notes=(
            "policies.yaml, document 3: skipped Deployment web (apps/v1): not a policy resource flowlens evaluates",
            "policies.yaml, document 3: skipped Deployment web (apps/v1): not a policy resource flowlens evaluates",
            "a note that sorts first",
        ),
    )


EXPLAIN_POLICIES = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.quarantine}
spec:
  tier: security
  order: 10
  selector: quarantine == 'true'
  ingress: [{action: Deny}]
  egress: [{action: Deny}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.pass}
spec:
  tier: security
  order: 20
  namespaceSelector: team == 'shop'
  ingress: [{action: Log}, {action: Pass}]
  egress: [{action: Pass}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: lock-api, namespace: shop}
spec: {podSelector: {matchLabels: {app: api}}, ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: http}]}]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: deny-egress-db, namespace: shop}
spec:
  selector: app == 'web'
  order: 10
  egress: [{action: Deny, destination: {nets: [10.0.0.3/32]}}]
"""


def explanations() -> dict[str, Explanation]:
    """Explanations with an allowing and a denying side, a staged policy that changes the
    pending verdict, a side that is not a Calico endpoint, and an undecided rule."""
    inventory = cluster(
        [
            pod("shop", "web-1", {"app": "web"}, "10.0.0.1"),
            pod("shop", "api-1", {"app": "api"}, "10.0.0.2", ports={"http": ("TCP", 8080)}),
            pod("shop", "db-0", {"app": "db"}, "10.0.0.3"),
        ],
        namespaces={"shop": {"team": "shop"}},
    )
    with_inventory = Evaluator(policies(EXPLAIN_POLICIES), inventory)
    without_inventory = Evaluator(policies(EXPLAIN_POLICIES))
    web = Endpoint("wep", "shop", "web-1", {"app": "web"}, "10.0.0.1")
    api = Endpoint("wep", "shop", "api-1", {"app": "api"}, "10.0.0.2")
    return {
        "explain-allowed": with_inventory.explain("shop/web-1", "shop/api-1", "tcp", 8080),
        "explain-denied-port": with_inventory.explain("shop/web-1", "shop/api-1", "TCP", 9090),
        "explain-staged": with_inventory.explain("shop/web-1", "shop/db-0", "tcp", 5432),
        "explain-external": with_inventory.explain("198.51.100.7", "shop/api-1", "udp", None),
        "explain-undecided": without_inventory.explain(web, api, "tcp", 8080),
    }


CASES = ["explain-allowed", "explain-denied-port", "explain-staged", "explain-external", "explain-undecided"]


@pytest.mark.parametrize("fmt", SIMULATION_FORMATS)
def test_simulate_output_matches_the_golden_file(fmt: str) -> None:
    _check_golden("simulate", fmt, render_simulation(simulation_result(), fmt))


@pytest.mark.parametrize("fmt", SIMULATION_FORMATS)
def test_an_empty_replay_renders_totals_and_no_rows(fmt: str) -> None:
    _check_golden("simulate-empty", fmt, render_simulation(SimulationResult((), ()), fmt))


@pytest.mark.parametrize("fmt", EXPLANATION_FORMATS)
@pytest.mark.parametrize("case", CASES)
def test_explain_output_matches_the_golden_file(case: str, fmt: str) -> None:
    _check_golden(case, fmt, render_explanation(explanations()[case], fmt))


def test_rows_are_grouped_by_change_and_pair_with_ports_sorted_and_the_deciding_rule_by_records() -> None:
    groups = change_groups(simulation_result())
    assert [(g.change, g.source, g.dest, g.keys, g.records) for g in groups] == [
        ("newly-denied", "shop/web-*", "shop/api-*", 4, 39),
        ("newly-allowed", "pub", "shop/front|door-*", 1, 4),
        ("unchanged", "shop/worker-*", "shop/db-0", 2, 1_234_577),
    ]
    assert groups[0].ports == "tcp/80, tcp/443, tcp/8080, udp/53"
    assert (
        groups[0].decided_by
        == "src: default|np:shop/egress-lock|deny|2; dst: default|knp:shop/lock-api|deny|-1"
    )
    assert groups[1].ports == "?/-"
    assert groups[2].decided_by == "dst: __PROFILE__|pro:kns.shop|allow|0; dst: -"


def test_json_rows_and_jsonl_lines_are_the_same_objects() -> None:
    result = simulation_result()
    doc = json.loads(render_simulation(result, "json"))
    lines = [json.loads(line) for line in render_simulation(result, "jsonl").splitlines()]
    assert doc["rows"] == lines
    assert doc["notes"] == sorted(set(result.notes))


def test_an_unknown_format_is_a_usage_error_naming_the_formats() -> None:
    with pytest.raises(UsageError, match="table, json, jsonl, markdown"):
        render_simulation(simulation_result(), "html")
    with pytest.raises(UsageError, match="text, json"):
        render_explanation(explanations()["explain-allowed"], "table")


def _check_golden(case: str, fmt: str, text: str) -> None:
    path = GOLDEN / f"{case}-{fmt}.{SUFFIX[fmt]}"
    if os.environ.get("FLOWLENS_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
