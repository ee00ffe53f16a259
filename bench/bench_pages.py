"""Exports of pages (Elasticsearch scroll pages saved one after another) against the same records
one per line, and against bare DuckDB on those lines, in one run.

    python bench/bench_pages.py                                # 200,000 hits, pages of 5,000
    python bench/bench_pages.py --records 50000 --page 2000 --repeat 1

The input is the ``elasticsearch`` layout of bench_layouts (search hits, one per line), and the
same hits saved as pretty-printed ``_search`` pages one after another (what an export script
writes): larger than ``--max-document-bytes`` at the default sizes, so it is read a page at a
time. Each job runs in a fresh process (bench_ingest's jobs): bare DuckDB ``read_json`` of the
lines into Parquet, flowlens ingest of the lines, flowlens ingest of the pages. Printed: wall
and CPU seconds, peak memory, and the ratio of each flowlens job to the baseline (median over
``--repeat`` rounds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ingest  # (the measured jobs)
import bench_layouts  # (the hits)

ROOT = Path(__file__).resolve().parents[1]


def make_export(hits: Path, records: int, page: int, data_dir: Path) -> tuple[Path, Path]:
    """The first ``records`` hits one per line, and as pages of ``page`` hits (cached)."""
    lines_path = data_dir / f"pages-lines-{records}.ndjson"
    export_path = data_dir / f"pages-export-{records}-{page}.json"
    if lines_path.exists() and export_path.exists():
        return lines_path, export_path
    with open(hits, encoding="utf-8") as src:
        lines = [src.readline() for _ in range(records)]
    lines_path.write_text("".join(lines), encoding="utf-8")
    with open(export_path, "w", encoding="utf-8") as out:
        for start in range(0, records, page):
            chunk = [json.loads(line) for line in lines[start : start + page]]
            response = {
                "_scroll_id": "c2Nhbg==",
                "took": 3,
                "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": records, "relation": "eq"}, "hits": chunk},
            }
            out.write(json.dumps(response, indent=2) + "\n")
    return lines_path, export_path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--page", type=int, default=5_000, help="hits per page")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.make_only:
        hits = bench_layouts.make_input("elasticsearch", max(args.records, 1_000_000), args.dir)
        make_export(hits, args.records, args.page, args.dir)
        return
    # (made in a process of its own: a job forked from a process that held the records would
    # report that process's peak memory as its own)
    subprocess.run(
        [sys.executable, __file__, "--make-only", "--records", str(args.records), "--page", str(args.page),
         "--dir", str(args.dir)],
        check=True,
    )  # fmt: skip
    lines = args.dir / f"pages-lines-{args.records}.ndjson"
    export = args.dir / f"pages-export-{args.records}-{args.page}.json"
    print(
        f"{args.records:,} hits: {lines.stat().st_size / 1e6:,.0f} MB one per line, "
        f"{export.stat().st_size / 1e6:,.0f} MB as pages of {args.page:,}"
    )
    jobs = {"duckdb, lines": ("duckdb", lines), "flowlens, lines": ("flowlens", lines)}
    jobs["flowlens, pages"] = ("flowlens", export)
    ratios: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.repeat):
        results = {}
        for name, (kind, path) in jobs.items():
            results[name] = result = bench_ingest.measure(kind, path, args.dir / "work-pages")
            print(
                f"  {name:16s} {result['seconds']:6.2f} s ({result['cpu']:6.2f} CPU)"
                f"  peak {result['peak_mb']:5.0f} MB  rows {result['rows']:,}",
                flush=True,
            )
        for name in jobs:
            ratios[name].append(results[name]["seconds"] / results["duckdb, lines"]["seconds"])
    for name in jobs:
        print(f"{name:16s} / bare DuckDB on the lines: {statistics.median(ratios[name]):.2f} (wall, median)")


if __name__ == "__main__":
    main()
