"""Invariants of the coverage figures on random small stores (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.engine import connect
from flowlens.report.coverage import compute
from tests.factories import write_store
from tests.report.helpers import hep, net, row, wep

NAMESPACES = ("a", "b", "c")
TRACES = {
    "explicit": ["0|default|knp:{ns}/allow|allow|0"],
    "profile": ["0|__PROFILE__|pro:kns.{ns}|allow|0"],
    "pass": ["0|t1|gnp:t1.p|pass|-1", "1|__PROFILE__|pro:kns.{ns}|allow|0"],
    "deny": ["0|default|knp:{ns}/allow|deny|-1"],
    "none": None,
}


@st.composite
def records(draw: st.DrawFn) -> dict:
    src_kind = draw(st.sampled_from(["wep", "wep", "net", "hep"]))
    dst_kind = draw(st.sampled_from(["wep", "wep", "net", "hep"]))
    src_ns, dst_ns = draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(NAMESPACES))
    src = {
        "wep": wep("source", src_ns, f"s{src_ns}-*"),
        "net": net("source"),
        "hep": hep("source", "node-1"),
    }[src_kind]
    dst = {
        "wep": wep("dest", dst_ns, f"d{dst_ns}-*"),
        "net": net("dest", "pvt"),
        "hep": hep("dest", "node-2"),
    }[dst_kind]
    reporter = draw(st.sampled_from(["src", "dst"]))
    trace = draw(st.sampled_from(sorted(TRACES)))
    ns = src_ns if reporter == "src" else dst_ns
    hits = None if TRACES[trace] is None else [h.format(ns=ns) for h in TRACES[trace]]
    return row(
        src,
        dst,
        reporter,
        hits,
        action="deny" if trace == "deny" else "allow",
        port=draw(st.sampled_from([80, 443, 5432])),
        connections=draw(st.integers(0, 5)),
        byte_count=draw(st.integers(0, 10_000)),
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=30))
def test_coverage_figures_add_up_on_any_store(rows: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_store(Path(tmp), rows)
        with connect(Path(tmp)) as engine:
            cov = compute(engine)
    assert cov.records == len(rows)
    for w in cov.workloads + cov.hosts:
        for t in (w.ingress, w.egress):
            assert t.explicit_records + t.profile_records + t.unknown_records == t.allowed_records
            assert (
                t.explicit_connections + t.profile_connections + t.unknown_connections
                == t.allowed_connections
            )
            assert t.explicit_bytes + t.profile_bytes + t.unknown_bytes == t.allowed_bytes
            for share in (t.connection_coverage, t.byte_coverage):
                assert share is None or 0.0 <= share <= 1.0
    # Every src/dst record of a pod lands in exactly one workload direction.
    pod_records = sum(
        1 for r in rows if (r["source_type"] if r["reporter"] == "src" else r["dest_type"]) == "wep"
    )
    totals = cov.cluster_ingress + cov.cluster_egress
    assert totals.allowed_records + totals.denied_records == pod_records
    ns_total = sum((n.ingress + n.egress for n in cov.namespaces), type(totals)())
    assert ns_total == totals
    assert cov.score.value is None or 0.0 <= cov.score.value <= 100.0
    # Edges count each connection once: destination's record for pods and hosts, else the source's.
    counted = sum(
        r["num_flows_started"]
        for r in rows
        if (r["reporter"] == "dst" and r["dest_type"] in ("wep", "hep"))
        or (r["reporter"] == "src" and (r["action"] == "deny" or r["dest_type"] not in ("wep", "hep")))
    )
    assert sum(e.allowed_connections + e.denied_connections for e in cov.edges) == counted
