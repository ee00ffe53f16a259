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

    python bench/bench_spark_ingest.py --one-file --records 1000000 --spark-master 'local[2]'

``--one-file``: the whole log as ONE file, ingested on Spark with splitting on (the file read in
byte ranges of ``--split-bytes``, a task each) against splitting off (one task reads it all),
alternately, ``--repeat`` times each; prints the best wall time of each, the CPU seconds of that
run (this process, DuckDB's threads included, plus Spark's JVM and its Python workers, from
/proc) and the driver's time planning the ranges (its one pass over the file). ``--from FILE``
takes the first ``--records`` lines of an existing flows.log instead of generating them.
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
from bench_spark import cpu_now


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


def first_lines(source: Path, records: int, data: Path) -> Path:
    """The first ``records`` lines of ``source`` as a log under ``data`` (cached)."""
    target = data / f"head-{records}.log"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        with open(source, "rb") as fh, open(tmp, "wb") as out:
            for _ in range(records):
                line = fh.readline()
                if not line:
                    raise SystemExit(f"{source} has fewer than {records} lines")
                out.write(line)
        tmp.replace(target)
    return target


def one_file(args: argparse.Namespace, log: Path) -> None:
    """One large file on Spark, splitting on against off (see the module's docstring)."""
    from flowlens.engine.settings import SparkSettings
    from flowlens.engine.spark import spark_session
    from flowlens.ingest import IngestOptions, spark_split
    from flowlens.ingest.spark import ingest_spark
    from flowlens.store import Store

    settings = SparkSettings(args.spark_master)
    spark = spark_session(settings)
    gateway = spark.sparkContext._gateway
    jvm = gateway.proc.pid if gateway is not None and gateway.proc is not None else None  # type: ignore[attr-defined]
    warm_log = args.data / "warm.log"
    with open(log, "rb") as fh, open(warm_log, "wb") as out:
        out.writelines(fh.readline() for _ in range(100))
    warm = args.data / "warm-store"
    shutil.rmtree(warm, ignore_errors=True)
    ingest_spark(Store(warm), [str(warm_log)], settings=settings)  # the executors' Python started

    planning = [0.0]
    ranges: dict[str, int] = {}
    original = spark_split.plan_split

    def timed(*a: object, **k: object) -> object:
        t0 = time.perf_counter()
        try:
            plan = original(*a, **k)  # type: ignore[arg-type]
            ranges["split"] = len(plan.parts) if plan is not None else 1
            return plan
        finally:
            planning[0] += time.perf_counter() - t0

    spark_split.plan_split = timed  # type: ignore[assignment]
    modes = {"split": args.split_bytes, "whole": 0}
    best: dict[str, tuple[float, float, float]] = {}
    rows: dict[str, int] = {}
    for attempt in range(args.repeat):
        for mode, split in modes.items():
            store = args.data / f"store-{mode}"
            shutil.rmtree(store, ignore_errors=True)
            planning[0] = 0.0
            c0 = cpu_now(jvm)
            t0 = time.perf_counter()
            options = IngestOptions(threads=args.task_threads)
            summary = ingest_spark(Store(store), [str(log)], options, settings=settings, split_bytes=split)
            wall = time.perf_counter() - t0
            cpu = cpu_now(jvm) - c0
            assert summary.balanced and not summary.errors, summary.as_dict()
            rows[mode] = summary.total("rows")
            if mode not in best or wall < best[mode][0]:
                best[mode] = (wall, cpu, planning[0])
            print(
                f"run {attempt + 1}: {mode:5} {wall:7.1f} s wall {cpu:7.1f} s CPU  "
                f"(planning {planning[0]:.1f} s)  {summary.total('rows'):,} rows",
                flush=True,
            )
    spark_split.plan_split = original
    assert rows["split"] == rows["whole"], rows
    load = os.getloadavg()
    print()
    print(f"load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    size = log.stat().st_size
    print(
        f"{rows['split']:,} records in one file ({size / 1e6:,.0f} MB), Spark {args.spark_master}, "
        f"DuckDB threads per task: {args.task_threads or 'every core'}"
    )
    print("| splitting | ranges | best wall s | CPU s of that run | driver planning s |")
    print("| --- | --- | --- | --- | --- |")
    for mode, split in modes.items():
        wall, cpu, plan = best[mode]
        print(
            f"| {'on, ' + str(split >> 20) + ' MB' if split else 'off'} | {ranges.get(mode, 1)} "
            f"| {wall:.1f} | {cpu:.1f} | {plan:.2f} |"
        )
    print(f"split / whole wall time: {best['split'][0] / best['whole'][0]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "flowlens-bench")
    parser.add_argument("--one-file", action="store_true", help="one file: splitting on against off")
    parser.add_argument("--split-bytes", type=int, default=128 << 20, help="(--one-file) the split size")
    parser.add_argument(
        "--task-threads",
        type=int,
        help="(--one-file) DuckDB threads per task (default: every core; 1: a task on one core, "
        "as on a cluster whose tasks get one core each)",
    )
    parser.add_argument("--from", dest="source", type=Path, help="take the first --records lines of this log")
    args = parser.parse_args()
    if args.one_file:
        args.data.mkdir(parents=True, exist_ok=True)
        log = (
            first_lines(args.source, args.records, args.data)
            if args.source
            else make_log(args.records, args.data)
        )
        one_file(args, log)
        return

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
