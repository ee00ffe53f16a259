"""Benchmark: `flowlens query denied --format json` on a large result, against DuckDB's own COPY.

Builds (once, cached under --dir) a store whose `denied` result has --rows rows: that many denied
records, each its own edge (distinct source workload and port). Then, in the same run and on the
same result, best of --repeat:

* baseline: DuckDB writing the `denied` query's result itself, ``COPY (...) TO file (FORMAT
  json)`` on a connection over the same files (outside the sandbox, which refuses COPY);
* library: :func:`flowlens.output.write_reader` of :meth:`Engine.stream` to a file (what the
  command does, without starting Python);
* command: ``flowlens query denied --format json --out file`` as a separate process (Python's
  start and imports included), and the same to stdout piped to /dev/null.

Then the same three for each format of ``--formats`` other than json (csv, jsonl, parquet by
default), each against DuckDB's COPY in that format (``FORMAT csv`` with a header; jsonl against
``FORMAT json``, which writes JSON lines; parquet against ``FORMAT parquet``).

Prints each time and its ratio to the baseline.

Usage:  .venv/bin/python bench/bench_output.py --rows 1000000 --dir bench/.data
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowlens.engine import connect  # noqa: E402
from flowlens.formats.hits import parse_hit  # noqa: E402
from flowlens.output import OutputFormat, write_reader  # noqa: E402
from flowlens.schema import ARROW_SCHEMA  # noqa: E402

DAY = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def build(root: Path, rows: int) -> None:
    """A store of ``rows`` denied records, each a distinct edge of the ``denied`` query."""
    part = root / "flows" / "date=2026-11-01"
    target = part / "part-0.parquet"
    if target.exists() and pq.read_metadata(target).num_rows == rows:
        return
    part.mkdir(parents=True, exist_ok=True)
    row = {name: None for name in ARROW_SCHEMA.names}
    row.update(
        start_time=DAY,
        end_time=DAY + dt.timedelta(minutes=5),
        action="deny",
        reporter="dst",
        source_type="wep",
        source_namespace="shop",
        dest_type="wep",
        dest_namespace="payments",
        dest_name_aggr="ledger-5d8f7c9b4-*",
        proto="tcp",
        num_flows_started=1,
        bytes_in=100,
        bytes_out=200,
        enforced_policies=[parse_hit("0|default|knp:payments/default-deny|deny|-1").as_row()],
    )
    one = pa.Table.from_pylist([row], schema=ARROW_SCHEMA)
    table = one.take(np.zeros(rows, dtype=np.int64))
    index = np.arange(rows)
    names = pa.array([f"api-{i // 50000:03d}{i % 50000:05d}-*" for i in index])
    table = table.set_column(table.schema.get_field_index("source_name_aggr"), "source_name_aggr", names)
    ports = pa.array(1024 + index % 50000, pa.int32()).cast(ARROW_SCHEMA.field("dest_port").type)
    table = table.set_column(table.schema.get_field_index("dest_port"), "dest_port", ports)
    pq.write_table(table, target, row_group_size=256 * 1024)


def best(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(root: Path, fmt: str, copy: str, sql: str, params: object, out: Path, repeat: int) -> None:
    """The library and the command writing ``denied`` in ``fmt``, against DuckDB's COPY."""

    def baseline() -> None:
        with connect(root, external_access=True) as engine:
            engine.con.execute(f"COPY ({sql}) TO '{out}' ({copy})", params)

    def library() -> None:
        with connect(root) as engine:
            write_reader(engine.stream("denied"), OutputFormat(fmt), out, io.StringIO())

    command = [sys.executable, "-m", "flowlens", "query", "denied", "--store", str(root), "--format", fmt]

    def to_file() -> None:
        subprocess.run([*command, "--out", str(out)], check=True)

    def to_stdout() -> None:
        with open("/dev/null", "wb") as null:
            subprocess.run(command, check=True, stdout=null)

    runs = [("write_reader(stream('denied'))", library), ("flowlens query denied --out", to_file)]
    if fmt != "parquet":  # parquet needs --out
        runs.append(("flowlens query denied > null", to_stdout))
    base = best(repeat, baseline)
    print(f"{fmt:8s} DuckDB COPY ... ({copy}){'':<{max(0, 28 - len(copy))}}{base:7.2f} s  1.00x")
    for label, run in runs:
        took = best(repeat, run)
        print(f"{fmt:8s} {label:<45}{took:7.2f} s  {took / base:.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="csv,jsonl,parquet", help="formats measured after json")
    args = parser.parse_args()
    root = args.dir / f"output-{args.rows}"
    build(root, args.rows)
    out = args.dir / "output-result.json"

    with connect(root) as engine:
        result_rows = engine.run("denied", limit=None).num_rows
        sql = engine.query("denied").sql
        params = engine.bind("denied", None)
    print(f"`denied` result: {result_rows:,} rows")

    copy_options = {
        "json": "FORMAT json",
        "jsonl": "FORMAT json",
        "csv": "FORMAT csv, HEADER true",
        "parquet": "FORMAT parquet",
    }
    for fmt in ["json", *(f for f in args.formats.split(",") if f and f != "json")]:
        measure(root, fmt, copy_options[fmt], sql, params, out, args.repeat)
    out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
