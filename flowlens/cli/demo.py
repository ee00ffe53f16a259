"""CLI command ``demo``: the main job on the sample cluster, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowlens.cli.common import StoreOpt, err, resolve_store
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


def _sample_days(sample: Path) -> tuple[str, str]:
    """First day and the day after the last day of the sample's Enterprise logs."""
    import datetime as dt

    from flowlens.store import duckdb_connection

    files = sorted(str(p) for p in (sample / "enterprise").rglob("flows.log*"))
    if not files:
        raise UsageError(f"{sample}/enterprise holds no flows.log: run `flowlens sample --out {sample}`")
    first, last = duckdb_connection().execute(
        "SELECT min(start_time), max(start_time) FROM read_json($files, format='newline_delimited', "
        "columns={'start_time': 'BIGINT'})",
        {"files": files},
    ).fetchone() or (None, None)
    if first is None or last is None:
        raise UsageError(f"{sample}/enterprise holds no flow records")
    day = dt.datetime.fromtimestamp
    return day(first, dt.UTC).date().isoformat(), (
        day(last, dt.UTC).date() + dt.timedelta(days=1)
    ).isoformat()


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("demo")
    def demo_cmd(
        sample: Annotated[
            Path, typer.Option(help="The sample folder: logs, inventory.yaml and policies/.")
        ] = Path("sample_logs"),
        store: StoreOpt = None,
        reports: Annotated[
            Path, typer.Option(help="Where the report and the suggestion are written.")
        ] = Path("reports"),
        rows: Annotated[int, typer.Option(help="Rows to show per query.")] = 10,
    ) -> None:
        """The main job on the bundled sample cluster, end to end.

        Ingests the sample's Calico Enterprise flow logs, then shows what is denied, what is
        unexpectedly allowed, the least-privilege policy suggested for the production namespace
        (proven by replay against the recorded flows and the policies in force), and writes the
        segmentation coverage report. Works whatever today's date is: every window is the
        sample's own.
        """
        if not (sample / "enterprise").is_dir():
            raise UsageError(
                f"no sample at {sample}: run the demo from the flowlens checkout, or pass --sample DIR "
                "(create one with `flowlens sample --out DIR`)"
            )
        target = resolve_store(store)
        since, until = _sample_days(sample)
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
