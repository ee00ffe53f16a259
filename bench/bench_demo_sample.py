"""The sample `flowlens demo` generates where it has no sample_logs/: time against shipping it.

Usage: .venv/bin/python bench/bench_demo_sample.py [--repeat 5]

Timed in the same run, the fastest of ``--repeat`` runs each, wall and CPU seconds:

* ``generate``: :func:`flowlens.sample.write_bundled_sample` into a new folder (38,485 Calico
  Enterprise records, inventory.yaml, policies/ and cluster.yaml), after the CLI's collector
  tuning, as `flowlens demo` does it;
* ``baseline``: what shipping the sample instead would cost each demo: copying the checkout's
  ``sample_logs/`` enterprise logs, inventory, policies and model into a new folder, the gzipped
  rotated files decompressed (the demo ingests either).

Prints both, the ratio generate / baseline, and whether the target is met: generate under 1 s.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flowlens.sample import write_bundled_sample

SAMPLE = Path(__file__).resolve().parents[1] / "sample_logs"


def _copy_bundled(out: Path) -> None:
    for path in sorted((SAMPLE / "enterprise").rglob("flows.log*")):
        target = out / "enterprise" / path.parent.name / path.name.removesuffix(".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        target.write_bytes(gzip.decompress(data) if path.suffix == ".gz" else data)
    shutil.copytree(SAMPLE / "policies", out / "policies")
    for name in ("inventory.yaml", "cluster.yaml"):
        shutil.copyfile(SAMPLE / name, out / name)


def _best(step: Callable[[Path], object], repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            w, c = time.perf_counter(), time.process_time()
            step(Path(d) / "sample")
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    gc.set_threshold(100_000, 50, 50)  # as flowlens.cli.sample.fewer_collections
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    base_wall, base_cpu = _best(_copy_bundled, args.repeat)
    gen_wall, gen_cpu = _best(write_bundled_sample, args.repeat)
    print(f"baseline (copy sample_logs): {base_wall:.3f} s wall, {base_cpu:.3f} s CPU")
    print(f"generate (demo sample):      {gen_wall:.3f} s wall, {gen_cpu:.3f} s CPU")
    print(f"ratio generate / baseline:   {gen_wall / base_wall:.2f} wall, {gen_cpu / base_cpu:.2f} CPU")
    print(f"target generate < 1 s wall:  {'met' if gen_wall < 1.0 else 'NOT met'}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
