"""Benchmark: what reading a store at a Hadoop URL costs the Spark driver, against the same store
read at its local path, in one process and one Spark session.

The store (default: a 365-day store under /work/cache/year, read only) is reached twice: at its
folder, and as ``viewfs://bench/store``, Hadoop's ViewFileSystem with a mount table pointing at
the folder, so that every file operation of the driver goes through Hadoop's ``FileSystem`` API
in Spark's JVM (py4j round trips). Each run does what opening an engine does on the driver before
Spark scans anything: read the manifest and the journal, check each file of the window is there
with its listed size (:func:`flowlens.engine.window.select_files`), and plan the ``flow_summary``
view from the committed summaries (:func:`flowlens.engine.window.plan_summary`). With ``--query``
it also runs that named query on Spark over both (the Parquet scans read through Hadoop too).

Output: the best wall seconds of --repeat runs, the CPU seconds of that run (this process plus
Spark's JVM and its Python workers), and the URL/local ratio. Nothing is written into the store.

Usage:  .venv/bin/python bench/bench_spark_url.py --store /work/cache/year/fed-10000000-365
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from bench_spark import best_of

from flowlens.engine import EngineChoice, SparkSettings, open_engine
from flowlens.engine.spark import spark_session
from flowlens.engine.window import plan_summary, select_files
from flowlens.store import Store
from flowlens.store.hadoop import open_hadoop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", type=Path, default=Path("/work/cache/year/fed-10000000-365"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--query", help="also run this named query on Spark over both (e.g. coverage-facts)")
    args = parser.parse_args()
    root = args.store.resolve()
    settings = SparkSettings(f"local[{args.cores}]", (("spark.sql.shuffle.partitions", str(args.cores)),))
    t0 = time.perf_counter()
    spark = spark_session(settings)
    print(f"Spark session started in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()}")
    spark._jsc.hadoopConfiguration().set("fs.viewfs.mounttable.bench.link./store", root.as_uri())
    gateway = spark.sparkContext._gateway
    jvm = gateway.proc.pid if gateway is not None and gateway.proc is not None else None
    stores = {"local": Store(root), "url": open_hadoop(Store.at("viewfs://bench/store"), spark)}
    results: dict[str, dict[str, tuple[float, float]]] = {}

    def driver(store: Store) -> Callable[[], int]:
        def run() -> int:
            files = select_files(store, None, None)
            plan = plan_summary(store, files, None, None)
            return len(files) + len(plan.summarised)

        return run

    for name, store in stores.items():
        count = driver(store)()
        results.setdefault("driver: manifest, file checks, summary plan", {})[name] = best_of(
            args.repeat, driver(store), jvm
        )
        print(f"{name}: {count} files and summaries in the window")
    if args.query:
        choice = EngineChoice("spark", settings)

        def query(store: Store) -> Callable[[], int]:
            def run() -> int:
                with open_engine(store, choice) as engine:
                    return engine.run(args.query).num_rows

            return run

        for name, store in stores.items():
            results.setdefault(f"query {args.query} (driver and scan)", {})[name] = best_of(
                args.repeat, query(store), jvm
            )
    print(f"load average after: {os.getloadavg()}")
    print(f"{'stage':48} {'local wall':>10} {'url wall':>10} {'local CPU':>10} {'url CPU':>10} {'ratio':>6}")
    for stage, by in results.items():
        (lw, lc), (uw, uc) = by["local"], by["url"]
        print(f"{stage:48} {lw:9.2f}s {uw:9.2f}s {lc:9.2f}s {uc:9.2f}s {uw / lw:5.2f}x")


if __name__ == "__main__":
    main()
