"""Sample generator speed and memory: records per second, and peak RSS for 100 k vs 1 M records.

Usage: .venv/bin/python bench/bench_sample.py [--sizes 100000,1000000] [--format enterprise]
[--repeat 3]

Each size runs in its own process (so its peak RSS is its own) and writes the format with
``write_sample`` into a temporary folder, twice:

* ``generate``: one flows.log per node, no rotation: the generator itself (simulation, policy
  decisions, rendering, writing);
* ``rotate``: Felix defaults, flows.log rotated at 100 MB into gzip files (compressed on a second
  thread; zlib costs about as much CPU as generating).

Printed per run (the fastest of ``--repeat`` runs): wall and CPU seconds, records per second (wall
and CPU; CPU is what the process did, which is fair on a busy machine) and peak RSS, with the load
average before and after. Then:

* whether the target is met: at least 100,000 records per second (wall) for 1 M records written
  to a plain flows.log (``generate``);

* the RSS ratio between the largest and the smallest size (streaming: about 1);
* the marginal rate between the two sizes (the start-up cost cancels out);
* a baseline measured in the same run: the same records written the straightforward way, one
  ``json.dumps`` of a full dict per record, and the generator's speed-up over it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TARGET_RATE = 100_000  # records per second (wall), issue 3
TARGET_RECORDS = 1_000_000


def child(records: int, fmt: str, mode: str) -> None:
    from flowlens.sample import SampleOptions, load_model, write_sample

    model = load_model()
    gc.set_threshold(100_000, 50, 50)  # as `flowlens sample` does
    rotate = 100 * 2**20 if mode == "rotate" else 2**50
    with tempfile.TemporaryDirectory(prefix="flowlens-bench-") as tmp:
        opts = SampleOptions(start=START, days=None, records=records, formats=(fmt,), rotate_bytes=rotate)
        w0, c0 = time.perf_counter(), time.process_time()
        summary = write_sample(model, Path(tmp), opts)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"records": summary.records, "wall": wall, "cpu": cpu, "rss_kib": rss, "bytes": size}))


def baseline(records: int) -> float:
    """Records per CPU second, writing each record with json.dumps of a full dict."""
    from flowlens.formats.enterprise import GROUPS
    from flowlens.sample import SampleOptions, intervals, load_model
    from flowlens.sample.records import INTERVAL

    tcp_fields = GROUPS["tcp"]
    model = load_model()
    opts = SampleOptions(start=START, days=None, records=records)
    with tempfile.TemporaryFile("w") as out:
        c0 = time.process_time()
        for iv in intervals(model, opts):
            for rk, c in iv.records:
                s = iv.start + rk.offset
                doc = {
                    "start_time": s,
                    "end_time": s + INTERVAL,
                    "source_ip": rk.src.ip or None,
                    "source_name": rk.src.name,
                    "source_name_aggr": rk.src.name_aggr,
                    "source_namespace": rk.src.namespace,
                    "nat_outgoing_ports": None,
                    "source_port": None,
                    "source_type": rk.src.type,
                    "source_labels": {"labels": list(rk.src_labels)},
                    "dest_ip": rk.dst.ip or None,
                    "dest_name": rk.dst.name,
                    "dest_name_aggr": rk.dst.name_aggr,
                    "dest_namespace": rk.dst.namespace,
                    "dest_port": rk.dest_port,
                    "dest_type": rk.dst.type,
                    "dest_labels": {"labels": list(rk.dst_labels)},
                    "dest_service_namespace": rk.service[0] if rk.service else "-",
                    "dest_service_name": rk.service[1] if rk.service else "-",
                    "dest_service_port": rk.service[2] if rk.service else "-",
                    "dest_service_port_num": rk.service[3] if rk.service else None,
                    "dest_domains": list(rk.domains) or None,
                    "proto": rk.proto,
                    "action": rk.action,
                    "reporter": rk.reporter,
                    "policies": {
                        "enforced_policies": [h.hit for h in rk.verdict.enforced],
                        "pending_policies": [h.hit for h in rk.verdict.pending],
                        "transit_policies": None,
                    },
                    "bytes_in": c[0],
                    "bytes_out": c[1],
                    "num_flows": c[2],
                    "num_flows_started": c[3],
                    "num_flows_completed": c[4],
                    "packets_in": c[5],
                    "packets_out": c[6],
                    **dict.fromkeys(("transit_bytes_in", "transit_bytes_out", "transit_packets_in"), 0),
                    **dict.fromkeys(("transit_packets_out", "http_requests_allowed_in"), 0),
                    "http_requests_denied_in": 0,
                    "process_name": "-",
                    "num_process_names": 0,
                    "process_id": "-",
                    "num_process_ids": 0,
                    "process_args": ["-"],
                    "num_process_args": 0,
                    "original_source_ips": None,
                    "num_original_source_ips": 0,
                    **dict.fromkeys(tcp_fields, 0),
                }
                out.write(json.dumps(doc, separators=(",", ":")) + "\n")
        return records / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated record counts")
    ap.add_argument(
        "--format", default="enterprise", choices=("enterprise", "elasticsearch", "goldmane", "whisker")
    )
    ap.add_argument("--baseline-records", type=int, default=100_000)
    ap.add_argument("--modes", default="generate,rotate", help="generate and/or rotate")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size and mode; the fastest is shown")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="generate", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.format, args.mode)
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"flowlens sample, format {args.format}, fastest of {args.repeat} run(s)")
    print("load average before: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"{'mode':>9} {'records':>10} {'wall s':>8} {'cpu s':>8} {'rec/s wall':>11} {'rec/s cpu':>10} "
        f"{'peak RSS':>10} {'output':>10}"
    )
    results: dict[str, list[dict[str, float]]] = {}
    for mode in args.modes.split(","):
        for n in sizes:
            tries = []
            for _ in range(max(1, args.repeat)):
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", str(n), "--format", args.format, "--mode", mode],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                tries.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = min(tries, key=lambda t: t["wall"])
            results.setdefault(mode, []).append(r)
            print(
                f"{mode:>9} {r['records']:>10,} {r['wall']:>8.2f} {r['cpu']:>8.2f} {r['records'] / r['wall']:>11,.0f} "
                f"{r['records'] / r['cpu']:>10,.0f} {r['rss_kib'] / 1024:>7.0f} MB {r['bytes'] / 2**20:>7.0f} MB"
            )
        runs = results[mode]
        if len(runs) > 1:
            ratio = runs[-1]["rss_kib"] / runs[0]["rss_kib"]
            print(
                f"{mode:>9} peak RSS {runs[-1]['records']:,.0f} / {runs[0]['records']:,.0f} records: {ratio:.2f}x"
            )
            # the start-up (imports, policies, first evaluations) cancels out in the difference
            extra = runs[-1]["records"] - runs[0]["records"]
            marginal = extra / (runs[-1]["cpu"] - runs[0]["cpu"])
            print(
                f"{mode:>9} marginal rate {runs[0]['records']:,.0f} -> {runs[-1]['records']:,.0f}: {marginal:,.0f} rec/s cpu"
            )
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    target = [r for r in results.get("generate", []) if r["records"] >= TARGET_RECORDS]
    if args.format == "enterprise" and target:
        rate = target[0]["records"] / target[0]["wall"]
        verdict = "met" if rate >= TARGET_RATE else "NOT met"
        print(f"target >= {TARGET_RATE:,} rec/s wall at {TARGET_RECORDS:,} records: {rate:,.0f} ({verdict})")
    base = baseline(args.baseline_records)
    first = next(iter(results.values()))[0]
    ours = first["records"] / first["cpu"]
    print(f"baseline (json.dumps of a dict per record, same records): {base:,.0f} rec/s cpu")
    print(f"flowlens sample vs baseline: {ours / base:.1f}x")


if __name__ == "__main__":
    main()
