"""Benchmark: the query stages on both engines, DuckDB and Spark (local mode), side by side.

Builds (once, cached under --dir) the synthetic store of ``bench_query.py`` with --records records
over 7 days and its hourly summaries, then times, on each engine over the whole store:

* ``denied`` (a scan of the denied records' traces),
* ``unexpected-allowed`` (read from the hourly summaries),
* ``unexpected-allowed`` from the records alone (no summaries: the grouping on Spark's executors),
* ``coverage-facts``, the one scan of a coverage report,
* ``suggest-edges`` for three namespaces, the scan behind ``flowlens suggest``.

Each stage is the best of --repeat runs (the Spark session is started once, before the clock;
its start is printed apart). Output: wall seconds per engine, Spark/DuckDB ratio, and records
per second per core (records in the store / wall seconds / --cores), the figure the capacity
model in docs/spark.md scales from. DuckDB runs with --cores threads, Spark with local[--cores].

Not measured here (not built yet): Spark ingest; ingest runs on DuckDB (bench_ingest.py).

Usage:  .venv/bin/python bench/bench_spark.py --records 2000000 --dir bench/.data
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_query import build_store  # noqa: E402
from flowlens.engine import Engine, EngineChoice, SparkSettings, connect, open_engine  # noqa: E402
from flowlens.store import Store  # noqa: E402
from flowlens.store.summaries import summarise_store  # noqa: E402

STAGES: list[tuple[str, str, dict[str, object], bool]] = [
    ("denied", "denied", {}, True),
    ("unexpected-allowed", "unexpected-allowed", {}, True),
    ("unexpected-allowed, no summaries", "unexpected-allowed", {}, False),
    ("coverage-facts (report scan)", "coverage-facts", {}, True),
    (
        "suggest-edges (suggest scan)",
        "suggest-edges",
        {"namespaces": ["team-00", "team-01", "team-02"]},
        True,
    ),
]


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = run()
        best = min(best, time.perf_counter() - t0)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    store = args.dir / f"spark-{args.records}"
    if not (store / "flows").is_dir():
        t0 = time.perf_counter()
        build_store(store, args.records, "time-ordered")
        summarise_store(Store(store), threads=args.cores)
        print(f"built the store: {args.records:,} records in {time.perf_counter() - t0:.1f} s", flush=True)

    choice = EngineChoice(
        "spark",
        SparkSettings(f"local[{args.cores}]", (("spark.sql.shuffle.partitions", str(4 * args.cores)),)),
    )
    t0 = time.perf_counter()
    from flowlens.engine.spark import spark_session

    spark_session(choice.spark)
    print(f"Spark session started in {time.perf_counter() - t0:.1f} s (not counted below)", flush=True)

    def opener(engine: str, summaries: bool) -> Callable[[], Engine]:
        if engine == "duckdb":
            return lambda: connect(store, threads=args.cores, summaries=summaries)
        return lambda: open_engine(store, choice, summaries=summaries)

    print(f"\n{args.records:,} records, {args.cores} cores, best of {args.repeat}")
    print(
        f"{'stage':36} {'duckdb s':>9} {'spark s':>9} {'ratio':>6} {'duckdb rec/s/core':>18} {'spark rec/s/core':>17}"
    )
    for label, name, params, summaries in STAGES:
        walls = {}
        for engine in ("duckdb", "spark"):
            open_ = opener(engine, summaries)

            def run(
                open_: Callable[[], Engine] = open_, name: str = name, params: dict[str, object] = params
            ) -> int:
                with open_() as opened:
                    return opened.run(name, params).num_rows

            walls[engine], _ = best_of(args.repeat, run)
        per_core = {e: args.records / w / args.cores for e, w in walls.items()}
        print(
            f"{label:36} {walls['duckdb']:9.2f} {walls['spark']:9.2f} {walls['spark'] / walls['duckdb']:6.1f} "
            f"{per_core['duckdb']:18,.0f} {per_core['spark']:17,.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
