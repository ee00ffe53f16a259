"""Ingest memory when one input touches a year of day partitions, against DuckDB in the same run.

    python bench/bench_partitions.py                            # 1 M records over 365 days
    python bench/bench_partitions.py --records 10000000         # 10 M (about 15 GB of input)
    python bench/bench_partitions.py --records 200000 --orders shuffled --repeat 1

The input is the Felix records of flowlens' sample (``bench_ingest``'s cached log) repeated to
``--records`` lines, each given a new start time so that the lines cover ``--days`` days: in
time order (``ordered``: each day is written once, then never again) or in a random order
(``shuffled``: every batch touches every day). One input is written at a time, and removed
after its jobs, so the disk holds one copy.

Per input, each job runs in a fresh process that reports its wall time, CPU time and peak RSS
(``getrusage``): the baseline is DuckDB ``read_json`` of the same file into Parquet partitioned
by day (``COPY ... (PARTITION_BY day)``, no validation, no summaries); ``flowlens`` is ingest
with the writer's budgets (:data:`flowlens.ingest.writer.WRITER_BUDGET`); ``unbounded`` (with
``--unbounded``) is ingest with budgets too large to ever close a file early, which shows what
the budgets save. Target: flowlens peak RSS <= 1.5 GB whatever the number of partitions.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest  # (the sample's cached Felix log)

ROOT = Path(__file__).resolve().parents[1]
START = 1_767_225_600  # 2026-01-01T00:00:00Z
INTERVAL = 300
TIMES = re.compile(rb'^\{"start_time":\d+,"end_time":\d+,')


def make_spread(records: int, days: int, order: str, data_dir: Path) -> Path:
    """``records`` Felix lines whose start times cover ``days`` days, in ``order``."""
    base = bench_ingest.make_log(min(records, 100_000), data_dir)
    lines = base.read_bytes().splitlines()
    span = days * 86_400 - INTERVAL
    starts = START + (np.arange(records, dtype=np.int64) * span) // max(records, 1)
    if order == "shuffled":
        starts = np.random.default_rng(7).permutation(starts)
    target = data_dir / f"spread-{records}-{days}-{order}.log"
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb", buffering=16 * 1024 * 1024) as out:
        for i, start in enumerate(starts.tolist()):
            line = lines[i % len(lines)]
            head = b'{"start_time":%d,"end_time":%d,' % (start, start + INTERVAL)
            out.write(TIMES.sub(head, line, count=1))
            out.write(b"\n")
    tmp.replace(target)
    return target


def job(kind: str, log: Path, work: Path) -> None:
    """Run one measured job in this process and print its time and peak memory as JSON."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    import duckdb
    import pandas  # noqa: F401  (pyarrow loads it on its first conversion of Python objects)

    import flowlens.ingest
    import flowlens.ingest.writer as writer

    if kind == "unbounded":
        writer.WRITER_BUDGET = writer.WriterBudget(open_files=1_000_000, buffered_bytes=1 << 50)
    begin = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if kind == "duckdb":
        con = duckdb.connect()
        con.execute(
            "COPY (SELECT *, CAST(to_timestamp(start_time) AS DATE) AS day "
            "FROM read_json($path, format='newline_delimited')) "
            "TO $out (FORMAT parquet, PARTITION_BY (day))",
            {"path": str(log), "out": str(work / "out")},
        )
        files = len(list((work / "out").rglob("*.parquet")))
        counted = con.execute(
            "SELECT count(*) FROM read_parquet($p)", {"p": str(work / "out" / "*" / "*.parquet")}
        )
        rows = (counted.fetchone() or (0,))[0]
    else:
        from flowlens.store import Store

        summary = flowlens.ingest.ingest(Store(work / "store"), [str(log)])
        rows = summary.total("rows")
        assert summary.balanced and summary.total("quarantined") == 0
        files = len(list((work / "store" / "flows").rglob("*.parquet")))
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - begin.ru_utime - begin.ru_stime
    print(
        json.dumps(
            {"seconds": seconds, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024, "rows": rows, "files": files}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--orders", default="ordered,shuffled", help="comma-separated: ordered, shuffled")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--unbounded", action="store_true", help="also ingest with budgets that never bind")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--job", choices=["duckdb", "flowlens", "unbounded"], help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        job(args.job, args.log, args.work)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    kinds = ["duckdb", "flowlens", *(["unbounded"] if args.unbounded else [])]
    for order in args.orders.split(","):
        log = make_spread(args.records, args.days, order, args.dir)
        size_mb = log.stat().st_size / 1e6
        print(
            f"input: {args.records:,} records over {args.days} days, {order} ({size_mb:,.0f} MB)", flush=True
        )
        best: dict[str, dict[str, float]] = {}
        for i in range(args.repeat):
            for kind in kinds:
                result = bench_ingest.measure(kind, log, args.dir / f"work-partitions-{kind}", __file__)
                print(
                    f"  run {i + 1}: {kind:9s} {result['seconds']:7.1f} s wall {result['cpu']:7.1f} s CPU  "
                    f"peak {result['peak_mb']:6.0f} MB  rows {result['rows']:,}  files {result['files']:,}",
                    flush=True,
                )
                if kind not in best or result["peak_mb"] < best[kind]["peak_mb"]:
                    best[kind] = result
        base, ours = best["duckdb"], best["flowlens"]
        print(
            f"{order}: flowlens peak {ours['peak_mb']:.0f} MB (target <= 1500), duckdb {base['peak_mb']:.0f} MB "
            f"(ratio {ours['peak_mb'] / base['peak_mb']:.2f}); time ratio {ours['seconds'] / base['seconds']:.2f} "
            f"wall, {ours['cpu'] / base['cpu']:.2f} CPU"
            + (f"; unbounded peak {best['unbounded']['peak_mb']:.0f} MB" if "unbounded" in best else ""),
            flush=True,
        )
        log.unlink()
        for kind in kinds:
            shutil.rmtree(args.dir / f"work-partitions-{kind}", ignore_errors=True)


if __name__ == "__main__":
    main()
