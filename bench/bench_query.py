"""Benchmark: the `denied` and `unexpected-allowed` named queries on a large store, against jq.

Builds (once, cached under --dir) a synthetic store of --records flow records with realistic
cardinalities: 40 namespaces with 8-12 workloads each, hosts, network sets, private and public
networks; a few thousand distinct edges drawn with a skewed (Zipf-like) weight; both reporters for
traffic between pods; ~6 % denied; policy traces with pass hits, Kubernetes policies, namespace
profiles, end-of-tier denies and staged denies in the pending trace.

The hourly summaries that `flowlens ingest` writes beside each flows file are written once (and
their cost printed). Then times each query through `flowlens.engine` (best of --repeat runs,
--threads DuckDB threads): `unexpected-allowed` over the whole store from the summaries and from
the records alone, over three whole days, and over 24 hours that start and end mid-hour (the
partial hours at the edges are read from the records). Then it runs jq over the same records written as Calico flows.log JSON lines: jq streams the
file, keeps the same records and aggregates them by the same key (a `reduce`, no slurping). jq is
timed on the first --jq-lines records and scaled linearly to the full record count (writing and
parsing the full 10 M lines as JSON takes too long to repeat); the output says so.

Usage:  .venv/bin/python bench/bench_query.py --records 10000000 --dir bench/.data
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowlens.engine import connect  # noqa: E402
from flowlens.formats.hits import parse_hit  # noqa: E402
from flowlens.schema import ARROW_SCHEMA  # noqa: E402
from flowlens.store import Store  # noqa: E402
from flowlens.store.summaries import summarise_store  # noqa: E402

DAYS = 7
DAY0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ROW_GROUP = 256 * 1024  # as flowlens.ingest writes


def _endpoints(rng: np.random.Generator) -> dict[str, list[dict]]:
    words = [
        "api",
        "web",
        "db",
        "cache",
        "worker",
        "auth",
        "search",
        "queue",
        "billing",
        "mail",
        "report",
        "ingest",
    ]
    namespaces = [f"team-{i:02d}" for i in range(37)] + ["kube-system", "monitoring", "ingress-nginx"]
    weps = []
    for ns in namespaces:
        for w in rng.choice(words, size=int(rng.integers(8, 13)), replace=False):
            h = "".join(rng.choice(list("0123456789abcdef"), size=9))
            weps.append(
                {
                    "type": "wep",
                    "namespace": ns,
                    "name": f"{w}-{h}-*",
                    "labels": [("app", str(w)), ("team", ns), ("pod-template-hash", h)],
                }
            )
    heps = [
        {"type": "hep", "namespace": "-", "name": f"node-{i:02d}", "labels": [("role", "node")]}
        for i in range(20)
    ]
    nsets = [
        {"type": "ns", "namespace": "-", "name": f"global-set-{i}", "labels": [("kind", "partner")]}
        for i in range(5)
    ] + [{"type": "ns", "namespace": namespaces[i], "name": f"set-{i}", "labels": []} for i in range(5)]
    nets: list[dict] = [{"type": "net", "namespace": "-", "name": n, "labels": []} for n in ("pub", "pvt")]
    return {"wep": weps, "hep": heps, "ns": nsets, "net": nets}


def _edges(rng: np.random.Generator, n_connections: int) -> pa.Table:
    """Distinct record templates: one per (connection pattern, reporter), with traces."""
    eps = _endpoints(rng)
    weps = eps["wep"]
    rows: list[dict] = []

    def trace(*hits: str) -> list[dict]:
        return [parse_hit(h).as_row() for h in hits]

    for _ in range(n_connections):
        kind = rng.random()
        src = weps[int(rng.integers(len(weps)))]
        if kind < 0.62:
            same = [w for w in weps if w["namespace"] == src["namespace"] and w is not src]
            dst = same[int(rng.integers(len(same)))] if same else src
        elif kind < 0.74:
            dst = weps[int(rng.integers(len(weps)))]
        elif kind < 0.82:
            dst = eps["net"][0]
        elif kind < 0.86:
            dst = eps["net"][1]
        elif kind < 0.91:
            src, dst = eps["net"][0], weps[int(rng.integers(len(weps)))]
        elif kind < 0.95:
            dst = eps["hep"][int(rng.integers(20))]
        else:
            dst = eps["ns"][int(rng.integers(10))]
        proto = "udp" if rng.random() < 0.1 else "tcp"
        port = int(rng.choice([53, 80, 443, 5432, 6379, 8080, 9090, 22, 3306, 9200]))
        sns = src["namespace"] if src["type"] == "wep" else dst["namespace"]
        dns = dst["namespace"] if dst["namespace"] != "-" else sns
        egress_ok = trace(
            "0|security|gnp:security.baseline|pass|0", f"1|default|np:{sns}/default.egress|allow|1"
        )
        egress_profile = trace(f"0|__PROFILE__|pro:kns.{sns}|allow|0")
        ingress_ok = trace(f"0|default|knp:{dns}/allow-{dst['name'][:3]}|allow|0")
        ingress_profile = trace(f"0|__PROFILE__|pro:kns.{dns}|allow|0")
        deny_eot = trace(
            "0|security|gnp:security.baseline|pass|0", f"1|default|knp:{dns}/default-deny|deny|-1"
        )
        deny_rule = trace("0|security|gnp:security.block-list|deny|3")
        staged = trace(f"0|default|sknp:{dns}/lockdown|deny|-1")
        r = rng.random()
        # (reporter, action, enforced, pending) records this connection produces.
        records = []
        src_reports = src["type"] in ("wep", "hep")
        dst_reports = dst["type"] in ("wep", "hep")
        egress = egress_profile if rng.random() < 0.35 else egress_ok
        if r < 0.03 and src_reports:
            records.append(("src", "deny", deny_rule, deny_rule))
        else:
            if src_reports:
                records.append(("src", "allow", egress, egress))
            if dst_reports:
                if r < 0.06:
                    records.append(("dst", "deny", deny_eot, deny_eot))
                else:
                    ing = ingress_profile if rng.random() < 0.3 else ingress_ok
                    records.append(("dst", "allow", ing, staged if rng.random() < 0.04 else ing))
        for reporter, action, enforced, pending in records:
            rows.append(
                {
                    "source_name_aggr": src["name"],
                    "source_namespace": src["namespace"],
                    "source_type": src["type"],
                    "source_labels": src["labels"],
                    "dest_name_aggr": dst["name"],
                    "dest_namespace": dst["namespace"],
                    "dest_type": dst["type"],
                    "dest_labels": dst["labels"],
                    "dest_port": port,
                    "proto": proto,
                    "action": action,
                    "reporter": reporter,
                    "enforced_policies": enforced,
                    "pending_policies": pending,
                    "host": f"node-{int(rng.integers(20)):02d}",
                }
            )
    fields = {name: ARROW_SCHEMA.field(name).type for name in rows[0]}
    return pa.Table.from_pylist(rows, schema=pa.schema([pa.field(k, v) for k, v in fields.items()]))


def build_store(root: Path, records: int, layout: str, seed: int = 42) -> None:
    """Write the synthetic store under ``root`` (replacing a half-built one).

    Files are written the way ``flowlens.ingest`` writes them (one file per date partition,
    pyarrow, zstd, row groups of 256 Ki rows). ``layout`` 'by-action' additionally keeps allowed
    and denied rows in separate row groups, so ``action = 'deny'`` skips the allowed row groups
    by their statistics.
    """
    if root.exists():
        shutil.rmtree(root)
    rng = np.random.default_rng(seed)
    edges = _edges(rng, 3000)
    weights = 1.0 / np.arange(1, edges.num_rows + 1) ** 1.1
    weights = rng.permutation(weights / weights.sum())
    per_day = records // DAYS
    written = 0
    for day in range(DAYS):
        n_day = per_day if day < DAYS - 1 else records - written
        part = root / "flows" / f"date={(DAY0 + dt.timedelta(days=day)).date().isoformat()}"
        part.mkdir(parents=True)
        writer = pq.ParquetWriter(part / "bench.parquet", ARROW_SCHEMA, compression="zstd")
        for start in range(0, n_day, ROW_GROUP):
            n = min(ROW_GROUP, n_day - start)
            # time-ordered: Felix writes records in time order and a cron ingest takes the
            # newest minutes, so a row group covers a short span; otherwise any time of the day.
            span = (start * 288 // n_day, max((start + n) * 288 // n_day, start * 288 // n_day + 1))
            table = _chunk(rng, edges, weights, n, day, start, span if layout == "time-ordered" else (0, 288))
            if layout in ("by-action", "time-ordered"):
                for action in ("allow", "deny"):
                    writer.write_table(
                        table.filter(pc.equal(table["action"], action)), row_group_size=ROW_GROUP
                    )
            else:
                writer.write_table(table, row_group_size=ROW_GROUP)
            written += n
        writer.close()
    (root / "BUILT").write_text(str(records))


def _chunk(
    rng: np.random.Generator,
    edges: pa.Table,
    weights: np.ndarray,
    n: int,
    day: int,
    start: int,
    slots: tuple[int, int] = (0, 288),
) -> pa.Table:
    pick = pa.array(rng.choice(edges.num_rows, size=n, p=weights))
    chunk = edges.take(pick)
    slot = np.sort(rng.integers(slots[0], slots[1], size=n)) * 300 + int(
        (DAY0 + dt.timedelta(days=day)).timestamp()
    )
    starts = pa.array(slot * 1_000_000, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    ends = pa.array((slot + 300) * 1_000_000, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    nflows = rng.integers(1, 6, size=n)
    started = np.minimum(nflows, rng.integers(0, 4, size=n))
    cols: dict[str, pa.Array] = {
        "cluster": pa.array(["bench"] * n),
        "start_time": starts,
        "end_time": ends,
        "source_name": pa.array(["-"] * n),
        "dest_name": pa.array(["-"] * n),
        "dest_service_namespace": pa.array(["-"] * n),
        "dest_service_name": pa.array(["-"] * n),
        "dest_service_port": pa.array(["-"] * n),
        "bytes_in": pa.array(rng.lognormal(8, 2, size=n).astype(np.int64)),
        "bytes_out": pa.array(rng.lognormal(7, 2, size=n).astype(np.int64)),
        "packets_in": pa.array(rng.integers(1, 500, size=n)),
        "packets_out": pa.array(rng.integers(1, 500, size=n)),
        "num_flows": pa.array(nflows),
        "num_flows_started": pa.array(started),
        "num_flows_completed": pa.array(np.minimum(started, rng.integers(0, 4, size=n))),
        "format": pa.array(["enterprise"] * n),
        "ingest_id": pa.array(["bench"] * n),
        "source_file": pa.array([f"flows-{day}.log"] * n),
        "source_line": pa.array(np.arange(start + 1, start + n + 1)),
    }
    arrays = []
    for field in ARROW_SCHEMA:
        if field.name in cols:
            arrays.append(cols[field.name].cast(field.type))
        elif field.name in edges.column_names:
            arrays.append(chunk.column(field.name).combine_chunks())
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def write_json(store: Path, out: Path, lines: int) -> None:
    """The first ``lines`` records of the store as Calico flows.log JSON lines (Felix's shape)."""
    import duckdb

    files = sorted(str(p) for p in (store / "flows").glob("date=*/*.parquet"))
    con = duckdb.connect()
    rel = con.read_parquet(files).limit(lines)
    con.register("src", rel)
    labels = "{{'labels': list_transform(map_entries({0}), lambda e: e.key || '=' || e.value)}}"
    con.execute(
        f"""COPY (SELECT epoch(start_time)::BIGINT AS start_time, epoch(end_time)::BIGINT AS end_time,
            source_ip, source_name, source_name_aggr, source_namespace, source_port, source_type,
            {labels.format("source_labels")} AS source_labels,
            dest_ip, dest_name, dest_name_aggr, dest_namespace, dest_port, dest_type,
            {labels.format("dest_labels")} AS dest_labels,
            dest_service_namespace, dest_service_name, dest_service_port, dest_service_port_num,
            proto, action, reporter,
            {{'enforced_policies': list_transform(enforced_policies, lambda h: h.hit),
              'pending_policies': list_transform(pending_policies, lambda h: h.hit)}} AS policies,
            bytes_in, bytes_out, num_flows, num_flows_started, num_flows_completed,
            packets_in, packets_out, 0 AS http_requests_allowed_in, 0 AS http_requests_denied_in,
            '-' AS process_name, host
          FROM src) TO '{out}' (FORMAT JSON)"""
    )
    con.close()


_JQ_ENDPOINT = (
    'def ep($t; $ns; $n): if ($t == "wep" or $t == "ns") and $ns != "-" then $ns + "/" + $n else $n end;\n'
    'def lasthit($l): ($l // []) | map(split("|")) | max_by(.[0] | tonumber);\n'
    "def add($k; $r): .[$k].records += 1 | .[$k].connections += $r.num_flows_started\n"
    "  | .[$k].bytes += ($r.bytes_in + $r.bytes_out)\n"
    "  | .[$k].first = ([.[$k].first // $r.start_time, $r.start_time] | min)\n"
    "  | .[$k].last = ([.[$k].last // $r.end_time, $r.end_time] | max);\n"
)

JQ_DENIED = (
    _JQ_ENDPOINT
    + 'reduce (inputs | select(.action == "deny")) as $r ({};\n'
    + "  lasthit($r.policies.enforced_policies) as $h\n"
    + "  | ([ep($r.source_type; $r.source_namespace; $r.source_name_aggr), $r.source_type,\n"
    + "      ep($r.dest_type; $r.dest_namespace; $r.dest_name_aggr), $r.dest_type, $r.proto,\n"
    + '      ($r.dest_port | tostring), $r.reporter, $h[1], $h[2], $h[4]] | map(. // "") | join("\\t")) as $k\n'
    + "  | add($k; $r))\n"
    + "| length"
)

JQ_UNEXPECTED = (
    _JQ_ENDPOINT
    + 'reduce (inputs | select(.action == "allow" and (.reporter == "src" or .reporter == "dst"))) as $r ({};\n'
    + "  lasthit($r.policies.enforced_policies) as $e | lasthit($r.policies.pending_policies) as $p\n"
    + "  | ep($r.source_type; $r.source_namespace; $r.source_name_aggr) as $s\n"
    + "  | ep($r.dest_type; $r.dest_namespace; $r.dest_name_aggr) as $d\n"
    + '  | [ (if $e[1] == "__PROFILE__" then "default-allow" else empty end),\n'
    + '      (if $s == "pub" and $r.dest_type == "wep" and $r.reporter == "dst" then "public-ingress" else empty end),\n'
    + '      (if $d == "pub" and ($r.source_type == "wep" or $r.source_type == "hep") and $r.reporter == "src"'
    + ' then "public-egress" else empty end),\n'
    + '      (if $r.source_type == "wep" and $r.dest_type == "wep" and $r.source_namespace != $r.dest_namespace'
    + ' and $r.reporter == "dst" then "cross-namespace" else empty end),\n'
    + '      (if ($p[3] // "") == "deny" then "staged-deny" else empty end),\n'
    + '      (if $r.dest_type == "hep" and $r.reporter == "dst" then "host-endpoint" else empty end) ] as $cats\n'
    + "  | reduce $cats[] as $c (.; add(([$c, $s, $d, $r.proto, ($r.dest_port | tostring), $r.reporter, $e[2]]"
    + ' | map(. // "") | join("\\t")); $r)))\n'
    + "| length"
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_query(
    store: Path,
    name: str,
    threads: int,
    repeat: int,
    summaries: bool = True,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> tuple[float, float, int]:
    """Best wall time and best CPU time (user + system, all threads) of ``repeat`` runs.

    The CPU time hardly depends on what else runs on the machine; on an idle machine the wall
    time is about CPU time / threads.
    """
    best = best_cpu = float("inf")
    rows = 0
    for _ in range(repeat):
        since, until = window or (None, None)
        with connect(store, threads=threads, summaries=summaries, since=since, until=until) as engine:
            c0, t0 = _cpu(), time.perf_counter()
            table = engine.run(name)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, _cpu() - c0)
            rows = table.num_rows
    return best, best_cpu, rows


def summarise(store: Path, threads: int) -> float:
    """Write the hourly summaries ``flowlens ingest`` writes beside each flows file (once); the
    seconds it took, or 0.0 when they existed."""
    t0 = time.perf_counter()
    done = summarise_store(Store(store), threads)
    return time.perf_counter() - t0 if done else 0.0


def time_jq(program: str, json_file: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    result = subprocess.run(["jq", "-n", program, str(json_file)], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--layout",
        nargs="+",
        choices=["mixed", "by-action", "time-ordered"],
        default=["time-ordered", "by-action"],
        help="row-group layouts to measure: time-ordered (allow/deny row groups apart, records in "
        "time order, as ingest writes Felix's logs), by-action (the same, but every row group "
        "spans the whole day: a bulk import of unordered records), mixed (allowed and denied "
        "rows in the same row groups, as before flowlens 0.1)",
    )
    parser.add_argument("--jq-lines", type=int, default=1_000_000, help="records jq reads (0: skip jq)")
    args = parser.parse_args()

    print(f"load average before the runs: {', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores)")
    results: dict[tuple[str, str], float] = {}
    first_store = None
    for layout in args.layout:
        store = args.dir / f"store-{args.records}-{layout}"
        first_store = first_store or store
        if not (store / "BUILT").exists():
            print(f"building a {args.records:,}-record store in {store} (once) ...", file=sys.stderr)
            t0 = time.perf_counter()
            build_store(store, args.records, layout)
            print(f"  built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        size = sum(p.stat().st_size for p in (store / "flows").rglob("*.parquet"))
        print(
            f"store ({layout} row groups): {args.records:,} records, {size / 1e6:.0f} MB Parquet, "
            f"{args.threads} DuckDB threads, best of {args.repeat}"
        )
        built = summarise(store, args.threads)
        if built:
            print(
                f"  wrote the hourly summaries in {built:.1f} s (a backfill from the Parquet files; ingest summarises the rows in memory as it writes them)"
            )
        summary_size = sum(p.stat().st_size for p in (store / "summary").rglob("*.parquet"))
        print(f"  hourly summaries: {summary_size / 1e6:.0f} MB")
        whole_days = (DAY0 + dt.timedelta(days=2), DAY0 + dt.timedelta(days=5))
        unaligned = (DAY0 + dt.timedelta(days=2, minutes=35), DAY0 + dt.timedelta(days=3, minutes=35))
        runs = [
            ("denied", 1.0, True, None),
            ("unexpected-allowed", 2.0, True, None),
            ("unexpected-allowed", 2.0, False, None),
            ("unexpected-allowed", 2.0, True, whole_days),
            ("unexpected-allowed", 2.0, True, unaligned),
        ]
        for name, target, summaries, window in runs:
            seconds, cpu, rows = time_query(store, name, args.threads, args.repeat, summaries, window)
            how = ("summaries" if summaries else "records only") + (
                "" if window is None else f", {window[0]:%d %H:%M}..{window[1]:%d %H:%M}"
            )
            if summaries and window is None:
                results[(layout, name)] = seconds
            verdict = "ok" if seconds < target else "OVER TARGET"
            print(
                f"  {name:19s} {how:33s} {seconds:7.3f} s wall, {cpu:7.3f} s CPU  "
                f"({rows} rows; target < {target:.0f} s: {verdict})"
            )

    if args.jq_lines <= 0 or shutil.which("jq") is None:
        print("jq: skipped" if args.jq_lines <= 0 else "jq: not installed (apt-get install -y jq)")
        return
    lines = min(args.jq_lines, args.records)
    json_file = args.dir / f"flows-{args.records}-{lines}.json"
    if not json_file.exists():
        print(f"writing {lines:,} records as flows.log JSON for jq ...", file=sys.stderr)
        assert first_store is not None
        write_json(first_store, json_file, lines)
    print(
        f"jq: {lines:,} JSON lines ({json_file.stat().st_size / 1e6:.0f} MB), scaled x{args.records / lines:.1f}"
    )
    for name, program in (("denied", JQ_DENIED), ("unexpected-allowed", JQ_UNEXPECTED)):
        seconds, groups = time_jq(program, json_file)
        scaled = seconds * args.records / lines
        print(
            f"jq {name:17s} {seconds:7.1f} s on {lines:,} lines ({groups} groups) -> {scaled:7.1f} s scaled to {args.records:,}"
        )
        for layout in args.layout:
            ratio = scaled / results[(layout, name)]
            verdict = "ok" if ratio >= 100 else "BELOW TARGET"
            print(f"  flowlens ({layout} row groups) is {ratio:,.0f}x faster (target >= 100x: {verdict})")


if __name__ == "__main__":
    main()
