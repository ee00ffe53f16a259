"""Property tests on random topologies, replayed through the policy engine.

Every observed allowed edge is allowed by the suggestion; every workload pair and port with no
observed edge is denied (workloads are one ``app`` label each, the chosen granularity).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.policy.evaluate import Evaluator
from flowlens.policy.manifests import policies_from_objects
from flowlens.policy.model import Endpoint
from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.yamlout import plain
from tests.suggest.helpers import edge_rows, pod_side, report_rows

APPS = ["a", "b", "c", "d", "e"]
NAMESPACES = ["ns1", "ns2"]
PORTS = [80, 81, 82, 443, 8080]
PROTOS = ["tcp", "udp"]

workload = st.tuples(st.sampled_from(APPS), st.sampled_from(NAMESPACES))
edge = st.tuples(
    workload,
    workload,
    st.sampled_from(PROTOS),
    st.sampled_from(PORTS),
    st.sampled_from([("src",), ("dst",), ("src", "dst")]),
)


def _endpoint(app: str, ns: str) -> Endpoint:
    return Endpoint("wep", ns, f"{app}-5d8f7b9c6-*", {"app": app, "pod-template-hash": "5d8f7b9c6"})


def _evaluator(edges: list[Any], flavor: str, targets: tuple[str, ...], seed: int) -> Evaluator:
    rows = []
    for (sa, sns), (da, dns), proto, port, reporters in edges:
        rows += edge_rows(
            pod_side("source", sa, sns), pod_side("dest", da, dns), port, proto=proto, reporters=reporters
        )
    random.Random(seed).shuffle(rows)
    s = suggest(report_rows(rows), SuggestOptions(namespaces=targets, flavor=flavor))
    return Evaluator(policies_from_objects([plain(d.body) for d in s.documents()]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edges=st.lists(edge, min_size=1, max_size=12),
    flavor=st.sampled_from(["kubernetes", "calico"]),
    targets=st.sampled_from([("ns1",), ("ns1", "ns2")]),
    seed=st.integers(0, 1000),
)
def test_observed_edges_are_allowed_and_nothing_else_is(
    edges: list[Any], flavor: str, targets: tuple[str, ...], seed: int
) -> None:
    evaluator = _evaluator(edges, flavor, targets, seed)
    observed = {(s, d, proto, port) for s, d, proto, port, _ in edges}
    for s, d, proto, port in observed:
        conn = evaluator.connection(_endpoint(*s), _endpoint(*d), proto, port)
        assert conn.action == "allow", (
            s,
            d,
            proto,
            port,
            conn.egress.enforced_hits,
            conn.ingress.enforced_hits,
        )
    workloads = sorted({s for s, *_ in edges} | {d for _, d, *_ in edges})
    for s, d in itertools.product(workloads, workloads):
        if s[1] not in targets and d[1] not in targets:
            continue  # neither side is locked down
        for proto, port in itertools.product(PROTOS, [*PORTS, 9999]):
            if (s, d, proto, port) in observed:
                continue
            conn = evaluator.connection(_endpoint(*s), _endpoint(*d), proto, port)
            assert conn.action == "deny", (
                s,
                d,
                proto,
                port,
                conn.egress.enforced_hits,
                conn.ingress.enforced_hits,
            )
