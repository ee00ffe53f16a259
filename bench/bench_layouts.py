"""Ingest speed for every record layout, each against bare DuckDB on the same file, in one run.

    python bench/bench_layouts.py                          # 1 M records per layout, 3 runs each
    python bench/bench_layouts.py --records 200000 --layouts sample,full --repeat 1
    python bench/bench_layouts.py --records 100000 --instructions   # also callgrind (valgrind)

A layout is what a Calico release or Felix setting writes (``flowlens sample --layout``:
``sample``, ``felix-defaults``, ``labels-policies``, ``2025``, ``2019``, ``full``), or another
format: Elasticsearch search hits (the sample layout), Goldmane emitter lines and Whisker
FlowResponse lines; ``churn`` is the sample with a label set and a workload name per record (a
cluster running Jobs: every run has its own ``controller-uid``). Each input holds exactly ``--records`` lines of one layout, generated once
and cached under ``--dir``.

Per layout, the baseline (DuckDB ``read_json`` of the file straight into one Parquet file) and
flowlens ingest run in fresh processes one after the other, ``--repeat`` times; the ratio of
each pair is printed, and their median is the layout's ratio (target <= 1.5). CPU seconds and
peak memory are printed beside wall time. With ``--instructions`` each job is also counted
under callgrind, which a busy machine does not disturb. ``--markdown`` prints the table for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest  # (the measured jobs are the same as bench_ingest's)

ROOT = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: name -> (format, record layout, what it is)
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "sample": ("enterprise", "sample", "flowlens' sample: Enterprise 2026, labels, policies and services on"),
    "felix-defaults": ("enterprise", "felix-defaults", "Felix defaults: labels, policies and services off"),
    "labels-policies": ("enterprise", "labels-policies", "labels and policies, no service/process/TCP keys"),
    "2025": ("enterprise", "2025", "Enterprise 2025: F1 hits, all_policies"),
    "2019": ("enterprise", "2019", "Enterprise 2019: F0 hits, all_policies only, few groups"),
    "full": ("enterprise", "full", "every optional group with values, Elasticsearch fields"),
    "elasticsearch": ("elasticsearch", "sample", "Elasticsearch search hits (_source: the sample layout)"),
    "goldmane": ("goldmane", "sample", "Goldmane emitter lines"),
    "whisker": ("whisker", "sample", "Whisker FlowResponse lines"),
    "churn": (
        "enterprise",
        "sample",
        "the sample, each record from a Job's own pods: a label set per record",
    ),
}


def churn(line: str, i: int, rnd: random.Random) -> str:
    """A record of the sample as a busy batch cluster writes it: its source is a Job's pods (a
    name and a ``controller-uid`` label of its own, as every run of a CronJob has), from one of
    2,000 namespaces, to one of 50,000 workloads on any port: distinct values nearly per record."""
    record = json.loads(line)
    record["source_namespace"] = f"ns-{rnd.randrange(2000)}"
    record["source_name_aggr"] = f"job-{i}-*"
    record["dest_namespace"] = f"ns-{rnd.randrange(2000)}"
    record["dest_name_aggr"] = f"svc-{rnd.randrange(50_000)}-*"
    record["dest_port"] = rnd.randrange(1, 65536)
    labels = record.get("source_labels")
    if isinstance(labels, dict) and labels.get("labels") is not None:
        labels["labels"] = [
            f"batch.kubernetes.io/controller-uid={rnd.getrandbits(64):016x}",
            f"batch.kubernetes.io/job-name=job-{i}",
            f"team=t{rnd.randrange(40)}",
        ]
    return json.dumps(record, separators=(",", ":"))


def make_input(name: str, records: int, data_dir: Path) -> Path:
    """Exactly ``records`` lines of one layout (cached)."""
    target = data_dir / f"layout-{name}-{records}.ndjson"
    if target.exists():
        return target
    from flowlens.sample import SampleOptions, estimate_days, iter_chunks, load_model

    fmt, layout, _ = LAYOUTS[name]
    model = load_model()
    # Goldmane and Whisker merge the records of all nodes: give them the days of twice as many
    # Felix records (Whisker's event stream, one event per flow and interval, needs its days).
    exact = fmt in ("enterprise", "elasticsearch")
    options = SampleOptions(
        start=START,
        days=None if exact else estimate_days(model, records * 2, 7),
        records=records if exact else None,
        seed=7,
        formats=(fmt,),
        layout=layout,
        whisker_stream_hours=10**6,
    )
    tmp = target.with_suffix(".tmp")
    rnd = random.Random(7)
    written = 0
    with open(tmp, "w", encoding="utf-8") as out:
        for rel, text in iter_chunks(model, options, fmt):
            if fmt == "whisker":
                if not rel.endswith(".sse"):
                    continue  # the hourly responses repeat the stream's flows
                lines = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
            else:
                lines = text.splitlines()
            lines = lines[: records - written]
            if name == "churn":
                lines = [churn(line, written + i, rnd) for i, line in enumerate(lines)]
            out.write("\n".join(lines) + "\n")
            written += len(lines)
            if written >= records:
                break
    if written < records:
        raise SystemExit(f"{name}: only {written} lines generated")
    tmp.replace(target)
    return target


def bench_layout(name: str, log: Path, args: argparse.Namespace) -> dict[str, float]:
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        pair = {}
        for kind in ("duckdb", "flowlens"):
            pair[kind] = result = bench_ingest.measure(kind, log, args.dir / f"work-{kind}")
            if kind not in best or result["seconds"] < best[kind]["seconds"]:
                best[kind] = result
        ratios.append(pair["flowlens"]["seconds"] / pair["duckdb"]["seconds"])
        cpu_ratios.append(pair["flowlens"]["cpu"] / pair["duckdb"]["cpu"])
        print(
            f"  {name:16s} duckdb {pair['duckdb']['seconds']:6.2f} s ({pair['duckdb']['cpu']:6.2f} CPU)"
            f"  flowlens {pair['flowlens']['seconds']:6.2f} s ({pair['flowlens']['cpu']:6.2f} CPU,"
            f" peak {pair['flowlens']['peak_mb']:5.0f} MB, rows {pair['flowlens']['rows']:,},"
            f" diagnosed {pair['flowlens']['diagnosed']:,})"
            f"  ratio {ratios[-1]:.2f}",
            flush=True,
        )
    row = {
        "mb": log.stat().st_size / 1e6,
        "duckdb": best["duckdb"]["seconds"],
        "flowlens": best["flowlens"]["seconds"],
        "ratio": statistics.median(ratios),
        "cpu_ratio": statistics.median(cpu_ratios),
        "peak_mb": max(best["flowlens"]["peak_mb"], 0),
        "runs": len(ratios),
    }
    if args.instructions:
        counts = {}
        for kind in ("duckdb", "flowlens"):
            work = args.dir / f"work-{kind}-cg"
            counts[kind] = bench_ingest.instructions(kind, log, work) - bench_ingest.instructions(
                kind, log, work, load_only=True
            )
            shutil.rmtree(work, ignore_errors=True)
        row["instructions"] = counts["flowlens"] / counts["duckdb"]
        print(f"  {name:16s} instructions flowlens / duckdb = {row['instructions']:.2f}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--layouts", default=",".join(LAYOUTS), help="comma-separated, of: " + ", ".join(LAYOUTS)
    )
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    names = [n.strip() for n in args.layouts.split(",") if n.strip()]
    unknown = [n for n in names if n not in LAYOUTS]
    if unknown:
        raise SystemExit(f"unknown layout(s) {', '.join(unknown)}; choose from {', '.join(LAYOUTS)}")
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in names:
        log = make_input(name, args.records, args.dir)
        rows[name] = bench_layout(name, log, args)
    for kind in ("duckdb", "flowlens"):
        shutil.rmtree(args.dir / f"work-{kind}", ignore_errors=True)
    print(f"\n{args.records:,} records per layout; ratio = median over {args.repeat} back-to-back pairs")
    has_instr = args.instructions
    if args.markdown:
        print("\n| layout | input | DuckDB read_json → Parquet | flowlens ingest | ratio (wall) | ratio (CPU) |"
              + (" ratio (instructions) |" if has_instr else ""))  # fmt: skip
        print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if has_instr else ""))
    for name, row in rows.items():
        if args.markdown:
            print(
                f"| {name} | {row['mb']:,.0f} MB | {row['duckdb']:.1f} s | {row['flowlens']:.1f} s | "
                f"{row['ratio']:.2f} | {row['cpu_ratio']:.2f} |"
                + (f" {row['instructions']:.2f} |" if has_instr else "")
            )
        else:
            print(
                f"{name:16s} {row['mb']:7,.0f} MB  duckdb {row['duckdb']:6.2f} s  flowlens {row['flowlens']:6.2f} s"
                f"  ratio {row['ratio']:.2f} wall, {row['cpu_ratio']:.2f} CPU"
                + (f", {row['instructions']:.2f} instructions" if has_instr else "")
                + f"  peak {row['peak_mb']:.0f} MB  {'ok' if row['ratio'] <= 1.5 else 'OVER 1.5'}"
            )


if __name__ == "__main__":
    main()
