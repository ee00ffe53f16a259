"""The sample folder on disk: the logs with the cluster's inventory, policies and model beside them.

``flowlens sample`` writes such a folder for any model and options; ``flowlens demo`` writes the
bundled sample cluster (:func:`write_bundled_sample`) when it has no ``sample_logs/`` to read, so
that an installed flowlens runs its demo in any folder. Both go through :func:`write_sample_folder`.
:func:`is_sample_folder` and :func:`sample_days` tell the demo what a folder holds.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from flowlens.errors import UsageError
from flowlens.sample.generate import DEFAULT_DAYS, SampleOptions, SampleSummary, write_sample
from flowlens.sample.inventory import render_inventory
from flowlens.sample.model import ClusterModel, load_model
from flowlens.sample.records import Decide

#: The first interval of the bundled sample (``sample_logs/``): its README regenerates it from here.
BUNDLED_START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def _copy_manifests(src: Path, dst: Path) -> None:
    """Copy the model's policy manifests next to the logs (unless they are already there)."""
    if dst.exists() and dst.resolve() == src.resolve():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and f.suffix in (".yaml", ".yml", ".json"):
            shutil.copyfile(f, dst / f.name)


def write_sample_folder(
    model: ClusterModel, out: Path, options: SampleOptions, decide: Decide | None = None
) -> SampleSummary:
    """Write the logs of every requested format (:func:`write_sample`), then ``inventory.yaml``,
    ``policies/`` and ``cluster.yaml`` (the model itself) into ``out``."""
    summary = write_sample(model, out, options, decide)
    (out / "inventory.yaml").write_text(render_inventory(model), encoding="utf-8")
    if model.policies_dir is not None:
        _copy_manifests(model.policies_dir, out / "policies")
    if model.path is not None:
        target = out / "cluster.yaml"
        if not (target.exists() and target.resolve() == model.path.resolve()):
            shutil.copyfile(model.path, target)
    return summary


def write_bundled_sample(out: Path) -> SampleSummary:
    """The bundled sample cluster's Calico Enterprise logs, inventory and policies, into ``out``.

    The same records as ``sample_logs/enterprise`` (same model, seed and days), in one unrotated
    ``flows.log`` per node: deterministic, whatever today's date.
    """
    options = SampleOptions(start=BUNDLED_START, days=DEFAULT_DAYS)
    return write_sample_folder(load_model(), out, options)


def is_sample_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a sample (its ``enterprise/`` logs)."""
    return (folder / "enterprise").is_dir()


def sample_days(folder: Path) -> tuple[dt.date, dt.date]:
    """The first day of the sample's Enterprise records and the day after its last (UTC): the
    window that holds all of them, whatever today's date."""
    from flowlens.store import duckdb_connection

    files = sorted(str(p) for p in (folder / "enterprise").rglob("flows.log*"))
    if not files:
        raise UsageError(f"{folder}/enterprise holds no flows.log: run `flowlens sample --out {folder}`")
    con = duckdb_connection()
    try:
        first, last = con.execute(
            "SELECT min(start_time), max(start_time) FROM read_json($files, format='newline_delimited', "
            "columns={'start_time': 'BIGINT'})",
            {"files": files},
        ).fetchone() or (None, None)
    finally:
        con.close()
    if first is None or last is None:
        raise UsageError(f"{folder}/enterprise holds no flow records")
    day = dt.datetime.fromtimestamp
    return day(first, dt.UTC).date(), day(last, dt.UTC).date() + dt.timedelta(days=1)
