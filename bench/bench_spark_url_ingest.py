"""Benchmark: Spark ingest into a store at a Hadoop URL against Spark ingest into a local folder,
in one process and one Spark session, alternately.

    python bench/bench_spark_url_ingest.py --records 500000 --files 4 --spark-master 'local[2]'

The input is the flows.log of ``bench_ingest.py`` cut into ``--files`` files (as in
``bench_spark_ingest.py``). Into a folder, the tasks stage their files in the store's staging
folder and the driver renames them in. Into ``viewfs://bench/store-url`` (Hadoop's ViewFileSystem,
a mount table pointing at a local folder: every write goes through Hadoop's ``FileSystem`` API),
each task hands its staged files' bytes back to the driver through Spark, the driver writes them
into its local staging folder, uploads them through Hadoop and commits
(:mod:`flowlens.ingest.spark_upload`, :mod:`flowlens.store.hadoop_commit`). The difference is the
cost of the bytes' trip through the driver.

Output: the best wall seconds of --repeat runs of each, the CPU seconds of that run (this
process, Spark's JVM and its Python workers), the URL / folder ratios, the bytes stored, and the
load average. Then the two legs of a byte's trip through the driver, apart, with ``--probe-mb``
of incompressible bytes in one file: a task handing it to the driver
(:func:`flowlens.ingest.spark_upload.shipped` then ``receive``), and the driver uploading it
through Hadoop (``copyFromLocalFile``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import make_log
from bench_spark import cpu_now
from bench_spark_ingest import split


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".crc"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "flowlens-bench-url")
    parser.add_argument("--probe-mb", type=int, default=256)
    parser.add_argument(
        "--driver-memory", default="2g", help="spark.driver.memory (local mode: every JVM thread's)"
    )
    parser.add_argument("--probe-only", action="store_true", help="only the two legs of the bytes' trip")
    args = parser.parse_args()

    from flowlens.engine.settings import SparkSettings
    from flowlens.engine.spark import spark_session
    from flowlens.ingest.spark import ingest_spark
    from flowlens.store import Store

    args.data.mkdir(parents=True, exist_ok=True)
    log = make_log(args.records, args.data)
    sources = [str(p) for p in split(log, args.files, args.data / f"split-{args.records}-{args.files}")]
    settings = SparkSettings(
        args.spark_master, (("spark.ui.enabled", "false"), ("spark.driver.memory", args.driver_memory))
    )
    spark = spark_session(settings)
    mounted = args.data / "mounted"
    mounted.mkdir(exist_ok=True)
    spark._jsc.hadoopConfiguration().set("fs.viewfs.mounttable.bench.link./m", mounted.as_uri())
    gateway = spark.sparkContext._gateway
    jvm = gateway.proc.pid if gateway is not None and gateway.proc is not None else None
    warm = args.data / "warm.log"
    with open(log, "rb") as fh, open(warm, "wb") as out:
        out.writelines(fh.readline() for _ in range(100))
    for target in (Store(args.data / "warm-store"), Store.at("viewfs://bench/m/warm-url")):
        ingest_spark(target, [str(warm)], settings=settings)  # the executors' Python and Hadoop warmed

    if args.probe_only:
        probe(spark, args.data, args.probe_mb, jvm)
        return
    best: dict[str, tuple[float, float]] = {}
    stored: dict[str, int] = {}
    for attempt in range(args.repeat):
        for kind in ("folder", "url"):
            folder = (args.data / "store-folder") if kind == "folder" else (mounted / "store-url")
            shutil.rmtree(folder, ignore_errors=True)
            store = Store(folder) if kind == "folder" else Store.at("viewfs://bench/m/store-url")
            c0, t0 = cpu_now(jvm), time.perf_counter()
            summary = ingest_spark(store, sources, settings=settings)
            wall, cpu = time.perf_counter() - t0, cpu_now(jvm) - c0
            assert summary.balanced and not summary.errors, summary.as_dict()
            stored[kind] = _bytes(folder)
            if wall < best.get(kind, (float("inf"), 0.0))[0]:
                best[kind] = (wall, cpu)
            print(
                f"run {attempt + 1}: {kind:6} {wall:7.1f} s wall {cpu:7.1f} s CPU "
                f"{summary.total('rows'):,} rows, {stored[kind] / 1e6:,.1f} MB stored",
                flush=True,
            )
    load = os.getloadavg()
    print(f"\nload: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    print(
        f"{args.records:,} records in {len(sources)} files ({log.stat().st_size / 1e6:,.0f} MB), {args.spark_master}"
    )
    print("| store | best wall s | CPU s of that run | MB stored |")
    print("| --- | --- | --- | --- |")
    for kind in ("folder", "url"):
        print(f"| {kind} | {best[kind][0]:.1f} | {best[kind][1]:.1f} | {stored[kind] / 1e6:,.1f} |")
    extra_wall = best["url"][0] - best["folder"][0]
    extra_cpu = best["url"][1] - best["folder"][1]
    print(
        f"URL / folder: wall {best['url'][0] / best['folder'][0]:.2f}x, CPU {best['url'][1] / best['folder'][1]:.2f}x; "
        f"extra {extra_wall:.1f} s wall, {extra_cpu:.1f} s CPU for {stored['url'] / 1e6:,.1f} MB "
        f"({stored['url'] / 1e6 / max(extra_cpu, 1e-9):,.0f} MB per extra CPU second)"
    )
    probe(spark, args.data, args.probe_mb, jvm)


def probe(spark: Any, data: Path, megabytes: int, jvm: int | None) -> None:
    """The bytes' two legs through the driver, timed apart (best of 3 each)."""
    from flowlens.ingest.spark_upload import SHIP_SCHEMA, receive, shipped
    from flowlens.store import Store
    from flowlens.store.hadoop import open_hadoop

    blob = data / "probe.bin"
    if not blob.is_file() or blob.stat().st_size != megabytes << 20:
        blob.write_bytes(os.urandom(megabytes << 20))

    def fake_task(store_root: str, stage: str) -> dict[str, Any]:
        folder = Path(stage) / "tasks" / "probe" / "0"
        folder.mkdir(parents=True)
        shutil.copyfile(blob, folder / "probe.parquet")
        return {"task": "probe", "folder": str(folder)}

    def ship(batches: Any) -> Any:
        for _ in batches:
            yield from shipped(fake_task, "")

    stage = data / "probe-stage"
    store = open_hadoop(Store.at("viewfs://bench/m/probe"), spark)
    store.files.mkdirs(store.root)
    legs = {}
    for name in ("executor -> driver", "driver -> store (Hadoop upload)"):
        best = (float("inf"), 0.0)
        for _ in range(3):
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir()
            if name.startswith("driver"):
                shutil.copyfile(blob, stage / "probe.parquet")
            c0, t0 = cpu_now(jvm), time.perf_counter()
            if name.startswith("executor"):
                frame = spark.range(0, 1, 1, numPartitions=1).mapInArrow(ship, SHIP_SCHEMA)
                receive(frame, stage, "tasks", -(-megabytes // 16))
            else:
                store.files.upload(stage / "probe.parquet", store.root / "probe.parquet")
            wall, cpu = time.perf_counter() - t0, cpu_now(jvm) - c0
            best = min(best, (wall, cpu))
        legs[name] = best
    print(f"\n{megabytes} MB of incompressible bytes in one file:")
    for name, (wall, cpu) in legs.items():
        print(f"  {name:32} {wall:6.2f} s wall {cpu:6.2f} s CPU  {megabytes / wall:7.0f} MB/s wall")
    shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    main()
