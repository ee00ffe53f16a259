"""Measurements behind the screening's defaults (``flowlens suggest``'s held-back shapes).

For the bundled sample cluster (two days of ``sample_logs/enterprise``) and three real
applications' call graphs with their platform traffic (Online Boutique, Sock Shop, bookinfo on
Istio: ``tests/suggest/helpers/apps.py``), prints how close legitimate edges come to each threshold:

* the fewest bytes per connection of an edge with few connections (``--probe-bytes`` must stay
  below it), and the fewest of any edge;
* the most ports one source reaches on one destination, and the most of them seen in a single
  interval (``--scan-ports`` must stay above it);
* the most destinations one source reaches on one port, and the most with tiny connections
  (``--sweep-hosts``);
* how many edges are held back with the defaults (the false positives), and whether the issue's
  port scan, a 12-host sweep and a one-off probe injected into the same traffic are held back;
* the time of the screening and of the activity query against the ``suggest-edges`` load.

    .venv/bin/python bench/bench_screen.py
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the application topologies live with the tests

from flowlens.engine import connect  # noqa: E402
from flowlens.ingest import ingest  # noqa: E402
from flowlens.store import Store  # noqa: E402
from flowlens.suggest import load_activity, load_reports, namespaces_in_window  # noqa: E402
from flowlens.suggest.edges import EdgeStats  # noqa: E402
from flowlens.suggest.observed import DEFAULT_LABEL_KEYS  # noqa: E402
from flowlens.suggest.screen import ScreenOptions, screen  # noqa: E402
from tests.factories import write_store  # noqa: E402
from tests.suggest.helpers import apps, pod_side  # noqa: E402
from tests.suggest.helpers.probes import probe_rows  # noqa: E402


def _per_conn(s: EdgeStats) -> float:
    return s.bytes / s.connections if s.bytes else float("inf")


def measure(name: str, store: Path, namespaces: list[str] | None = None) -> dict[str, Any]:
    with connect(store) as engine:
        targets = namespaces or namespaces_in_window(engine)
        t0 = time.perf_counter()
        reports = load_reports(engine, targets)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        activity = load_activity(engine, reports, targets, DEFAULT_LABEL_KEYS)
        t_activity = time.perf_counter() - t0
    t0 = time.perf_counter()
    screening = screen(reports, DEFAULT_LABEL_KEYS, ScreenOptions(), activity=activity)
    t_screen = time.perf_counter() - t0
    edges = {e: s for e, s in screening.edges.items() if s.verdict == "allow"}
    few = [_per_conn(s) for s in edges.values() if s.connections <= ScreenOptions().probe_connections]
    pair_ports: dict[tuple[object, object], int] = defaultdict(int)
    pair_once: dict[tuple[object, object], int] = defaultdict(int)
    port_dests: dict[tuple[object, object], int] = defaultdict(int)
    port_tiny: dict[tuple[object, object], int] = defaultdict(int)
    for e, s in edges.items():
        if e.port.port is None:
            continue
        pair_ports[(e.source, e.dest)] += 1
        if activity.seen(e).intervals <= 1:
            pair_once[(e.source, e.dest)] += 1
        port_dests[(e.source, e.port)] += 1
        if _per_conn(s) <= ScreenOptions().probe_bytes:
            port_tiny[(e.source, e.port)] += 1
    return {
        "name": name,
        "edges": len(edges),
        "window": f"{activity.window_days} days, {activity.window_intervals} intervals",
        "min bytes/conn (<=2 conns)": _least(few),
        "min bytes/conn (any)": _least([_per_conn(s) for s in edges.values()]),
        "max ports per pair": max(pair_ports.values(), default=0),
        "max ports per pair in 1 interval": max(pair_once.values(), default=0),
        "max destinations per port": max(port_dests.values(), default=0),
        "max tiny destinations per port": max(port_tiny.values(), default=0),
        "held back": [g.text for g in screening.held_back],
        "times": (t_load, t_activity, t_screen),
    }


def _least(values: list[float]) -> str:
    finite = [v for v in values if v != float("inf")]
    return f"{min(finite):.0f}" if finite else "none"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = []
        t0 = time.perf_counter()
        ingest(Store(root / "sample"), [str(ROOT / "sample_logs" / "enterprise")])
        print(f"ingested the sample in {time.perf_counter() - t0:.1f} s")
        results.append(measure("sample cluster (2 days)", root / "sample"))
        for name, make in sorted(apps.TOPOLOGIES.items()):
            topo = make()
            rows = list(apps.rows(topo))
            store = write_store(root / name, rows)
            results.append(measure(f"{name} (+ platform)", store, list(topo.namespaces)))
            # The same traffic with the scan, a sweep and a one-off probe injected.
            src_ref = next(
                c.source for c in topo.calls if "/" in c.source and c.source.split("/")[0] in topo.namespaces
            )
            ns, app = src_ref.split("/")
            w = topo.workload(src_ref)
            group, labels = w.groups()[0]
            source = pod_side("source", app, ns)
            source.update(source_name_aggr=group, source_labels=labels)
            others = [x for x in topo.workloads if x.namespace in topo.namespaces and x.name != app]
            at = apps.DAY0 + dt.timedelta(hours=15)
            extra = []
            target_group, target_labels = others[0].groups()[0]
            dest = pod_side("dest", others[0].name, others[0].namespace)
            dest.update(dest_name_aggr=target_group, dest_labels=target_labels)
            extra += probe_rows(source, dest, range(20001, 20206), at=at)
            for other in others:
                g, lab = other.groups()[0]
                d = pod_side("dest", other.name, other.namespace)
                d.update(dest_name_aggr=g, dest_labels=lab)
                extra += probe_rows(source, d, [22], at=at)
            extra += probe_rows(source, dest, [31337], at=at + dt.timedelta(hours=3))
            injected = write_store(root / f"{name}-probed", rows + extra)
            probed = measure(f"{name} + probes", injected, list(topo.namespaces))
            probed["held back"] = [t.split(": ")[-1] for t in probed["held back"]]
            results.append(probed)
    keys = [k for k in results[0] if k not in ("name", "held back", "times")]
    for r in results:
        print(f"\n{r['name']}")
        for k in keys:
            print(f"  {k:34} {r[k]}")
        print(f"  {'held back with the defaults':34} {len(r['held back'])}")
        for text in r["held back"]:
            print(f"    {text}")
        load, activity, screening = r["times"]
        print(
            f"  {'time':34} load {load:.2f} s, activity {activity:.2f} s ({activity / load:.2f}x the load), "
            f"screening {screening:.3f} s"
        )


if __name__ == "__main__":
    main()
