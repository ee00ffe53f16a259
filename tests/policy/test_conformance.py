"""The upstream conformance suites of the cluster policy APIs, replayed offline.

kubernetes-sigs/network-policy-api ships conformance tests: ClusterNetworkPolicy at v0.2.0 and
AdminNetworkPolicy / BaselineAdminNetworkPolicy at v0.1.5, 24 ConformanceTests each, 92 subtests
each, 289 and 271 connectivity probes. ``tests/policy/conformance/`` holds every one of them as
flowlens vectors (see :mod:`tests.policy.conformance.helpers`): the same policies, the same patches, the
same expected connectivity, evaluated the way the Calico version that enforces the kind does
(v3.32 for ClusterNetworkPolicy, v3.31 for the admin network policies). Where Calico departs
from the upstream expectation (nodes peers, admin-network-policy named ports), the vector keeps
Calico's verdict and says why (rulebook D5, D6).
"""

from __future__ import annotations

import pytest

from flowlens.policy.versions import CalicoVersion
from tests.policy.conformance.helpers import load, walk

SUITES = {
    "cnp-v0.2.0.yaml": CalicoVersion(3, 32),
    "anp-v0.1.5.yaml": CalicoVersion(3, 31),
}
#: What the upstream suites hold (counted in conformance/tests/*.go at each tag): ConformanceTests,
#: t.Run subtests, PokeServer probes.
UPSTREAM = {"cnp-v0.2.0.yaml": (24, 92, 289), "anp-v0.1.5.yaml": (24, 92, 271)}
#: Probes where Calico gives another verdict than the upstream test expects.
DIVERGENT = {"cnp-v0.2.0.yaml": 4, "anp-v0.1.5.yaml": 8}


def _cases() -> list[tuple[str, str]]:
    return [(file, test["upstream"]) for file in SUITES for test in load(file)["tests"]]


@pytest.mark.parametrize(("file", "upstream"), _cases(), ids=[f"{f.split('-')[0]}-{u}" for f, u in _cases()])
def test_every_conformance_probe_gets_the_verdict_calico_gives(file: str, upstream: str) -> None:
    (test,) = [t for t in load(file)["tests"] if t["upstream"] == upstream]
    wrong = [
        f"{subtest}: {probe.source} -> {probe.dest} {probe.proto}/{probe.port}: expected {probe.verdict}, got {verdict}"
        for subtest, probe, verdict, _ in walk(test, SUITES[file])
        if verdict != probe.verdict
    ]
    assert wrong == []


@pytest.mark.parametrize("file", list(SUITES))
def test_the_vectors_hold_every_upstream_test_subtest_and_probe(file: str) -> None:
    tests = load(file)["tests"]
    counts = (
        len({t["upstream"] for t in tests}),
        sum(len(t["steps"]) for t in tests),
        sum(len(s["expect"]) for t in tests for s in t["steps"]),
    )
    assert counts == UPSTREAM[file]


@pytest.mark.parametrize("file", list(SUITES))
def test_a_verdict_that_departs_from_upstream_says_why_and_cites_the_rulebook(file: str) -> None:
    probes = [probe for test in load(file)["tests"] for _, probe, _, _ in walk(test, SUITES[file])]
    divergent = [p for p in probes if p.upstream != p.verdict]
    assert len(divergent) == DIVERGENT[file]
    assert all("rulebook" in p.why for p in divergent)
    assert all(p.why == "" for p in probes if p.upstream == p.verdict)


def test_g9_the_node_peer_rules_fail_closed_with_a_note_per_rule() -> None:
    (test,) = [t for t in load("cnp-v0.2.0.yaml")["tests"] if t["upstream"] == "CNPAdminTierEgressNodePeers"]
    _, _, _, notes = walk(test, SUITES["cnp-v0.2.0.yaml"])[0]
    fail_closed = [n for n in notes if "fails closed" in n]
    assert len(fail_closed) == 3
    assert sum("drops it" in n for n in fail_closed) == 1  # the Accept rule
    assert sum("denies all traffic" in n for n in fail_closed) == 2  # the Pass and Deny rules


@pytest.mark.parametrize("file", list(SUITES))
def test_every_vector_manifest_is_valid_against_the_shipped_crd_schema(file: str) -> None:
    import copy

    from flowlens.suggest.validate import validate_objects
    from tests.policy.conformance.helpers import apply_change, manifest, network_policy

    problems = []
    for test in load(file)["tests"]:
        state = {
            "policies": copy.deepcopy(test["policies"]),
            "networkPolicies": copy.deepcopy(test.get("networkPolicies", [])),
        }
        for step in test["steps"]:
            for change in step.get("change", []):
                apply_change(state, change)
            objects = [manifest(p) for p in state["policies"]] + [
                network_policy(n) for n in state["networkPolicies"]
            ]
            problems += validate_objects(objects)
    assert problems == []
