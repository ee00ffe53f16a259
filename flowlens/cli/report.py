"""CLI command ``flowlens report``: options, progress messages and output; the work is in flowlens.report.

stdout gets the path of the report folder that was written (data, for scripts); stderr gets a
one-line summary for people.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from flowlens.cli.common import (
    EngineOpt,
    InventoryOpt,
    PoliciesOpt,
    ReportFormatsOpt,
    ReportsOpt,
    SinceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    StoreOpt,
    UntilOpt,
    engine_choice,
    err,
    existing_store,
    resolve_reports,
)
from flowlens.errors import CheckFailed, UsageError

HELP = """\
Write a segmentation coverage report for a window into REPORTS/<window>/ (report.html,
report.md, report.json), add it to REPORTS/history.jsonl (same window = replaced), and update
REPORTS/index.html and REPORTS/latest. REPORTS is --reports, else 'reports' in flowlens.yaml,
else ./reports.

Windows: --window day --at 2026-11-25 (default day: yesterday, UTC), --window week --at DATE
(the ISO week holding DATE), or --since 24h / --since ISO [--until ISO] (default: last 24h).
With --policies and --inventory, default deny is also read from the policies in force.

Coverage = share of allowed connections (and bytes) decided by an explicit policy rule rather
than the default profile; ingress from records reported by the destination, egress from records
reported by the source. Every metric and the score are defined inside the report.

Prints the report folder on stdout. Exit code 10 when --fail-under is given and the score is lower.
"""


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("report", help=HELP)
    def report(
        store: StoreOpt = None,
        reports: ReportsOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        window: Annotated[str | None, typer.Option("--window", help="day or week (with --at)")] = None,
        at: Annotated[
            str | None, typer.Option("--at", help="a date in the --window, e.g. 2026-11-25")
        ] = None,
        formats: ReportFormatsOpt = "html,md,json",
        policies: PoliciesOpt = None,
        inventory: InventoryOpt = None,
        top: Annotated[
            int, typer.Option("--top", min=1, help="rows in the top denied flows and policies")
        ] = 20,
        suggestions: Annotated[
            bool,
            typer.Option(
                "--suggestions/--no-suggestions",
                help="Show which namespaces have least-privilege suggestions waiting and what they would "
                "close (one suggest --all-namespaces and its proof over the window).",
            ),
        ] = True,
        fail_under: Annotated[
            float | None, typer.Option("--fail-under", help="exit 10 when the score is below this (0-100)")
        ] = None,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        from flowlens.report import generate, parse_formats, resolve_window

        choice = engine_choice(engine, spark_master, spark_conf)
        chosen_store = existing_store(store, choice)
        if fail_under is not None and not 0 <= fail_under <= 100:
            raise UsageError("--fail-under takes a score between 0 and 100")
        chosen = resolve_window(now=dt.datetime.now(dt.UTC), since=since, until=until, window=window, at=at)
        result = generate(
            chosen_store,
            chosen,
            resolve_reports(reports),
            formats=parse_formats(formats),
            policies=tuple(policies or ()),
            inventory=tuple(inventory or ()),
            top=top,
            suggestions=suggestions,
            engine=choice,
        )
        summary = result.document["summary"]
        score = summary["score"]

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.1f}%"

        err(
            f"flowlens: report {chosen.label}: score {'-' if score is None else f'{score:.1f}'}, "
            f"ingress coverage {pct(summary['ingress']['connection_coverage'])}, "
            f"egress coverage {pct(summary['egress']['connection_coverage'])}, "
            f"{summary['records']:,} records -> {result.folder}"
        )
        for note in result.report.notes:
            err(f"flowlens: note: {note}")
        typer.echo(str(result.folder))
        if fail_under is not None and (score is None or score < fail_under):
            raise CheckFailed(f"coverage score {score} is below --fail-under {fail_under}")
