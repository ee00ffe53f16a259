"""Benchmark: replay N records (default 10 M) against 200 policies with ``flowlens.policy.simulate``.

Builds a synthetic store with pyarrow (many records, a few thousand distinct flow keys, labels and
enforced traces like real data), then times ``simulate``. The baseline, measured in the same run,
is per-record evaluation without memoization on a sample; the ratio says how much the
distinct-key design buys. Target: 10 M records under 30 s on 2 cores.

    .venv/bin/python bench/bench_simulate.py --records 1000000

With ``--output-rows N`` it measures the output instead: a synthetic replay of N flow keys is
written by ``simulate``'s writers to a file in every format, each in a process of its own, streamed
(:func:`flowlens.policy.render.write_simulation`, as the CLI writes it) and, as the baseline in the
same run, as one whole string (rendered, made safe, then written, as the CLI wrote it before).
Peak RSS of each process and wall time are printed, with the peak of a process that only builds
the replay (what any output needs):

    .venv/bin/python bench/bench_simulate.py --output-rows 500000

With ``--engine spark`` it replays the store on the Spark engine (local[--cores]) twice, with the
keys evaluated on the driver and on the executors (``driver_keys`` forced either way), and, as
the baseline in the same run, on DuckDB; the three results must be identical. Wall seconds, CPU
seconds (this process, Spark's JVM and its Python workers) and the driver's peak resident memory
during each run are printed, with the load average:

    .venv/bin/python bench/bench_simulate.py --engine spark --records 1000000 --keys 300000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.engine import SparkSettings, connect
from flowlens.formats.hits import parse_hit
from flowlens.output import safe_text
from flowlens.policy import Evaluator, PolicySet, policies_from_objects
from flowlens.policy.render import SIMULATION_FORMATS, render_simulation, write_simulation
from flowlens.policy.simulate import SimulationResult, SimulationRow, _flow_key, _sort_key, simulate
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


def make_result(rows: int) -> SimulationResult:
    """A replay of ``rows`` flow keys, sorted as simulate sorts them, with traces and a few notes."""
    rnd = random.Random(5)
    deny = ("0|default|knp:ns00/p001|deny|-1",)
    allow = ("0|security|gnp:security.pass|pass|0", "1|__PROFILE__|pro:kns.ns00|allow|0")
    out = []
    for i in range(rows):
        change = ("newly-denied", "newly-allowed", "unchanged")[i % 3]
        trace = deny if change == "newly-denied" else allow
        out.append(
            SimulationRow(
                reporter="dst" if i % 2 else "src",
                source_type="wep",
                source_namespace=rnd.choice(NAMESPACES),
                source_name="-",
                source_name_aggr=f"{rnd.choice(APPS)}-{i // 4 % 1000}-*",
                source_ip=None,
                dest_type="wep",
                dest_namespace=rnd.choice(NAMESPACES),
                dest_name="-",
                dest_name_aggr=f"{rnd.choice(APPS)}-*",
                dest_ip=None,
                proto="tcp",
                dest_port=rnd.choice([80, 443, 5432, 8080]),
                recorded_action="allow",
                simulated_action="deny" if change == "newly-denied" else "allow",
                change=change,
                simulated_trace=trace,
                pending_action="deny" if change == "newly-denied" else "allow",
                pending_trace=trace,
                records=rnd.randint(1, 10_000),
                records_allowed=0,
                records_denied=0,
                num_flows=rnd.randint(1, 100),
                bytes=rnd.randint(1, 10**9),
                notes=("the labels of namespace ns00 are not known (give --inventory)",)
                if i % 50 == 0
                else (),
            )
        )
    out.sort(key=_sort_key)  # as simulate returns them
    return SimulationResult(rows=tuple(out), notes=("a note",))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status (Linux only)")


def output_child(rows: int, how: str, fmt: str, path: Path) -> None:
    """One measured write, in this process: ``how`` is ``stream`` or ``whole``. Prints the time,
    the resident memory with the replay built, and the peak while writing (the peak is reset
    first through /proc/self/clear_refs, so that building the replay does not count)."""
    result = make_result(rows)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    t = time.perf_counter()
    with open(path, "wb") as sink:
        if how == "stream":
            write_simulation(result, fmt, lambda piece: sink.write(safe_text(piece, fmt).encode()))
        else:
            sink.write(safe_text(render_simulation(result, fmt), fmt).encode())
    print(f"{time.perf_counter() - t:.3f} {before / 1024:.1f} {_status_kib('VmHWM') / 1024:.1f}")


def measure_output(rows: int) -> None:
    """Each format written streamed and whole, each in its own process; peak memory and time."""

    def run(how: str, fmt: str, path: Path) -> tuple[float, float, float]:
        command = [sys.executable, __file__, "--output-rows", str(rows), "--child", how, fmt, str(path)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        elapsed, before, peak = (float(v) for v in done.stdout.split())
        return elapsed, before, peak

    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"output of {rows:,} flow keys, each format in processes of its own (MiB: resident with the replay built -> peak while writing)"
        )
        for fmt in SIMULATION_FORMATS:
            whole, stream = Path(tmp) / f"whole.{fmt}", Path(tmp) / f"stream.{fmt}"
            t_whole, b_whole, p_whole = run("whole", fmt, whole)
            t_stream, b_stream, p_stream = run("stream", fmt, stream)
            print(
                f"{fmt:>8}: {stream.stat().st_size / 2**20:5,.0f} MiB out, identical: {whole.read_bytes() == stream.read_bytes()}; "
                f"whole string {t_whole:6.2f} s, {b_whole:,.0f} -> {p_whole:,.0f} (+{p_whole - b_whole:,.0f}); "
                f"streamed {t_stream:6.2f} s, {b_stream:,.0f} -> {p_stream:,.0f} (+{p_stream - b_stream:,.0f}); "
                f"time whole/streamed {t_whole / t_stream:.2f}x"
            )


def measure_spark(root: Path, policy_set: PolicySet, cores: int, records: int, only: str | None) -> None:
    """simulate on DuckDB (the baseline), on Spark's driver and on Spark's executors (``only``:
    just the run whose label starts with it, so that its peak memory is its own: memory a
    process freed stays in its heap, and a later run in the same process reuses it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.bench_spark import cpu_now
    from flowlens.engine.spark import connect_spark, spark_session

    settings = SparkSettings(f"local[{cores}]", (("spark.sql.shuffle.partitions", str(4 * cores)),))
    t = time.perf_counter()
    session = spark_session(settings)
    gateway = session.sparkContext._gateway
    jvm = gateway.proc.pid if gateway is not None and gateway.proc is not None else None
    print(f"Spark session started in {time.perf_counter() - t:.1f} s (not counted below)", flush=True)

    def duckdb_run() -> SimulationResult:
        with connect(Store(root), threads=cores) as engine:
            return simulate(engine, policy_set)

    def spark_run(driver_keys: int) -> SimulationResult:
        with connect_spark(Store(root), settings=settings) as engine:
            return simulate(engine, policy_set, driver_keys=driver_keys)

    runs: list[tuple[str, Callable[[], SimulationResult]]] = [
        ("duckdb (baseline)", duckdb_run),
        ("spark, keys on the driver", lambda: spark_run(2**62)),
        ("spark, keys on the executors", lambda: spark_run(0)),
    ]
    runs = [(label, run) for label, run in runs if only is None or label.startswith(only)]
    print(f"{records:,} records, {cores} cores, load {_load()}")
    first: SimulationResult | None = None
    base = 0.0
    for label, run in runs:
        Path("/proc/self/clear_refs").write_text("5")
        rss = _status_kib("VmRSS")
        c0, t0 = cpu_now(jvm), time.perf_counter()
        result = run()
        wall, cpu = time.perf_counter() - t0, cpu_now(jvm) - c0
        peak = _status_kib("VmHWM")
        assert result.records() == records, (result.records(), records)
        if first is None:
            first, base = result, wall
        elif result.rows != first.rows:
            raise SystemExit(f"{label}: not the same rows as on DuckDB")
        digest = hashlib.sha256(repr(result.rows).encode()).hexdigest()[:16]
        print(
            f"{label:30} {len(result.rows):,} keys ({result.executor_keys:,} on executors): "
            f"wall {wall:7.2f} s ({wall / base:4.1f}x duckdb), cpu {cpu:7.2f} s, "
            f"driver peak RSS +{(peak - rss) / 1024:,.0f} MiB, rows sha256 {digest}",
            flush=True,
        )
    print(f"load {_load()}")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


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
    parser.add_argument(
        "--output-rows", type=int, help="measure writing a replay of this many flow keys instead"
    )
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--cores", type=int, default=2, help="DuckDB threads; Spark's local[N]")
    parser.add_argument(
        "--only",
        choices=["duckdb", "spark, keys on the driver", "spark, keys on the executors"],
        help="with --engine spark: only this run (one process per run gives each its own peak memory)",
    )
    parser.add_argument("--child", nargs=3, metavar=("HOW", "FORMAT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        output_child(args.output_rows, args.child[0], args.child[1], Path(args.child[2]))
        return
    if args.output_rows:
        measure_output(args.output_rows)
        return

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

        if args.engine == "spark":
            measure_spark(root, policy_set, args.cores, args.records, args.only)
            return
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
