"""Live collection speed: the push receiver's throughput and the Goldmane collector's CPU.

    python bench/bench_collect.py                    # both
    python bench/bench_collect.py --only receiver --flows 1000000
    python bench/bench_collect.py --only goldmane --buckets 20

Receiver: ``flowlens collect serve`` (plain HTTP on 127.0.0.1, its own process) takes emitter
windows of Goldmane lines of the sample cluster (about 650 bytes a flow) from a client in
another process that posts like the emitter (``application/x-ndjson``, keep-alive, waiting for
each 200) over ``--connections`` connections, ``--batch`` flows a request, every body distinct.
Measured: flows committed per second from the first request to the last 200, and the CPU
seconds of the receiver and of the client (from /proc). Baseline in the same run: ``flowlens
ingest`` of the same lines as one file into a fresh store (the file fast path, no HTTP), as
flows per second; the ratio receiver / ingest says what HTTP, group commits and the per-request
work cost. Target: at least 50,000 flows/s on a 2-core machine.

Goldmane collector: ``flowlens collect goldmane`` (its own process) against the tests' Goldmane
(a real gRPC server over mutual TLS, in this process) that rolls a bucket of ``--bucket-flows``
flows over every ``--interval`` seconds (Goldmane: every 15 s). The collector commits every
``--interval`` seconds. Measured: its CPU seconds per bucket, once it has caught up, and how far
behind the stream it is at the end; at Goldmane's pace one bucket takes 15 s, so CPU per bucket
/ 15 s is the share of one core it needs. Target: under 20 % of one core for 10,000 flows per
15-second bucket. Baseline in the same run: the CPU seconds of turning the same flows into lines
alone (converting the messages, nothing else), per bucket.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (and its finished children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def sample_window_lines() -> list[dict]:
    from tests.collect.helpers.fake_goldmane import sample_flow_objects

    return [o for window in sample_flow_objects(12) for o in window]


def make_bodies(objects: list[dict], flows: int, batch: int) -> list[bytes]:
    """``flows`` emitter lines in bodies of ``batch`` flows, every line distinct (its start time)."""
    bodies = []
    start = 1_796_000_000 - 1_796_000_000 % 300
    made = 0
    while made < flows:
        n = min(batch, flows - made)
        lines = []
        for i in range(n):
            obj = objects[(made + i) % len(objects)]
            t = start + ((made + i) // len(objects)) * 15
            lines.append(json.dumps({**obj, "start_time": t, "end_time": t + 15}, separators=(",", ":")))
        bodies.append("\n".join(lines).encode())
        made += n
    return bodies


def _clients(port: int, bodies: list[bytes], connections: int, out: mp.Queue) -> None:
    """The sending process: ``connections`` threads, each with its own keep-alive connection."""
    statuses: list[int] = []
    lock = threading.Lock()

    def one(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        got = []
        for body in share:
            connection.request(
                "POST", "/api/v1/flows/bulk", body=body, headers={"Content-Type": "application/x-ndjson"}
            )
            response = connection.getresponse()
            response.read()
            got.append(response.status)
        connection.close()
        with lock:
            statuses.extend(got)

    threads = [threading.Thread(target=one, args=(bodies[i::connections],)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((statuses, time.perf_counter() - started, time.process_time()))


def start_collector(args: list[str]) -> tuple[subprocess.Popen[bytes], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowlens", *args, "--log-format", "json"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    for raw in proc.stderr:
        event = json.loads(raw)
        if event.get("event") == "start":
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, event
    raise SystemExit("the collector did not start")


def bench_receiver(flows: int, batch: int, connections: int, work: Path) -> None:
    objects = sample_window_lines()
    bodies = make_bodies(objects, flows, batch)
    size = sum(len(b) for b in bodies)
    print(
        f"receiver: {flows:,} flows in {len(bodies)} bodies of {batch:,} ({size / flows:.0f} bytes a flow), "
        f"{connections} connection(s)"
    )

    # baseline: the same lines as one file, through flowlens ingest
    lines = work / "lines.ndjson"
    with open(lines, "wb") as fh:
        for body in bodies:
            fh.write(body + b"\n")
    ingest_store = work / "ingest-store"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flowlens", "ingest", str(lines), "--store", str(ingest_store), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    ingest_seconds = time.perf_counter() - started
    assert json.loads(done.stdout)["rows"] == flows
    ingest_rate = flows / ingest_seconds

    store = work / "serve-store"
    proc, event = start_collector(
        ["collect", "serve", "--listen", "127.0.0.1:0", "--store", str(store), "--commit-every", "0.5"]
    )
    port = event["port"]
    try:
        cpu_before = cpu_seconds(proc.pid)
        out: mp.Queue = mp.Queue()
        client = mp.get_context("fork").Process(target=_clients, args=(port, bodies, connections, out))
        started = time.perf_counter()
        client.start()
        statuses, _, client_cpu = out.get()
        seconds = time.perf_counter() - started
        client.join()
        server_cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert statuses.count(200) == len(bodies), statuses[:10]
    from flowlens.collect.status import describe_collectors
    from flowlens.store import Store

    (serve,) = describe_collectors(Store(store))
    assert serve.totals["rows"] == flows, serve.totals
    rate = flows / seconds
    print(f"  flowlens ingest (same lines, one file):  {ingest_seconds:6.2f} s  {ingest_rate:10,.0f} flows/s")
    print(
        f"  flowlens collect serve (HTTP, 200 each): {seconds:6.2f} s  {rate:10,.0f} flows/s  "
        f"= {rate / ingest_rate:.2f} x ingest"
    )
    print(
        f"  receiver CPU {server_cpu:.1f} s ({server_cpu / seconds * 100:.0f} % of one core), "
        f"client CPU {client_cpu:.1f} s; target >= 50,000 flows/s: {'met' if rate >= 50_000 else 'NOT met'}"
    )


def bench_goldmane(buckets: int, bucket_flows: int, interval: float, work: Path) -> None:
    from flowlens.collect.buckets import bucket_of
    from flowlens.collect.goldmane_json import flow_digest, flow_line
    from tests.collect.helpers.certs import make_pki
    from tests.collect.helpers.fake_goldmane import BUCKET, FakeGoldmane, GoldmaneServer
    from tests.collect.helpers.fake_goldmane import bucket_flows as to_flows
    from tests.collect.helpers.procs import goldmane_args

    objects = sample_window_lines()
    pki = make_pki(work / "pki")

    def bucket(b: int, i: int) -> list:
        chosen = []
        for j in range(bucket_flows):
            obj = dict(objects[j % len(objects)])
            key = dict(obj["Key"])
            key["source_name"] = f"{key.get('source_name', '')}-{j}"  # every flow key distinct
            chosen.append({**obj, "Key": key})
        return to_flows(chosen, b)

    fake = FakeGoldmane({}, bucket_of(int(time.time())) - 2 * BUCKET)
    server = GoldmaneServer(fake, pki).start()
    prepared = [bucket(0, i) for i in range(buckets)]  # times set as each is rolled over
    # baseline: converting the same messages to lines, nothing else
    started = time.process_time()
    for flows in prepared[:3]:
        for f in flows:
            flow_line(f)
            flow_digest(f)
    convert_cpu = (time.process_time() - started) / 3

    store = work / "goldmane-store"
    proc, _ = start_collector(
        goldmane_args(server.address, pki, store, commit_every=interval, commit_flows=10 * bucket_flows)
    )
    try:
        time.sleep(3)  # connected, nothing to list
        cpu_start = cpu_seconds(proc.pid)
        started = time.perf_counter()
        # Goldmane streams the bucket that ended 15 s ago; buckets follow each other faster here
        fake.next_stream = bucket_of(int(time.time())) - 2 * BUCKET
        for flows in prepared:
            for f in flows:
                f.start_time, f.end_time = fake.next_stream, fake.next_stream + BUCKET
            fake.rollover(flows)
            time.sleep(interval)
        deadline = time.monotonic() + 300
        from flowlens.collect.status import describe_collectors
        from flowlens.store import Store

        while time.monotonic() < deadline:
            found = describe_collectors(Store(store))
            if found and found[0].totals.get("rows", 0) >= buckets * bucket_flows:
                break
            time.sleep(0.2)
        behind = time.monotonic() - (deadline - 300)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid) - cpu_start  # every bucket received and committed
        rows = describe_collectors(Store(store))[0].totals.get("rows", 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        server.stop()
    per_bucket = cpu / buckets
    print(f"goldmane: {buckets} buckets of {bucket_flows:,} flows, one every {interval} s (Goldmane: 15 s)")
    print(
        f"  collector CPU {cpu:.1f} s in {wall:.1f} s = {per_bucket:.2f} s per bucket "
        f"= {per_bucket / 15 * 100:.1f} % of one core at Goldmane's pace (target < 20 %)"
    )
    print(
        f"  baseline: converting a bucket's messages to lines alone {convert_cpu:.2f} s CPU "
        f"({per_bucket / convert_cpu:.1f} x)"
    )
    print(
        f"  stored {rows:,} of {buckets * bucket_flows:,} flows; caught up {behind:.1f} s after the last bucket"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("receiver", "goldmane"))
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--buckets", type=int, default=20)
    parser.add_argument("--bucket-flows", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    try:
        if args.only in (None, "receiver"):
            bench_receiver(args.flows, args.batch, args.connections, work)
        if args.only in (None, "goldmane"):
            bench_goldmane(args.buckets, args.bucket_flows, args.interval, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
