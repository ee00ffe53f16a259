"""CLI command ``demo``: the main job on the sample cluster, end to end.

The sample is ``./sample_logs`` in a flowlens checkout; anywhere else (after ``pip install``) the
demo generates the same cluster's logs into the folder given with ``--sample``, or into a new
temporary folder, and says where.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from flowlens.cli.common import ReportsOpt, StoreOpt, err, resolve_reports, resolve_store
from flowlens.errors import UsageError


def _run(app: typer.Typer, args: list[str]) -> None:
    """Run one flowlens command in this process, as a user would type it."""
    err("")
    err("$ flowlens " + " ".join(args))
    try:
        app(args, standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


CHECKOUT_SAMPLE = Path("sample_logs")


def _sample_folder(option: Path | None) -> Path:
    """The sample to run on: ``--sample``, else ./sample_logs, else a generated one."""
    from flowlens.sample import is_sample_folder

    if option is None and is_sample_folder(CHECKOUT_SAMPLE):
        return CHECKOUT_SAMPLE
    if option is not None and is_sample_folder(option):
        return option
    if option is not None and option.exists() and (not option.is_dir() or any(option.iterdir())):
        raise UsageError(
            f"--sample {option} is not a sample folder (it has no enterprise/ folder): pass a sample "
            "(`flowlens sample --out DIR` writes one), or a new or empty folder to generate it there"
        )
    from flowlens.cli.sample import fewer_collections
    from flowlens.sample import write_bundled_sample

    where = option if option is not None else Path(tempfile.mkdtemp(prefix="flowlens-demo-"))
    begin = time.perf_counter()
    fewer_collections()
    summary = write_bundled_sample(where)
    err(
        f"flowlens demo: generated the sample cluster ({summary.records} Calico Enterprise flow "
        f"records, {summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC) into {where} "
        f"in {time.perf_counter() - begin:.1f} s"
    )
    return where


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("demo")
    def demo_cmd(
        sample: Annotated[
            Path | None,
            typer.Option(
                help="The sample folder (logs, inventory.yaml, policies/). Default: ./sample_logs in "
                "a flowlens checkout, else a new temporary folder the sample is generated into. A new "
                "or empty folder given here gets the generated sample.",
                show_default=False,
            ),
        ] = None,
        store: StoreOpt = None,
        reports: ReportsOpt = None,
        rows: Annotated[int, typer.Option(help="Rows to show per query.")] = 10,
    ) -> None:
        """The main job on the sample cluster, end to end, in any folder.

        Ingests the sample's Calico Enterprise flow logs, then shows what is denied, what is
        unexpectedly allowed, the least-privilege policy suggested for the production namespace
        (proven by replay against the recorded flows and the policies in force), and writes the
        segmentation coverage report. Works whatever today's date is: every window is the
        sample's own. The report and the suggested policies go into the reports folder.
        """
        from flowlens.sample import sample_days

        sample = _sample_folder(sample)
        target = resolve_store(store)
        reports = resolve_reports(reports)
        first, after = sample_days(sample)
        since, until = first.isoformat(), after.isoformat()
        policies = str(sample / "policies")
        inventory = str(sample / "inventory.yaml")
        s = ["--store", str(target.root)]
        window = ["--since", since, "--until", until]
        suggested = reports / "demo" / "suggested"
        err(f"flowlens demo: the sample cluster in {sample} ({since} .. {until}), store {target.root}")
        _run(app, ["ingest", str(sample / "enterprise"), *s])
        _run(app, ["status", *s])
        _run(app, ["query", "denied", *window, "--limit", str(rows), *s])
        _run(app, ["query", "unexpected-allowed", *window, "--limit", str(rows), *s])
        _run(
            app,
            [
                "suggest",
                "--namespace",
                "production",
                *window,
                "--policies",
                policies,
                "--inventory",
                inventory,
                "--out",
                str(suggested),
                *s,
            ],
        )
        _run(
            app,
            [
                "simulate",
                "--policies",
                policies,
                "--inventory",
                inventory,
                *window,
                "--format",
                "table",
                *s,
            ],
        )
        _run(
            app,
            [
                "report",
                *window,
                "--policies",
                policies,
                "--inventory",
                inventory,
                "--reports",
                str(reports),
                *s,
            ],
        )
        err("")
        err("flowlens demo: done. Outputs:")
        err(f"  store (Parquet, query it with DuckDB or Spark): {target.root}/flows/")
        err(f"  suggested policies for production:              {suggested}/")
        err(
            f"  coverage report (HTML, Markdown, JSON):          {reports}/latest/ (index: {reports}/index.html)"
        )
        err("Next: flowlens queries | flowlens query denied --help | flowlens explain --help")
