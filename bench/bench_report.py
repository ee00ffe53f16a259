"""Benchmark: ``flowlens report`` over a large synthetic store (default 10 M records).

The store is built once with pyarrow (cached in --dir, keyed by the record count) from a few
thousand distinct template rows: 60 namespaces, ~600 workloads, both reporters, explicit, profile,
pass-chain, unlogged and denied traces, internet, private networks and host endpoints, spread
over 7 days. Timed, in the same run:

* baseline: a bare DuckDB aggregate over the same Parquet files (count, sum of bytes by reporter
  and action), the least any report must do;
* compute: flowlens.report.coverage.compute over the window (every coverage-* query and
  unexpected-allowed), reading the hourly summaries that ``flowlens ingest`` writes (written
  here once, before the timings, and their cost printed);
* records: the same compute ignoring the summaries (what a store without them costs);
* report: the whole ``generate`` (compute + HTML with charts, Markdown, JSON, history, index).

Prints the times and the ratio to the baseline. Target: report < 15 s for 10 M records.

    .venv/bin/python bench/bench_report.py --records 10000000 --dir bench/.data
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flowlens.engine import connect
from flowlens.formats.hits import parse_hit
from flowlens.report import coverage, generate
from flowlens.report.metrics import Coverage
from flowlens.report.window import Window
from flowlens.schema import ARROW_SCHEMA
from flowlens.store import Store
from flowlens.store.summaries import summarise_store

DAYS = 7
START = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)


def _templates(rng: np.random.Generator) -> list[dict]:
    namespaces = [f"ns-{i:02d}" for i in range(60)]
    workloads = [(ns, f"app{j}-{i:02d}{j}f7c9-*") for i, ns in enumerate(namespaces) for j in range(10)]
    rows = []
    for _ in range(4000):
        s_ns, s_name = workloads[rng.integers(len(workloads))]
        d_ns, d_name = workloads[rng.integers(len(workloads))]
        kind = rng.choice(["wep", "wep", "wep", "wep", "pub", "pvt", "hep"])
        port = int(rng.choice([80, 443, 5432, 6379, 8080, 9090, 53]))
        for reporter in ("src", "dst"):
            ns = s_ns if reporter == "src" else d_ns
            trace_kind = rng.choice(["explicit", "explicit", "profile", "pass", "deny", "eot", "none"])
            action = "deny" if trace_kind in ("deny", "eot") else "allow"
            hits = {
                "explicit": [f"0|default|knp:{ns}/allow-{port}|allow|0"],
                "profile": [f"0|__PROFILE__|pro:kns.{ns}|allow|0"],
                "pass": ["0|platform|gnp:platform.pass-all|pass|-1", f"1|__PROFILE__|pro:kns.{ns}|allow|0"],
                "deny": ["0|security|gnp:security.block|deny|0"],
                "eot": [f"0|default|knp:{ns}/allow-{port}|deny|-1"],
                "none": None,
            }[trace_kind]
            row = {c: None for c in ARROW_SCHEMA.names}
            row.update(
                cluster="bench",
                reporter=reporter,
                action=action,
                proto="tcp" if port != 53 else "udp",
                dest_port=port,
                source_type="wep",
                source_namespace=s_ns,
                source_name_aggr=s_name,
                source_name="-",
                dest_type="wep",
                dest_namespace=d_ns,
                dest_name_aggr=d_name,
                dest_name="-",
                source_labels=[("app", s_name.split("-")[0])],
                dest_labels=[("app", d_name.split("-")[0])],
                enforced_policies=None if hits is None else [parse_hit(h).as_row() for h in hits],
                pending_policies=None if hits is None else [parse_hit(h).as_row() for h in hits],
                format="enterprise",
                ingest_id="bench",
                source_file="bench.log",
                host="node-1",
            )
            if kind in ("pub", "pvt"):
                if reporter == "src":
                    row.update(dest_type="net", dest_namespace="-", dest_name_aggr=kind, dest_labels=[])
                    row["dest_domains"] = [f"api{rng.integers(50)}.example.com"] if kind == "pub" else None
                else:
                    row.update(
                        source_type="net", source_namespace="-", source_name_aggr=kind, source_labels=[]
                    )
            elif kind == "hep" and reporter == "dst":
                row.update(
                    dest_type="hep",
                    dest_namespace="-",
                    dest_name_aggr=f"node-{rng.integers(8)}",
                    dest_labels=[],
                )
                row["enforced_policies"] = [parse_hit("0|host|gnp:host.allow-ssh|allow|0").as_row()]
            rows.append(row)
    return rows


def build_store(root: Path, records: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    base = pa.Table.from_pylist(_templates(rng), schema=ARROW_SCHEMA)
    per_day = records // DAYS
    for day in range(DAYS):
        n = per_day if day < DAYS - 1 else records - per_day * (DAYS - 1)
        part = root / "flows" / f"date={(START + dt.timedelta(days=day)).date().isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        done = 0
        chunk_no = 0
        while done < n:
            size = min(2_000_000, n - done)
            t = base.take(pa.array(rng.integers(0, base.num_rows, size)))
            seconds = rng.integers(0, 86400, size)
            start = np.datetime64(
                (START + dt.timedelta(days=day)).replace(tzinfo=None), "us"
            ) + seconds.astype("timedelta64[s]")
            flows = rng.integers(1, 5, size)
            cols = {
                "start_time": pa.array(start, pa.timestamp("us", tz="UTC")),
                "end_time": pa.array(start + np.timedelta64(300, "s"), pa.timestamp("us", tz="UTC")),
                "bytes_in": pa.array(rng.integers(0, 100_000, size)),
                "bytes_out": pa.array(rng.integers(0, 100_000, size)),
                "num_flows": pa.array(flows),
                "num_flows_started": pa.array(flows - rng.integers(0, 2, size).clip(0, flows - 1)),
                "num_flows_completed": pa.array(flows),
                "source_line": pa.array(np.arange(done, done + size)),
            }
            for name, values in cols.items():
                t = t.set_column(t.schema.get_field_index(name), name, values)
            pq.write_table(t, part / f"bench-{chunk_no}.parquet", row_group_size=256 * 1024)
            done += size
            chunk_no += 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path("bench/.data"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    root = args.dir / f"report-store-{args.records}"
    if not (root / "flows").is_dir():
        t0 = time.perf_counter()
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        build_store(tmp, args.records)
        tmp.rename(root)
        print(f"built {args.records:,} records in {time.perf_counter() - t0:.1f} s -> {root}")
    store = Store(root)
    t0 = time.perf_counter()
    if summarise_store(store):
        print(
            f"wrote the hourly summaries in {time.perf_counter() - t0:.1f} s (a backfill from the Parquet files; ingest summarises the rows in memory as it writes them)"
        )
    files = [str(f) for f in store.flow_files()]
    window = Window("range", START, START + dt.timedelta(days=DAYS), "bench-week")

    def baseline() -> None:
        con = duckdb.connect()
        con.execute(
            "SELECT reporter, action, count(*), sum(bytes_in + bytes_out) FROM read_parquet($f) GROUP BY ALL",
            {"f": files},
        ).fetchall()
        con.close()

    def compute() -> Coverage:
        with connect(store, since=window.start, until=window.end) as engine:
            return coverage.compute(engine)

    def compute_from_records() -> Coverage:
        with connect(store, since=window.start, until=window.end, summaries=False) as engine:
            return coverage.compute(engine)

    def report() -> None:
        with tempfile.TemporaryDirectory() as reports:
            generate(store, window, Path(reports))

    # Wall time depends on what else runs on the machine; CPU time (all threads of this process)
    # much less, so both are printed. CPU / cores is about the wall time on an idle machine.
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    jobs = (
        ("baseline", baseline),
        ("compute", compute),
        ("records", compute_from_records),
        ("report", report),
    )
    for name, fn in jobs:
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            best_wall = min(best_wall, time.perf_counter() - w0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        wall[name], cpu[name] = best_wall, best_cpu
    cov = compute()
    cores = os.cpu_count() or 1
    print(
        f"records: {cov.records:,} in {len(files)} files; workloads {len(cov.workloads)}; score {cov.score.value}"
    )
    print(f"machine: {cores} cores, load average {os.getloadavg()[0]:.1f} at the end")
    labels = {
        "baseline": "baseline (bare DuckDB aggregate)",
        "compute": "coverage compute",
        "records": "coverage compute, records only",
        "report": "full report (html, md, json)",
    }
    for name, label in labels.items():
        ratio = "" if name == "baseline" else f"  {wall[name] / wall['baseline']:.1f}x baseline (wall)"
        print(
            f"{label:33s} wall {wall[name]:6.2f} s  cpu {cpu[name]:6.2f} s  cpu/cores {cpu[name] / cores:6.2f} s{ratio}"
        )
    target = 15.0 * args.records / 10_000_000
    print(
        f"target < {target:.1f} s ({args.records:,} records; 15 s per 10 M): "
        f"wall {'OK' if wall['report'] < target else 'SLOW'}, "
        f"cpu/cores {'OK' if cpu['report'] / cores < target else 'SLOW'}"
    )


if __name__ == "__main__":
    main()
