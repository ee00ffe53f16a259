"""Benchmark: a store fed every five minutes for a year, before and after compaction.

Builds (once, cached under ``--dir``) a store of ``--records`` records (default 10 M) over
``--days`` days (default 365) as 5-minute ingests write it: one flows file (with its hourly
summary) per 5-minute run and day, about 95 records each, 288 a day, 105,120 in a year. Each
run's file is written by the real writer (``flowlens.ingest.writer.FileWriter``: row groups,
encodings, the summary) under its own commit id, so the files are named, laid out and
summarised exactly as 288 ingests a day write them; they are committed through the store's
real commit (``StoreWriter.commit``: fingerprints, manifest, journal) a day at a time rather
than in 105,120 commits, which would spend hours rewriting a manifest that, without
compaction, lists 210,000 files (a real feed compacts as it goes; see below). Records: the
synthetic cluster of ``bench_query.py`` (40 namespaces, 3,000 distinct edges drawn Zipf-like,
both reporters, about 6 % denied, pass hits, profiles, staged denies).

Then it measures the store in three states (each query in a fresh engine, best of
``--repeat`` runs, wall and CPU time of this process, with the same run's baseline):

* ``raw``: every 5-minute file, nothing compacted (``--raw``; slow: only ``denied`` and the
  baseline);
* ``fed``: as a store fed by 5-minute ``flowlens ingest`` runs is at the end of its last day:
  ingest compacted each closed day once it held more than 24 files, today's 288 files are not;
* ``compacted``: after ``flowlens compact`` (today's files too).

Measured per state: ``denied`` and ``unexpected-allowed`` over the whole store, ``suggest`` for
one namespace (``load_reports``, synthesis and the proof, as ``flowlens suggest`` runs them),
and a coverage report (``flowlens.report.generate``) for the last day and for the whole year.
Baseline: one bare DuckDB scan of the same files (``count(*)`` of the denied rows and
``sum(bytes_in)``, over the file list, no manifest, no checks). And, on the ``fed`` store,
what one more 5-minute run costs: open the writer (lock, recovery, the quick check of every
file), write and commit its file, and the compaction check.

Usage:  .venv/bin/python bench/bench_longlived.py --records 10000000 --days 365 --dir /tmp/flowlens-bench-year
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_query import DAY0, _chunk, _edges  # noqa: E402

from flowlens.engine import connect  # noqa: E402
from flowlens.ingest.dictionaries import WRITE_SCHEMA  # noqa: E402
from flowlens.ingest.writer import FileWriter, write_order  # noqa: E402
from flowlens.store import Store, new_ingest_id, open_writer  # noqa: E402
from flowlens.store.compact import compact, maintain  # noqa: E402
from flowlens.store.layout import Snapshot  # noqa: E402
from flowlens.store.lifecycle import Lifecycle, compaction_plan, days_due  # noqa: E402
from flowlens.store.summaries import deciding_hits  # noqa: E402

SLOTS = 288  # 5-minute runs a day
NAMESPACE = "team-00"


def _slot_table(
    rng: np.random.Generator,
    edges: pa.Table,
    weights: np.ndarray,
    n: int,
    day: int,
    slots: tuple[int, int],
    commit_id: str,
    line: int,
) -> pa.Table:
    table = _chunk(rng, edges, weights, n, day, line, slots)
    table = table.set_column(
        table.schema.get_field_index("ingest_id"), "ingest_id", pa.array([commit_id[:26]] * n)
    )
    return table.set_column(
        table.schema.get_field_index("source_file"),
        "source_file",
        pa.array(["/var/log/calico/flowlogs/flows.log"] * n),
    )


def _write_slot(stage: Path, table: pa.Table, commit_id: str) -> None:
    """One 5-minute run's rows into its own file, as ingest's writer writes them."""
    order, keys = write_order(table, np.ones(table.num_rows, dtype=bool))
    table = table.take(pa.array(order))
    hits = deciding_hits(table["enforced_policies"], table["pending_policies"])
    writer = FileWriter(stage, commit_id)
    writer.add(table.cast(WRITE_SCHEMA), keys, hits)
    writer.close()


def _cluster(
    root: Path, records: int, days: int, seed: int
) -> tuple[Store, np.random.Generator, pa.Table, np.ndarray, np.ndarray]:
    """An empty store at ``root``, the cluster's edges and their Zipf-like weights, and how many
    records each 5-minute run of the ``days`` gets."""
    if root.exists():
        shutil.rmtree(root)
    rng = np.random.default_rng(seed)
    edges = _edges(rng, 3000)
    weights = 1.0 / np.arange(1, edges.num_rows + 1) ** 1.1
    weights = rng.permutation(weights / weights.sum())
    slots = days * SLOTS
    counts = np.bincount(rng.integers(0, slots, size=records), minlength=slots)
    return Store(root), rng, edges, weights, counts


def _write_runs(
    stage: Path,
    rng: np.random.Generator,
    edges: pa.Table,
    weights: np.ndarray,
    counts: np.ndarray,
    day: int,
    line: int,
) -> int:
    """Day ``day``'s 288 5-minute runs, each its own file under its run's commit id, into
    ``stage``; returns the next source line."""
    at = DAY0 + dt.timedelta(days=day)
    for slot in range(SLOTS):
        n = int(counts[day * SLOTS + slot])
        if n == 0:
            continue
        run_at = at + dt.timedelta(minutes=5 * slot + 6)  # the run just after its records
        commit_id = f"{new_ingest_id(run_at)}-000"
        _write_slot(
            stage, _slot_table(rng, edges, weights, n, day, (slot, slot + 1), commit_id, line), commit_id
        )
        line += n
    return line


def build(root: Path, records: int, days: int, seed: int = 42) -> None:
    store, rng, edges, weights, counts = _cluster(root, records, days, seed)
    started = time.perf_counter()
    line = 0
    with open_writer(store) as writer:
        for day in range(days):
            at = DAY0 + dt.timedelta(days=day)
            stage = writer.stage(f"bench-{new_ingest_id(at)}")
            line = _write_runs(stage, rng, edges, weights, counts, day, line)
            writer.commit(stage, writer.manifest, kind="ingest", now=at)
            if day % 30 == 29 or day == days - 1:
                rate = (day + 1) * SLOTS / (time.perf_counter() - started)
                print(f"  day {day + 1}/{days}: {line:,} records, {rate:.0f} files/s", flush=True)
    (root / "BUILT").write_text(f"{records} {days}\n")


def build_fed(root: Path, records: int, days: int, seed: int = 42) -> None:
    """The store as 5-minute ingests leave it at the end of its last day, written directly: each
    closed day as the one file compaction turns its 288 files into (its rows written by the same
    writer, under a ``compact-`` commit id, one commit per day as compaction commits), the last
    day as its 288 5-minute files. The same cluster and the same records per day as :func:`build`."""
    store, rng, edges, weights, counts = _cluster(root, records, days, seed)
    started = time.perf_counter()
    line = 0
    with open_writer(store) as writer:
        for day in range(days):
            at = DAY0 + dt.timedelta(days=day)
            if day < days - 1:
                closed = at + dt.timedelta(days=1, minutes=6)  # the first ingest after the day's end
                commit_id = f"compact-{new_ingest_id(closed)}"
                stage = writer.stage(commit_id)
                n = int(counts[day * SLOTS : (day + 1) * SLOTS].sum())
                _write_slot(
                    stage, _slot_table(rng, edges, weights, n, day, (0, SLOTS), commit_id, line), commit_id
                )
                line += n
                writer.commit(stage, writer.manifest, kind="compact", now=closed)
            else:
                stage = writer.stage(f"bench-{new_ingest_id(at)}")
                line = _write_runs(stage, rng, edges, weights, counts, day, line)
                writer.commit(stage, writer.manifest, kind="ingest", now=at)
            if day % 30 == 29 or day == days - 1:
                print(
                    f"  day {day + 1}/{days}: {line:,} records in {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
    (root / "BUILT").write_text(f"{records} {days}\n")


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def measure(
    root: Path, label: str, repeat: int, *, only: tuple[str, ...] = ()
) -> dict[str, tuple[float, float]]:
    import duckdb

    from flowlens.report import generate
    from flowlens.report.window import Window
    from flowlens.suggest import SuggestOptions, load_reports, suggest
    from flowlens.suggest.proof import prove

    store = Store(root)
    snapshot = store.snapshot()
    files = [str(p) for p in snapshot.flows()]
    last_day = max(snapshot.dates())
    last = dt.datetime.fromisoformat(last_day).replace(tzinfo=dt.UTC)
    first = dt.datetime.fromisoformat(min(snapshot.dates())).replace(tzinfo=dt.UTC)

    def baseline() -> None:
        con = duckdb.connect()
        con.execute(
            "SELECT count(*) FILTER (WHERE action = 'deny'), sum(bytes_in) FROM read_parquet($f)",
            {"f": files},
        ).fetchall()
        con.close()

    def denied() -> None:
        with connect(store) as engine:
            engine.run("denied")

    def unexpected() -> None:
        with connect(store) as engine:
            engine.run("unexpected-allowed")

    def suggest_ns() -> None:
        with connect(store) as engine:
            reports = load_reports(engine, [NAMESPACE])
        options = SuggestOptions(namespaces=(NAMESPACE,))
        suggestion = suggest(reports, options)
        suggestion.stream()
        prove(reports, options, suggestion=suggestion)

    def report(start: dt.datetime, end: dt.datetime, name: str) -> Callable[[], None]:
        def run() -> None:
            with tempfile.TemporaryDirectory() as out:
                generate(store, Window("range", start, end, name), Path(out))

        return run

    jobs: dict[str, Callable[[], None]] = {
        "baseline": baseline,
        "denied": denied,
        "unexpected-allowed": unexpected,
        "suggest": suggest_ns,
        "report day": report(last, last + dt.timedelta(days=1), "bench-day"),
        "report year": report(first, last + dt.timedelta(days=1), "bench-year"),
    }
    results: dict[str, tuple[float, float]] = {}
    for name, fn in jobs.items():
        if only and name not in only:
            continue
        results[name] = _best(fn, repeat)
    print(
        f"--- {label}: {len(files):,} flows files, {snapshot.rows():,} records, load {os.getloadavg()[0]:.1f}"
    )
    base = results["baseline"][0]
    for name, (wall, cpu) in results.items():
        ratio = "" if name == "baseline" else f"  {wall / base:5.1f}x baseline"
        print(f"{name:20s} wall {wall:7.2f} s  cpu {cpu:7.2f} s{ratio}")
    return results


TARGETS = {"denied": 1.0, "unexpected-allowed": 2.0, "suggest": 5.0, "report day": 3.0, "report year": 15.0}


def one_more_run(root: Path, repeat: int) -> None:
    """What a 5-minute ingest's store work costs on this store: open, check, write, commit, maintain."""
    store = Store(root)
    rng = np.random.default_rng(7)
    edges = _edges(rng, 3000)
    weights = np.full(edges.num_rows, 1.0 / edges.num_rows)
    last = dt.date.fromisoformat(max(store.snapshot().dates()))
    day = (last - DAY0.date()).days
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        now = dt.datetime.combine(last, dt.time(23, 56), dt.UTC)
        with open_writer(store) as writer:
            commit_id = f"{new_ingest_id(now)}-000"
            stage = writer.stage(commit_id)
            _write_slot(
                stage, _slot_table(rng, edges, weights, 95, day, (287, 288), commit_id, i * 95), commit_id
            )
            writer.commit(stage, writer.manifest, now=now)
            maintain(writer, Lifecycle(), now)
        times.append(time.perf_counter() - t0)
    print(
        f"one more 5-minute run's store work (open + quick check + write + commit + compaction check): "
        f"best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/flowlens-bench-year"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--from-raw",
        action="store_true",
        help="build every 5-minute file of the year and let compaction make the fed store (hours), "
        "instead of writing the closed days as compaction leaves them",
    )
    parser.add_argument(
        "--raw", action="store_true", help="with --from-raw: also measure the uncompacted store"
    )
    parser.add_argument(
        "--only",
        default="",
        help="measure only these jobs (comma-separated: denied, unexpected-allowed, suggest, "
        "'report day', 'report year'; the baseline always runs)",
    )
    args = parser.parse_args()
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = sorted(set(only) - set(TARGETS))
    if unknown:
        parser.error(f"--only: unknown job(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if only:
        only = ("baseline", *only)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

    work = args.dir / "work"
    if args.from_raw:
        source = args.dir / f"raw-{args.records}-{args.days}"
        if not (source / "BUILT").exists():
            t0 = time.perf_counter()
            build(source, args.records, args.days)
            print(
                f"built {args.records:,} records in {args.days * SLOTS:,} 5-minute files in {time.perf_counter() - t0:.0f} s"
            )
    else:
        source = args.dir / f"fed-{args.records}-{args.days}"
        if not (source / "BUILT").exists():
            t0 = time.perf_counter()
            build_fed(source, args.records, args.days)
            print(
                f"built {args.records:,} records, {args.days - 1} closed days and {SLOTS} 5-minute files in {time.perf_counter() - t0:.0f} s"
            )
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(source, work)
    store = Store(work)

    if args.from_raw:
        if args.raw:
            measure(work, "raw: no compaction at all", 1, only=("baseline", "denied"))
        # As ingest leaves it at the end of the last day: every closed day compacted (it held more
        # than 24 files when the first ingest after its end ran), the last day's 288 files not.
        t0 = time.perf_counter()
        last = dt.date.fromisoformat(max(store.snapshot().dates()))
        now = dt.datetime.combine(last, dt.time(23, 55), dt.UTC)
        with open_writer(store) as writer:
            due = days_due(Snapshot.of(store, writer.manifest), now, Lifecycle())
            result = compact(writer, due, now=now)
        seconds = time.perf_counter() - t0
        print(f"{result.line()} in {seconds:.0f} s ({seconds / max(len(result.days), 1):.2f} s a day)")
    fed = measure(work, "fed: closed days compacted, today's 288 5-minute files not", args.repeat, only=only)
    one_more_run(work, 5)

    t0 = time.perf_counter()
    with open_writer(store) as writer:
        result = compact(writer, compaction_plan(Snapshot.of(store, writer.manifest)))
    print(f"flowlens compact: {result.line()} in {time.perf_counter() - t0:.1f} s")
    done = measure(work, "compacted: after flowlens compact", args.repeat, only=only)

    print("--- against the targets (compacted < target; fed within 2x the target), wall (cpu)")
    for name, target in TARGETS.items():
        if name not in done:
            continue
        (after, after_cpu), (before, before_cpu) = done[name], fed[name]
        print(
            f"{name:20s} compacted {after:6.2f} s ({after_cpu:5.2f}) {'OK' if after < target else 'SLOW'} < {target:g} s   "
            f"fed {before:6.2f} s ({before_cpu:5.2f}) {'OK' if before < 2 * target else 'SLOW'} < {2 * target:g} s"
        )


if __name__ == "__main__":
    main()
