"""Benchmark: replay N records (default 10 M) against 200 policies with ``flowlens.policy.simulate``.

Builds a synthetic store with pyarrow (many records, a few thousand distinct flow keys, labels and
enforced traces like real data), then times ``simulate``. The baseline, measured in the same run,
is per-record evaluation without memoization on a sample; the ratio says how much the
distinct-key design buys. Target: 10 M records under 30 s on 2 cores.

    .venv/bin/python bench/bench_simulate.py --records 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.engine import connect
from flowlens.formats.hits import parse_hit
from flowlens.policy import Evaluator, policies_from_objects
from flowlens.policy.simulate import _flow_key, simulate
from flowlens.schema import ARROW_SCHEMA
from flowlens.store import Store

NAMESPACES = [f"ns{i:02d}" for i in range(20)]
APPS = [f"app{i:02d}" for i in range(10)]


def make_policies(count: int) -> list[dict[str, Any]]:
    rnd = random.Random(7)
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Tier",
            "metadata": {"name": "security"},
            "spec": {"order": 100},
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "security.quarantine"},
            "spec": {
                "tier": "security",
                "order": 1,
                "selector": "quarantine == 'true'",
                "ingress": [{"action": "Deny"}],
                "egress": [{"action": "Deny"}],
            },
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": "security.pass"},
            "spec": {
                "tier": "security",
                "order": 2,
                "selector": "all()",
                "ingress": [{"action": "Pass"}],
                "egress": [{"action": "Pass"}],
            },
        },
    ]
    while len(docs) < count:
        i = len(docs)
        ns = rnd.choice(NAMESPACES)
        app = rnd.choice(APPS)
        peer = rnd.choice(APPS)
        docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"p{i:03d}", "namespace": ns},
                "spec": {
                    "podSelector": {"matchLabels": {"app": app}},
                    "ingress": [
                        {
                            "from": [
                                {"podSelector": {"matchLabels": {"app": peer}}},
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": rnd.choice(NAMESPACES)}
                                    }
                                },
                            ],
                            "ports": [{"port": rnd.choice([80, 443, 5432, 8080])}],
                        }
                    ],
                },
            }
        )
    return docs


def make_keys(count: int) -> pa.Table:
    rnd = random.Random(11)
    rows = []
    t0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    hit = parse_hit("0|__PROFILE__|pro:kns.ns00|allow|0").as_row()
    for i in range(count):
        sns, dns = rnd.choice(NAMESPACES), rnd.choice(NAMESPACES)
        sapp, dapp = rnd.choice(APPS), rnd.choice(APPS)
        external = i % 10 == 0
        rows.append(
            {
                "cluster": "bench",
                "start_time": t0,
                "end_time": t0 + dt.timedelta(minutes=5),
                "source_name": "-",
                "source_name_aggr": f"{sapp}-{i % 7}-*",
                "source_namespace": sns,
                "source_type": "wep",
                "source_labels": [("app", sapp)],
                "dest_name": "-",
                "dest_name_aggr": "pub" if external else f"{dapp}-*",
                "dest_namespace": "-" if external else dns,
                "dest_type": "net" if external else "wep",
                "dest_ip": f"93.184.{i % 250}.{i % 200}" if external else None,
                "dest_labels": None if external else [("app", dapp)],
                "dest_port": rnd.choice([80, 443, 5432, 8080]),
                "proto": "tcp",
                "action": "allow",
                "reporter": "src" if external or i % 2 else "dst",
                "enforced_policies": [hit],
                "bytes_in": 100,
                "bytes_out": 50,
                "num_flows": 1,
                "format": "enterprise",
                "ingest_id": "bench",
                "source_file": "bench",
                "source_line": i,
            }
        )
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)


def write_store(root: Path, records: int, keys: pa.Table, files: int = 8) -> None:
    part = root / "flows" / "date=2026-11-25"
    part.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    per_file = -(-records // files)
    written = 0
    for n in range(files):
        size = min(per_file, records - written)
        if size <= 0:
            break
        idx = pa.array(rng.integers(0, keys.num_rows, size))
        pq.write_table(keys.take(idx), part / f"bench-{n}.parquet", row_group_size=256_000)
        written += size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=3000, help="distinct flow keys")
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--baseline-sample", type=int, default=20_000, help="records evaluated one by one")
    parser.add_argument(
        "--store-dir",
        type=Path,
        help="build the synthetic store here and reuse it on later runs with the same sizes",
    )
    args = parser.parse_args()

    policy_set = policies_from_objects(make_policies(args.policies))
    keys = make_keys(args.keys)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.store_dir or Path(tmp) / "store"
        marker = root / f"bench-{args.records}-{args.keys}"
        if not marker.exists():
            if root.exists() and any(root.iterdir()):
                raise SystemExit(f"{root} holds another benchmark store; remove it first")
            t = time.perf_counter()
            write_store(root, args.records, keys)
            marker.touch()
            print(
                f"built store: {args.records:,} records, {args.keys:,} distinct keys "
                f"in {time.perf_counter() - t:.1f} s"
            )

        t = time.perf_counter()
        cpu = time.process_time()
        with connect(Store(root), threads=2) as engine:
            result = simulate(engine, policy_set)
        elapsed = time.perf_counter() - t
        cpu = time.process_time() - cpu
        total = result.records()
        assert total == args.records, (total, args.records)

    # Baseline: evaluate every record on its own (the same compiled evaluator, memo caches
    # cleared before each record), as a per-record loop over the store would.
    sample = keys.to_pylist()
    evaluator = Evaluator(policy_set)
    t = time.perf_counter()
    n = 0
    while n < args.baseline_sample:
        row = sample[n % len(sample)]
        evaluator.forget()
        evaluator.evaluate(_flow_key(row))
        n += 1
    per_record = (time.perf_counter() - t) / n
    baseline = per_record * args.records

    changed = len(result.rows) - result.count("unchanged")
    print(
        f"simulate: {len(result.rows):,} keys ({changed:,} changed) from {total:,} records, {args.policies} policies"
    )
    print(
        f"time: {elapsed:.2f} s  ({total / elapsed:,.0f} records/s)  target < 30 s for 10 M: {'PASS' if elapsed < 30 or args.records < 10_000_000 else 'FAIL'}"
    )
    print(f"cpu: {cpu:.2f} s (both DuckDB threads and Python; independent of other load, unlike wall time)")
    print(
        f"baseline (per-record evaluation, extrapolated): {baseline:.1f} s  ({1 / per_record:,.0f} records/s)"
    )
    print(f"ratio baseline/simulate: {baseline / elapsed:.1f}x")


if __name__ == "__main__":
    main()
