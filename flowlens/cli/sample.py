"""CLI command ``flowlens sample``: options and messages; the work is in :mod:`flowlens.sample`.

This is the only place that reads the clock for the generator: the default start is computed here
and passed to the library. stdout gets the output folder (data, for scripts); stderr a summary.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
from pathlib import Path
from typing import Annotated

import typer

from flowlens.cli.common import SAMPLE_FORMATS, OutFolderOpt, SampleFormatOpt, err
from flowlens.errors import UsageError

HELP = """\
Generate Calico flow logs for a sample cluster (or your own cluster model) in every format
flowlens reads, plus the cluster's inventory and the policies in force, into OUT:

OUT/enterprise/<node>/flows.log and flows.log.N.gz: Calico Enterprise, each node's Felix file.

OUT/elasticsearch/flows-<date>.ndjson: an Elasticsearch export (search hits).

OUT/goldmane/flows-<date>.ndjson: Goldmane emitter lines (Calico open source).

OUT/whisker/flows-<date>T<hour>.json and flows-watch.sse: Whisker /flows responses and the
last hour as its event stream.

OUT/inventory.yaml (kubectl get namespaces,pods,serviceaccounts -A -o yaml), OUT/policies/,
OUT/cluster.yaml.

The traffic follows the model's connections (5-minute intervals, both reporters, Felix's
aggregation, a daily cycle, internet scans); every record's action and policy trace is what
Calico decides under the model's policies (computed with flowlens' policy engine).

Deterministic: the same --seed, --start and options give the same bytes. By default the data
ends now: --start is --days (default 2) before the current time. With --records and no --days,
the span is as long as the model's traffic needs for that many Felix records (with --start, it
grows until they are written); with both, extra records are internet scans. Prints OUT on stdout.
"""


def _parse_start(text: str) -> dt.datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--start {text!r} is not an ISO date or time (e.g. 2026-11-24 or 2026-11-24T06:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def fewer_collections() -> None:
    """Tune the garbage collector for the generator, in this process only.

    The generator allocates many short-lived lists and no cycles worth collecting: fewer
    collections make it about 7% faster. (Only from the CLI: the library only pauses the collector
    for the length of a suggestion, a proof or a report, and restores it: :mod:`flowlens.pause`.)
    """
    gc.set_threshold(100_000, 50, 50)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("sample", help=HELP)
    def sample(
        out: OutFolderOpt = Path("sample"),
        records: Annotated[
            int | None, typer.Option("--records", min=0, help="number of Felix records to write")
        ] = None,
        records_n: Annotated[
            int | None, typer.Option("-n", min=0, hidden=True, help="deprecated: --records")
        ] = None,
        days: Annotated[
            float | None,
            typer.Option("--days", "-d", help="time span in days (default 2, or as many as --records needs)"),
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="random seed: same seed, same bytes")] = 1,
        fmt: SampleFormatOpt = "enterprise",
        layout: Annotated[
            str,
            typer.Option(
                "--layout",
                help="which optional field groups Enterprise and Elasticsearch records carry, as "
                "a Calico release or Felix setting writes them: "
                "sample (default), felix-defaults, labels-policies, 2025, 2019 or full "
                "(docs: formats, record layouts)",
            ),
        ] = "sample",
        legacy_hits: Annotated[
            bool,
            typer.Option(
                "--legacy-hits",
                help="write policy hits the way Calico up to v3.31 / Enterprise 2025 did "
                "(F1 names, all_policies): the same as --layout 2025",
            ),
        ] = False,
        model_path: Annotated[
            Path | None,
            typer.Option("--model", "-m", help="cluster model YAML (default: the sample cluster)"),
        ] = None,
        start: Annotated[
            str | None,
            typer.Option(
                "--start", help="first interval, ISO date or time in UTC (default: --days before now)"
            ),
        ] = None,
        rotate_mb: Annotated[
            float,
            typer.Option(
                "--rotate-mb", min=0.001, help="rotate each node's flows.log at this size (Felix: 100)"
            ),
        ] = 100.0,
        gzip_out: Annotated[
            bool,
            typer.Option("--gzip", help="gzip the Elasticsearch, Goldmane and Whisker files (.gz)"),
        ] = False,
        gzip_level: Annotated[
            int, typer.Option("--gzip-level", min=1, max=9, help="1 = fast (default), 9 = smallest")
        ] = 1,
        declared: Annotated[
            bool,
            typer.Option(
                "--declared-traces",
                help="use the traces the model declares instead of evaluating its policies",
            ),
        ] = False,
    ) -> None:
        from flowlens.sample import (
            DEFAULT_DAYS,
            SampleOptions,
            declared_decisions,
            estimate_days,
            floor_start,
            load_model,
            write_sample_folder,
        )
        from flowlens.sample.generate import INTERVAL

        if fmt not in SAMPLE_FORMATS:
            raise UsageError(f"--format {fmt!r}: choose one of {', '.join(SAMPLE_FORMATS)}")
        formats = SAMPLE_FORMATS[:-1] if fmt == "all" else (fmt,)
        if records_n is not None:
            if records is not None:
                raise UsageError("give --records once (-n is its old, deprecated spelling)")
            err(
                "flowlens: warning: sample -n is deprecated and will be removed: write --records (elsewhere -n is --namespace)"
            )
            records = records_n
        assert out is not None
        model = load_model(model_path)
        decide = declared_decisions(model) if declared else None
        if days is None and records is None:
            days = DEFAULT_DAYS
        if start is not None:
            first = _parse_start(start)
        else:
            if days is None:
                # The data ends now, so the span is fixed first (whole 5-minute intervals, as many
                # as the model's traffic needs for the records) and the records spread over it:
                # a span grown to fit would run past now.
                estimate = estimate_days(model, records or 0, seed, decide)
                days = math.ceil(estimate * 86400 / INTERVAL) * INTERVAL / 86400
            first = floor_start(dt.datetime.now(dt.UTC), days)
        options = SampleOptions(
            start=first,
            days=days,
            records=records,
            seed=seed,
            formats=formats,
            layout=layout,
            legacy_hits=legacy_hits,
            rotate_bytes=int(rotate_mb * 1024 * 1024),
            compress=gzip_out,
            gzip_level=gzip_level,
        )
        fewer_collections()
        summary = write_sample_folder(model, out, options, decide)
        typer.echo(
            f"flowlens sample: {summary.records} Felix records, {summary.intervals} intervals, "
            f"{summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC, seed {seed}",
            err=True,
        )
        for f, (n, lines_total) in summary.by_format().items():
            what = "responses and stream events" if f == "whisker" else "lines"
            typer.echo(f"  {f}: {n} files, {lines_total} {what}", err=True)
        typer.echo("  inventory.yaml, policies/ and cluster.yaml next to them", err=True)
        typer.echo(str(out))
