"""Benchmark: ``flowlens suggest`` for one namespace over a large synthetic store.

Builds (once, cached under ``--dir``) a store of ``--records`` flow records over 7 days: 20
namespaces of 12 workloads each, in-namespace and cross-namespace edges, DNS, external addresses
(logged and masked), both reporters, Calico aggregation level 2 style (names ``prefix-*``, masked
IPs for pods). Then times, for namespace ``ns00``:

* baseline: one DuckDB scan of the whole window (``count(*)`` and a sum over the flows view);
* load: the ``suggest-edges`` query;
* activity: the ``suggest-activity`` query (intervals and days per edge, for the stability
  evidence and the screening);
* synthesis + rendering (with the screening);
* the proof (replay of every distinct key plus the closure summary).

Prints the numbers and the ratio of the whole suggestion to the baseline scan.

    .venv/bin/python bench/bench_suggest.py --records 10000000 --dir /tmp/flowlens-bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.engine import connect
from flowlens.formats.hits import parse_hit
from flowlens.schema import ARROW_SCHEMA, LABELS, POLICY_LIST
from flowlens.suggest import SuggestOptions, load_activity, load_reports, suggest
from flowlens.suggest.proof import prove

NAMESPACES = [f"ns{i:02d}" for i in range(20)]
APPS = [f"svc{i:02d}" for i in range(12)]
DAY0 = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
CHUNK = 1_000_000


def _edges(rng: np.random.Generator) -> list[tuple[str, str, str, str, str, str | None, str, int]]:
    """(src_type, src_ns, src_app, dst_type, dst_ns, dst_app_or_ip, proto, port)."""
    edges = []
    for ns in NAMESPACES:
        for _ in range(30):
            a, b = rng.choice(len(APPS), 2, replace=False)
            edges.append(
                (
                    "wep",
                    ns,
                    APPS[a],
                    "wep",
                    ns,
                    APPS[b],
                    "tcp",
                    int(rng.choice([80, 443, 8080, 9090, 5432, 6379])),
                )
            )
        for app in APPS:
            edges.append(("wep", ns, app, "wep", "kube-system", "kube-dns", "udp", 53))
        for _ in range(4):
            other = NAMESPACES[int(rng.integers(len(NAMESPACES)))]
            edges.append(
                (
                    "wep",
                    other,
                    APPS[int(rng.integers(12))],
                    "wep",
                    ns,
                    APPS[int(rng.integers(12))],
                    "tcp",
                    8080,
                )
            )
        for i in range(5):
            edges.append(
                ("wep", ns, APPS[i], "net", "-", f"52.1.{i}.{int(rng.integers(1, 250))}", "tcp", 443)
            )
        edges.append(("wep", ns, APPS[5], "net", "-", None, "tcp", 443))
        edges.append(("net", "-", None, "wep", ns, APPS[0], "tcp", 8080))
    return edges


def _labels_array(values: list[dict[str, str] | None]) -> pa.Array:
    return pa.array([None if v is None else list(v.items()) for v in values], type=LABELS)


def build(root: Path, records: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    edges = _edges(rng)
    n_edges = len(edges)

    def side(
        t: str, ns: str, name: str | None, dns: bool
    ) -> tuple[str, str, str | None, dict[str, str] | None]:
        if t == "net":
            ip = name
            return ("net", "-", ip, {}) if ip else ("net", "-", None, {})
        labels = {"app": name or "x", "pod-template-hash": "7d4f8c9b5"}
        if dns:
            labels = {"k8s-app": "kube-dns", "pod-template-hash": "7d4f8c9b5"}
        return ("wep", ns, None, labels)

    src = [side(e[0], e[1], e[2], False) for e in edges]
    dst = [side(e[3], e[4], e[5], e[5] == "kube-dns") for e in edges]
    src_aggr = [f"{e[2]}-7d4f8c9b5-*" if e[0] == "wep" else "pub" for e in edges]
    dst_aggr = [
        (
            f"{e[5]}-7d4f8c9b5-*"
            if e[3] == "wep"
            else ("pub" if e[5] is None or not e[5].startswith("10.") else "pvt")
        )
        for e in edges
    ]
    trace = pa.array(
        [
            [parse_hit(f"0|__PROFILE__|pro:kns.{e[1] if e[0] == 'wep' else e[4]}|allow|0").as_row()]
            for e in edges
        ],
        type=POLICY_LIST,
    )
    base = {
        "source_type": pa.array([s[0] for s in src]),
        "source_namespace": pa.array([s[1] for s in src]),
        "source_name_aggr": pa.array(src_aggr),
        "source_ip": pa.array([s[2] for s in src], type=pa.string()),
        "source_labels": _labels_array([s[3] for s in src]),
        "dest_type": pa.array([d[0] for d in dst]),
        "dest_namespace": pa.array([d[1] for d in dst]),
        "dest_name_aggr": pa.array(dst_aggr),
        "dest_ip": pa.array([d[2] for d in dst], type=pa.string()),
        "dest_labels": _labels_array([d[3] for d in dst]),
        "proto": pa.array([e[6] for e in edges]),
        "dest_port": pa.array([e[7] for e in edges], type=pa.int32()),
        "enforced_policies": trace,
        "pending_policies": trace,
    }
    done = 0
    part = 0
    while done < records:
        n = min(CHUNK, records - done)
        idx = pa.array(rng.integers(0, n_edges, n))
        reporter = np.where(rng.random(n) < 0.5, "src", "dst")
        # Records of external peers come from the pod side only.
        cols = {name: arr.take(idx) for name, arr in base.items()}
        src_is_net = pa.compute.equal(cols["source_type"], "net").to_numpy(zero_copy_only=False)
        dst_is_net = pa.compute.equal(cols["dest_type"], "net").to_numpy(zero_copy_only=False)
        reporter = np.where(dst_is_net, "src", np.where(src_is_net, "dst", reporter))
        day = rng.integers(0, 7, n)
        secs = rng.integers(0, 86400 - 300, n)
        start = (
            np.datetime64(DAY0.replace(tzinfo=None), "us") + (day * 86400 + secs).astype("timedelta64[s]")
        ).astype("datetime64[us]")
        cols["reporter"] = pa.array(reporter)
        cols["action"] = pa.array(np.full(n, "allow"))
        cols["start_time"] = pa.array(start, type=pa.timestamp("us", tz="UTC"))
        cols["end_time"] = pa.array(start + np.timedelta64(300, "s"), type=pa.timestamp("us", tz="UTC"))
        cols["num_flows"] = pa.array(rng.integers(1, 5, n))
        cols["num_flows_started"] = pa.array(rng.integers(0, 5, n))
        cols["bytes_in"] = pa.array(rng.integers(100, 100_000, n))
        cols["bytes_out"] = pa.array(rng.integers(100, 100_000, n))
        cols["source_name"] = pa.array(np.full(n, "-"))
        cols["dest_name"] = pa.array(np.full(n, "-"))
        table = pa.table(
            {f.name: cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in ARROW_SCHEMA},
            schema=ARROW_SCHEMA,
        )
        days = np.asarray(day)
        for d in range(7):
            mask = pa.array(days == d)
            folder = root / "flows" / f"date={(DAY0 + dt.timedelta(days=d)).date().isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.filter(mask), folder / f"bench-{part}.parquet")
        done += n
        part += 1
    (root / "flows" / ".complete").write_text(str(records))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/flowlens-bench-suggest"))
    parser.add_argument("--namespace", default="ns00")
    parser.add_argument("--flavor", default="kubernetes", choices=["kubernetes", "calico"])
    args = parser.parse_args()

    root = args.dir / f"store-{args.records}"
    marker = root / "flows" / ".complete"
    if not marker.exists():
        t = time.perf_counter()
        build(root, args.records)
        print(f"built {args.records:,} records in {time.perf_counter() - t:.1f} s ({root})")
    else:
        print(f"using cached store {root}")

    last_day = DAY0 + dt.timedelta(days=6)
    for label, since in (("whole store (7 days)", None), ("last day of the store", last_day)):
        _run(root, args, label, since)


def _run(root: Path, args: argparse.Namespace, label: str, since: dt.datetime | None) -> None:
    with connect(root, since=since) as engine:
        t0 = time.perf_counter()
        scanned = engine.sql("SELECT count(*) AS n, sum(bytes_in) AS b FROM flows").column("n")[0].as_py()
        t_scan = time.perf_counter() - t0

    t0 = time.perf_counter()
    options = SuggestOptions(namespaces=(args.namespace,), flavor=args.flavor)
    with connect(root, since=since) as engine:
        reports = load_reports(engine, [args.namespace])
        t_load = time.perf_counter() - t0
        ta = time.perf_counter()
        activity = load_activity(engine, reports, [args.namespace], options.label_keys)
        t_activity = time.perf_counter() - ta
    t1 = time.perf_counter()
    suggestion = suggest(reports, options, activity=activity)
    text = suggestion.stream()
    t_synth = time.perf_counter() - t1
    t2 = time.perf_counter()
    result = prove(reports, options, suggestion=suggestion)
    t_proof = time.perf_counter() - t2
    total = time.perf_counter() - t0

    print(f"--- {label}: {scanned:,} records in the window ({args.records:,} in the store)")
    print(f"report groups loaded:    {len(reports):,}")
    print(f"baseline scan:           {t_scan:.2f} s (count + sum over every record of the window)")
    print(f"load (suggest-edges):    {t_load:.2f} s")
    print(f"activity (intervals):    {t_activity:.2f} s ({t_activity / t_load:.2f}x the load)")
    print(
        f"synthesis + rendering:   {t_synth:.2f} s ({len(text):,} bytes of YAML, {len(suggestion.rendered.rules)} rules)"
    )
    print(
        f"proof + closure:         {t_proof:.2f} s ({result.replayed} keys, {result.pairs_checked} pairs, "
        f"broken {len(result.broken)})"
    )
    held = suggestion.plan.screening.held_back if suggestion.plan.screening else ()
    print(f"held back:               {len(held)} groups")
    print(f"suggest total:           {total:.2f} s  (target < 5 s)")
    print(f"ratio total / baseline:  {total / t_scan:.1f}x")
    print(f"load average:            {' '.join(f'{x:.1f}' for x in os.getloadavg())} (machine shared)")


if __name__ == "__main__":
    main()
