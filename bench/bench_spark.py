"""Benchmark: the query stages on both engines, DuckDB and Spark (local mode), side by side.

Builds (once, cached under --dir) the synthetic store of ``bench_query.py`` with --records records
over 7 days and its hourly summaries, then times, on each engine over the whole store:

* ``denied`` (a scan of the denied records' traces),
* ``unexpected-allowed`` (read from the hourly summaries),
* ``unexpected-allowed`` from the records alone (no summaries: the grouping on Spark's executors),
* ``coverage-facts``, the one scan of a coverage report,
* ``suggest-edges`` for three namespaces, the scan behind ``flowlens suggest``;
* ``report``: ``flowlens report`` over the whole store, as the command runs it (its scans, the
  policy engine on the distinct keys, its suggestions and their proof, the JSON written);
* ``suggest``: ``flowlens suggest --all-namespaces`` over the whole store, as the command runs it
  (the edges, the policies, and their proof by replay).

The two commands run in this process through the command line (``--engine duckdb`` or ``spark``),
so the Spark session is the one already started, as under ``spark-submit``. Each stage is the best of --repeat runs (the Spark session is started once, before the clock;
its start is printed apart). Output: wall seconds per engine, Spark/DuckDB ratio, the CPU seconds
the run used (this process's threads, which are DuckDB's, plus Spark's JVM and its Python
workers), and records per CPU second: what one core does when it has the work to itself, the
figure the capacity model in docs/spark.md scales from. On a machine shared with other jobs the
wall seconds say more about the load than about the engines; the CPU seconds do not. DuckDB runs
with --cores threads, Spark with local[--cores].

Not measured here: ingest on Spark (bench/bench_spark_ingest.py).

Usage:  .venv/bin/python bench/bench_spark.py --records 10000000 --dir bench/.data
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_query import DAY0, DAYS, build_store  # noqa: E402
from flowlens.cli import app  # noqa: E402
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


#: The commands timed as a user runs them: (label, command line after the store and window).
COMMANDS: list[tuple[str, list[str]]] = [
    ("report (the command)", ["report", "--format", "json"]),
    ("suggest --all-namespaces (the command)", ["suggest", "--all-namespaces"]),
]


def run_command(argv: list[str]) -> int:
    """``flowlens ARGV`` in this process, its stdout discarded; its exit code (10: a proof failed)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = app(argv, standalone_mode=False)
    if code not in (None, 0, 10):
        raise SystemExit(f"flowlens {' '.join(argv)} exited {code}")
    return 0


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system, with those of children already waited for) of process ``pid``
    and its descendants so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # a Python worker that ended meanwhile
    return total


def cpu_now(jvm: int | None) -> float:
    """CPU seconds so far of this process (all its threads: DuckDB's) and of Spark's JVM and its
    Python workers: work done, whatever else the machine runs."""
    return time.process_time() + (_tree_cpu(jvm) if jvm else 0.0)


def best_of(repeat: int, run: Callable[[], int], jvm: int | None) -> tuple[float, float]:
    """The best wall seconds of ``repeat`` runs and the CPU seconds of that run."""
    best, cpu = float("inf"), 0.0
    for _ in range(repeat):
        c0, t0 = cpu_now(jvm), time.perf_counter()
        run()
        wall, used = time.perf_counter() - t0, cpu_now(jvm) - c0
        if wall < best:
            best, cpu = wall, used
    return best, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--only", choices=["queries", "commands"], help="time only the named queries, or only the commands"
    )
    parser.add_argument(
        "--stages", help="time only the named queries whose label starts with one of these (comma-separated)"
    )
    args = parser.parse_args()
    wanted = tuple(args.stages.split(",")) if args.stages else ("",)

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

    session = spark_session(choice.spark)
    gateway = session.sparkContext._gateway
    jvm: int | None = gateway.proc.pid if gateway is not None and gateway.proc is not None else None
    print(f"Spark session started in {time.perf_counter() - t0:.1f} s (not counted below)", flush=True)

    def opener(engine: str, summaries: bool) -> Callable[[], Engine]:
        if engine == "duckdb":
            return lambda: connect(store, threads=args.cores, summaries=summaries)
        return lambda: open_engine(store, choice, summaries=summaries)

    print(f"\n{args.records:,} records, {args.cores} cores, best of {args.repeat}, load {_load()}")
    print(
        f"{'stage':40} {'duckdb s':>9} {'spark s':>9} {'ratio':>6} {'duckdb cpu s':>12} {'spark cpu s':>11}"
        f" {'duckdb rec/cpu-s':>16} {'spark rec/cpu-s':>15}"
    )

    def show(label: str, walls: dict[str, float], cpus: dict[str, float]) -> None:
        rate = {e: args.records / max(c, 1e-9) for e, c in cpus.items()}
        print(
            f"{label:40} {walls['duckdb']:9.2f} {walls['spark']:9.2f} {walls['spark'] / walls['duckdb']:6.1f}"
            f" {cpus['duckdb']:12.2f} {cpus['spark']:11.2f} {rate['duckdb']:16,.0f} {rate['spark']:15,.0f}",
            flush=True,
        )

    for label, name, params, summaries in STAGES if args.only != "commands" else []:
        if not label.startswith(wanted):
            continue
        walls, cpus = {}, {}
        for engine in ("duckdb", "spark"):
            open_ = opener(engine, summaries)

            def run(
                open_: Callable[[], Engine] = open_, name: str = name, params: dict[str, object] = params
            ) -> int:
                with open_() as opened:
                    return opened.run(name, params).num_rows

            walls[engine], cpus[engine] = best_of(args.repeat, run, jvm)
        show(label, walls, cpus)

    window = [
        "--since",
        DAY0.date().isoformat(),
        "--until",
        (DAY0 + dt.timedelta(days=DAYS)).date().isoformat(),
    ]
    spark_args = ["--spark-master", f"local[{args.cores}]"]
    for label, command in COMMANDS if args.only != "queries" else []:
        walls, cpus = {}, {}
        for engine in ("duckdb", "spark"):
            with tempfile.TemporaryDirectory(prefix="flowlens-bench-") as out:
                argv = [*command, "--store", str(store), *window, "--engine", engine]
                argv += spark_args if engine == "spark" else []
                argv += ["--reports", out] if command[0] == "report" else ["--out", out]
                walls[engine], cpus[engine] = best_of(args.repeat, partial(run_command, argv), jvm)
        show(label, walls, cpus)
    print(f"load {_load()}")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
