"""CLI command ``flowlens report``: options, progress messages and output; the work is in flowlens.report.

stdout gets the path of the report folder that was written (data, for scripts); stderr gets a
one-line summary for people.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from flowlens.cli.common import StoreOpt, err, resolve_store
from flowlens.errors import CheckFailed, StoreError, UsageError

HELP = """\
Write a segmentation coverage report for a window into REPORTS/<window>/ (report.html,
report.md, report.json), add it to REPORTS/history.jsonl (same window = replaced), and update
REPORTS/index.html and REPORTS/latest.

Windows: --window day --at 2026-11-25 (default day: yesterday, UTC), --window week --at DATE
(the ISO week holding DATE), or --since 24h / --since ISO [--until ISO] (default: last 24h).

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
        reports: Annotated[Path, typer.Option("--reports", help="reports folder")] = Path("reports"),
        since: Annotated[
            str | None,
            typer.Option("--since", help="window start: duration before --until (24h, 7d) or ISO time"),
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", help="window end, ISO time (default: now)")
        ] = None,
        window: Annotated[str | None, typer.Option("--window", help="day or week (with --at)")] = None,
        at: Annotated[
            str | None, typer.Option("--at", help="a date in the --window, e.g. 2026-11-25")
        ] = None,
        formats: Annotated[
            str, typer.Option("--format", help="comma-separated: html,md,json")
        ] = "html,md,json",
        policies: Annotated[
            list[Path] | None,
            typer.Option(
                "--policies", help="policy manifests (files or folders), for default deny from policies"
            ),
        ] = None,
        inventory: Annotated[
            list[Path] | None,
            typer.Option("--inventory", help="kubectl get namespaces,pods,serviceaccounts -A -o yaml output"),
        ] = None,
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
    ) -> None:
        from flowlens.report import generate, parse_formats, resolve_window

        chosen_store = resolve_store(store)
        if not chosen_store.root.is_dir():
            raise StoreError(
                f"no flow store at {str(chosen_store.root)!r}; run 'flowlens ingest' first or pass --store"
            )
        if fail_under is not None and not 0 <= fail_under <= 100:
            raise UsageError("--fail-under takes a score between 0 and 100")
        chosen = resolve_window(now=dt.datetime.now(dt.UTC), since=since, until=until, window=window, at=at)
        result = generate(
            chosen_store,
            chosen,
            reports,
            formats=parse_formats(formats),
            policies=tuple(policies or ()),
            inventory=tuple(inventory or ()),
            top=top,
            suggestions=suggestions,
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
