"""Benchmark: ``flowlens compact`` on a store at a Hadoop URL against the same compaction of the
same store in a local folder, in one process and one Spark session.

The store is made first: the distinct lines of the bundled sample logs (``sample_logs/enterprise``:
38,139 records of three nodes over two days) cut into ``--chunks`` logs in their order, each
ingested by a DuckDB ingest of its own, as a feed of small runs leaves a store: a few hundred small
flows files (and their summaries), each chunk's records in one or two days (ingest's own
compaction turned off while it is made).
Each round copies it twice: one copy is compacted in its folder (``open_writer``: the baseline),
the other through ``viewfs://bench-compact/store``, Hadoop's ViewFileSystem with a mount table
pointing at the copy, so that every file operation goes through Hadoop's ``FileSystem`` API in
Spark's JVM (download of each small file and summary, upload of the new ones, the URL commit and
lock). Both copies must then hold the same rows (count, sum of bytes, every day's count).

Output per round: wall seconds and CPU seconds (this process, its DuckDB threads, Spark's JVM and
its Python workers) of each compaction, the files before and after, and the URL/local ratio.

Usage:  nice -n 5 .venv/bin/python bench/bench_spark_url_compact.py --rounds 2
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_spark import cpu_now

from flowlens.engine import SparkSettings, connect
from flowlens.engine.spark import spark_session
from flowlens.ingest import IngestOptions, ingest
from flowlens.store import Store, open_writer
from flowlens.store.compact import CompactResult, compact
from flowlens.store.hadoop_commit import open_for_writing, open_url_writer
from flowlens.store.layout import Snapshot
from flowlens.store.lifecycle import Lifecycle, compaction_plan

REPO = Path(__file__).resolve().parents[1]


def build(template: Path, logs: Path, chunks: int, scratch: Path) -> None:
    lines: dict[bytes, None] = {}
    for log in sorted(p for p in logs.rglob("*") if p.is_file()):
        data = gzip.decompress(log.read_bytes()) if log.suffix == ".gz" else log.read_bytes()
        lines.update(dict.fromkeys(line for line in data.splitlines() if line.strip()))
    ordered = list(lines)
    size = max(1, -(-len(ordered) // chunks))
    scratch.mkdir()
    for number, start in enumerate(range(0, len(ordered), size)):
        log = scratch / f"chunk-{number:04d}.log"
        log.write_bytes(b"\n".join(ordered[start : start + size]) + b"\n")
        ingest(Store(template), [str(log)], IngestOptions(lifecycle=Lifecycle(compact_files=0)))


def answers(root: Path) -> list[object]:
    with connect(root) as engine:
        total = engine.sql("SELECT count(*) AS n, sum(bytes_in) AS b FROM flows").to_pylist()
        days = engine.sql(
            "SELECT CAST(start_time AS DATE) AS d, count(*) AS n FROM flows GROUP BY 1 ORDER BY 1"
        ).to_pylist()
    return [total, days]


def compact_local(root: Path) -> CompactResult:
    store = Store(root)
    with open_writer(store) as writer:
        return compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--logs", type=Path, default=REPO / "sample_logs" / "enterprise")
    parser.add_argument("--chunks", type=int, default=300, help="small ingests that make the store")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="flowlens-bench-compact-"))
    try:
        template = work / "template"
        t0 = time.perf_counter()
        build(template, args.logs, args.chunks, work / "chunks")
        files = len(Store(template).snapshot().flow_entries())
        print(f"built the store: {files} flows files in {time.perf_counter() - t0:.1f} s (DuckDB ingests)")
        settings = SparkSettings(f"local[{args.cores}]", (("spark.ui.enabled", "false"),))
        spark = spark_session(settings)
        gateway = spark.sparkContext._gateway
        jvm = gateway.proc.pid if gateway is not None and gateway.proc is not None else None
        print(f"load average before: {os.getloadavg()}")
        print(f"{'round':>5} {'where':6} {'wall':>8} {'CPU':>8} {'files':>13} {'rows':>8}")
        for number in range(1, args.rounds + 1):
            local_root, url_root = work / f"local-{number}", work / f"url-{number}"
            shutil.copytree(template, local_root)
            shutil.copytree(template, url_root)
            (url_root / ".lock").unlink(missing_ok=True)  # (the local writers' flock file)
            table = f"bench-compact-{number}"
            spark._jsc.hadoopConfiguration().set(
                f"fs.viewfs.mounttable.{table}.link./store", url_root.as_uri()
            )
            measured: dict[str, tuple[float, float, CompactResult]] = {}
            for where in ("local", "url"):
                wall, cpu = time.perf_counter(), cpu_now(jvm)
                if where == "local":
                    result = compact_local(local_root)
                else:
                    store = open_for_writing(Store.at(f"viewfs://{table}/store"), spark)
                    with open_url_writer(store) as writer:
                        result = compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))
                measured[where] = (time.perf_counter() - wall, cpu_now(jvm) - cpu, result)
            for where, (wall_s, cpu_s, result) in measured.items():
                after = len(Store(work / f"{where}-{number}").snapshot().flow_entries())
                print(
                    f"{number:>5} {where:6} {wall_s:7.2f}s {cpu_s:7.2f}s {files:>5} -> {after:<5} "
                    f"{result.rows:>8,}"
                )
            same = answers(local_root) == answers(url_root) == answers(template)
            ratio = measured["url"][0] / measured["local"][0], measured["url"][1] / measured["local"][1]
            print(f"      url/local: wall {ratio[0]:.2f}x, CPU {ratio[1]:.2f}x; same answers: {same}")
            if not same:
                raise SystemExit("the compacted stores answer differently")
        print(f"load average after: {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
