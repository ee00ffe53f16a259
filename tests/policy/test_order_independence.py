"""Hypothesis: where the semantics say order must not matter, the manifest order does not matter."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.policy import Evaluator, policies_from_objects
from tests.policy.helpers import cluster, pod

PODS = [
    pod(ns, name, {"app": name}, f"10.0.{i}.{j}")
    for i, ns in enumerate(("x", "y"), 1)
    for j, name in enumerate(("a", "b", "c"), 1)
]
INV = cluster(PODS, {"x": {"team": "red"}, "y": {"team": "blue"}})
PAIRS = [(f"{s.namespace}/{s.name}", f"{d.namespace}/{d.name}") for s in PODS for d in PODS if s is not d] + [
    ("8.8.8.8", "x/a"),
    ("y/c", "1.1.1.1"),
]


def knp(i: int, ns: str, target: str, peer: str, port: int, egress: bool) -> dict:
    rule = {
        ("to" if egress else "from"): [{"podSelector": {"matchLabels": {"app": peer}}}],
        "ports": [{"port": port}],
    }
    spec = {"podSelector": {"matchLabels": {"app": target}}, ("egress" if egress else "ingress"): [rule]}
    if egress:
        spec["policyTypes"] = ["Egress"]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{i}", "namespace": ns},
        "spec": spec,
    }


def gnp(i: int, order: int, target: str, action: str) -> dict:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"g{i}"},
        "spec": {
            "order": order,
            "selector": f"app == '{target}'",
            "ingress": [{"action": action, "source": {"namespaceSelector": "team == 'blue'"}}],
        },
    }


manifest = st.one_of(
    st.builds(
        knp,
        st.integers(0, 5),
        st.sampled_from(["x", "y"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from([80, 81]),
        st.booleans(),
    ),
    st.builds(
        gnp,
        st.integers(0, 5),
        st.integers(1, 3000),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["Allow", "Deny", "Pass"]),
    ),
)


def verdicts(docs: list[dict]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    ev = Evaluator(policies_from_objects(docs), INV)
    out = []
    for s, d in PAIRS:
        for port in (80, 81):
            c = ev.connection(s, d, "tcp", port)
            out.append((c.action, c.egress.enforced_hits, c.ingress.enforced_hits))
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.lists(manifest, min_size=1, max_size=6, unique_by=lambda d: d["metadata"]["name"] + d["kind"]),
    st.randoms(),
)
def test_evaluation_and_traces_do_not_depend_on_manifest_order(docs: list[dict], rnd) -> None:
    shuffled = list(docs)
    rnd.shuffle(shuffled)
    assert verdicts(docs) == verdicts(shuffled)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.builds(
            knp,
            st.integers(0, 9),
            st.sampled_from(["x", "y"]),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([80, 81]),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda d: d["metadata"]["name"],
    )
)
def test_kubernetes_verdicts_are_a_union_independent_of_policy_names(docs: list[dict]) -> None:
    # Renaming policies changes their order inside the default tier, never a Kubernetes verdict (rulebook K4).
    renamed = yaml.safe_load(yaml.safe_dump(docs))
    for d in renamed:
        d["metadata"]["name"] = "z" + d["metadata"]["name"][::-1]
    assert [v[0] for v in verdicts(docs)] == [v[0] for v in verdicts(renamed)]


@settings(max_examples=30, deadline=None)
@given(st.lists(manifest, min_size=1, max_size=6, unique_by=lambda d: d["metadata"]["name"] + d["kind"]))
def test_allows_is_the_connection_verdict(docs: list[dict]) -> None:
    # allows() decides the ingress side only when the egress side allows: the same answer.
    ev = Evaluator(policies_from_objects(docs), INV)
    fresh = Evaluator(policies_from_objects(docs), INV)
    for s, d in PAIRS:
        for port in (80, 81):
            src, dst = ev.endpoint(s), ev.endpoint(d)
            assert fresh.allows(src, dst, "TCP", port) == (
                ev.connection(src, dst, "tcp", port).action == "allow"
            )
