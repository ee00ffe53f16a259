"""Ingest speed on Spark against ingest on DuckDB, measured side by side in the same run.

    python bench/bench_spark_ingest.py                          # 1 M records in 8 files
    python bench/bench_spark_ingest.py --records 200000 --files 4 --spark-master 'local[2]'

The input is the flows.log of ``bench_ingest.py`` (Felix records of the sample cluster, cached
under ``--data``), cut at line ends into ``--files`` files, as the rotated logs of several nodes
are: Spark ingest reads one file per task, so one file would leave every core but one idle.
Both engines ingest the same files into a fresh store, alternately (DuckDB, Spark, DuckDB,
Spark, ...), and the best time of each is compared, so that a busy machine hurts both alike. The
Spark session is started (and warmed up with a small ingest) before the clock starts: its
start-up time is printed apart. Prints records per second per core for each engine (DuckDB's
cores: those it runs its threads on; Spark's: the session's default parallelism) and the ratio
Spark / DuckDB of the wall times; and ``uptime``'s load, which the figures depend on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import make_log


def split(log: Path, parts: int, out: Path) -> list[Path]:
    """``log`` cut at line ends into ``parts`` files of about the same size, under ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    size = log.stat().st_size
    paths = []
    with open(log, "rb") as fh:
        for i in range(parts):
            target = out / f"node-{i:02d}" / "flows.log"
            target.parent.mkdir()
            with open(target, "wb") as dst:
                left = size // parts if i < parts - 1 else size
                while left > 0:
                    chunk = fh.read(min(left, 16 * 1024 * 1024))
                    if not chunk:
                        break
                    dst.write(chunk)
                    left -= len(chunk)
                dst.write(fh.readline())  # to the end of the line
            paths.append(target)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "flowlens-bench")
    args = parser.parse_args()

    from flowlens.engine.settings import SparkSettings
    from flowlens.engine.spark import spark_session
    from flowlens.ingest import ingest
    from flowlens.ingest.spark import ingest_spark
    from flowlens.store import Store, duckdb_connection

    args.data.mkdir(parents=True, exist_ok=True)
    log = make_log(args.records, args.data)
    files = split(log, args.files, args.data / f"split-{args.records}-{args.files}")
    sources = [str(p) for p in files]
    settings = SparkSettings(args.spark_master)

    started = time.perf_counter()
    spark = spark_session(settings)
    session_seconds = time.perf_counter() - started
    warm = args.data / "warm-store"
    shutil.rmtree(warm, ignore_errors=True)
    warm_log = args.data / "warm.log"
    with open(log, "rb") as fh, open(warm_log, "wb") as out:
        out.writelines(fh.readline() for _ in range(100))
    ingest_spark(Store(warm), [str(warm_log)], settings=settings)  # the executors' Python started
    spark_cores = int(spark.sparkContext.defaultParallelism)
    con = duckdb_connection()
    duck_cores = int((con.execute("SELECT current_setting('threads')").fetchone() or (1,))[0])
    con.close()

    best: dict[str, float] = {}
    rows: dict[str, int] = {}
    for attempt in range(args.repeat):
        for engine in ("duckdb", "spark"):
            store = args.data / f"store-{engine}"
            shutil.rmtree(store, ignore_errors=True)
            start = time.perf_counter()
            if engine == "duckdb":
                summary = ingest(Store(store), sources)
            else:
                summary = ingest_spark(Store(store), sources, settings=settings)
            seconds = time.perf_counter() - start
            assert summary.balanced and not summary.errors, summary.as_dict()
            rows[engine] = summary.total("rows")
            best[engine] = min(best.get(engine, seconds), seconds)
            print(
                f"run {attempt + 1}: {engine:6} {seconds:8.1f} s  {summary.total('rows'):,} rows", flush=True
            )
    assert rows["duckdb"] == rows["spark"], rows
    n = rows["duckdb"]
    print()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    print(f"{n:,} records in {len(files)} files ({log.stat().st_size / 1e6:,.0f} MB)")
    print(f"Spark session start: {session_seconds:.1f} s (not counted)")
    print("| engine | cores | best s | records/s | records/s/core |")
    print("| --- | --- | --- | --- | --- |")
    for engine, cores in (("duckdb", duck_cores), (f"spark {args.spark_master}", spark_cores)):
        key = engine.split()[0]
        print(
            f"| {engine} | {cores} | {best[key]:.1f} | {n / best[key]:,.0f} | {n / best[key] / cores:,.0f} |"
        )
    print(f"Spark / DuckDB wall time: {best['spark'] / best['duckdb']:.2f}x")


if __name__ == "__main__":
    main()
