"""CLI commands ``ingest``, ``quarantine`` and ``schema``: options and printing; the work is in
:mod:`flowlens.ingest`, :mod:`flowlens.store` and :mod:`flowlens.schema` (``status`` is in
:mod:`flowlens.cli.store`)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from flowlens.cli.common import (
    ClusterNameOpt,
    EngineOpt,
    InputFormatOpt,
    JsonOpt,
    LimitOpt,
    ProgressOpt,
    SparkConfOpt,
    SparkMasterOpt,
    StoreOpt,
    config,
    engine_choice,
    err,
    lifecycle_of,
    resolve_store,
    show_progress,
)
from flowlens.errors import InputError, UsageError
from flowlens.output.text import few, safe_text

# The defaults of flowlens.ingest.IngestOptions (a test keeps them equal): importing the ingest
# package here would load DuckDB and pyarrow for every command.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
DEFAULT_MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_EXPANSION = 200


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("ingest")
    def ingest_cmd(
        paths: Annotated[
            list[str] | None,
            typer.Argument(
                help="Files, directories (recursive), globs, or - for standard input. "
                "Default: the sources in flowlens.yaml.",
                show_default=False,
            ),
        ] = None,
        store: StoreOpt = None,
        fmt: InputFormatOpt = None,
        cluster: ClusterNameOpt = None,
        strict: Annotated[
            bool, typer.Option("--strict", help="Fail on the first bad line and write nothing.")
        ] = False,
        max_line_bytes: Annotated[
            int,
            typer.Option(
                help="Lines longer than this are quarantined as too long (and never held in memory whole)."
            ),
        ] = DEFAULT_MAX_LINE_BYTES,
        max_document_bytes: Annotated[
            int,
            typer.Option(
                help="A whole JSON document (a Whisker or Elasticsearch response) is read into memory: "
                "larger ones are refused."
            ),
        ] = DEFAULT_MAX_DOCUMENT_BYTES,
        max_expansion: Annotated[
            int,
            typer.Option(
                help="A compressed file stops expanding at this many times its size "
                "(files under 64 MiB decompressed are always read)."
            ),
        ] = DEFAULT_MAX_EXPANSION,
        progress: ProgressOpt = None,
        as_json: JsonOpt = False,
        wait_for_lock: Annotated[
            float,
            typer.Option(
                "--wait-for-lock",
                help="Seconds to wait while another writer (a live collector committing) holds the store.",
            ),
        ] = 0.0,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Ingest Calico flow logs into the store, exactly once.

        Reads Calico Enterprise/Cloud flows.log files (plain or gzipped, rotated), Elasticsearch
        exports, and Calico open-source Goldmane and Whisker flows. Content already ingested is
        skipped even under another name; a growing file continues where the last run stopped.
        Bad lines are kept in the store's quarantine with file, line and reason, and the summary
        adds up: lines read = rows stored + quarantined + skipped (already ingested) + ignored.
        A file that cannot be read (unreadable, not a flow log, damaged) is reported and the run
        goes on with the others, then exits with code 3; a gzip file cut short is read up to its
        last whole line, and the rest is read when the complete file arrives.

        Examples:

          flowlens ingest /var/log/calico/flowlogs/

          zcat flows.log.1.gz | flowlens ingest - --cluster prod-eu-1

          flowlens ingest            # the sources listed in flowlens.yaml

          flowlens ingest --engine spark --spark-master 'local[8]' file:///data/flowlogs/

          flowlens ingest --engine spark hdfs://namenode:8020/logs/calico/

          flowlens ingest --engine spark --store hdfs://nn:8020/flowlens /var/log/calico/

        On a Spark cluster one large uncompressed local file is read by several tasks, in
        ranges of 128 MB (--spark-conf spark.flowlens.ingest.splitBytes=256m to change it, 0 to
        read each file in one task; on a local[...] master files are read whole unless it is
        set); gzip files and sources at URLs are read whole.
        """
        import functools

        from flowlens.ingest import IngestOptions, ingest

        choice = engine_choice(engine, spark_master, spark_conf)
        run = ingest
        if choice.name == "spark":
            from flowlens.ingest.spark import ingest_spark

            run = functools.partial(ingest_spark, settings=choice.spark)

        cfg = config()
        sources: list[str | tuple[str, str | None]]
        if paths:
            sources = list(paths)
        elif cfg.sources:
            sources = [(s.path, s.format) for s in cfg.sources]
        else:
            raise UsageError("nothing to ingest: give PATH arguments or list 'sources' in flowlens.yaml")
        # (Spark ingest opens a store at a URL itself, once it knows it may write there)
        target = resolve_store(store, choice, unopened=choice.name == "spark")
        options = IngestOptions(
            format=fmt,
            cluster=cluster,
            default_cluster=cfg.cluster or "default",
            strict=strict,
            max_line_bytes=max_line_bytes,
            max_document_bytes=max_document_bytes,
            max_expansion=max_expansion,
            lifecycle=lifecycle_of(cfg),
        )
        show = show_progress(progress)
        stdin = (
            sys.stdin.buffer
            if any(s == "-" or (isinstance(s, tuple) and s[0] == "-") for s in sources)
            else None
        )
        if show:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(
                TextColumn("ingest"),
                BarColumn(bar_width=None),
                TextColumn(
                    "{task.fields[rows]:,} rows  {task.fields[mb]:.0f} MB  {task.fields[rate]:.1f} MB/s"
                ),
                TimeElapsedColumn(),
                transient=True,
                console=None,
            ) as bar:
                task = bar.add_task("ingest", total=None, rows=0, mb=0.0, rate=0.0)

                def tick(done: int, rows: int) -> None:
                    elapsed = bar.tasks[0].elapsed or 1e-9
                    bar.update(task, rows=rows, mb=done / 1e6, rate=done / 1e6 / elapsed)

                summary = run(target, sources, options, stdin=stdin, progress=tick, lock_wait=wait_for_lock)
        else:
            summary = run(target, sources, options, stdin=stdin, lock_wait=wait_for_lock)
        from flowlens.store import human_bytes

        data = summary.as_dict()
        if as_json:
            typer.echo(json.dumps(data, indent=2, sort_keys=True))
        for line in summary.recovered:
            err(f"note: {line}")
        for path in summary.passed_over:
            err(f"note: passed over {path} (not a flow log)")
        for f in summary.files:
            for w in f.warnings:
                err(f"warning: {f.path}: {w}")
            for reason, n in sorted(f.reasons.items()):
                err(f"quarantined: {f.path}: {n} line(s): {reason}")
        rate = data["bytes_read"] / max(summary.seconds, 1e-9)
        err(
            f"ingested {data['files']} file(s) into {target.location}: {data['lines_read']:,} lines read = "
            f"{data['rows']:,} rows stored + {data['quarantined']:,} quarantined + "
            f"{data['skipped_already_ingested']:,} skipped (already ingested) + {data['ignored']:,} ignored"
        )
        if data["already_stored"]:
            err(
                f"already stored: {data['already_stored']:,} of the lines skipped were found stored "
                "record by record (read past the last matching checkpoint of a copy that diverges from "
                "what is stored, or Elasticsearch hits stored already under the same document id)"
            )
        err(
            f"partitions touched: {few(data['partitions'])}; "
            f"{human_bytes(data['bytes_read'])} in {summary.seconds:.1f} s ({human_bytes(rate)}/s)"
        )
        for line in summary.maintenance:
            err(line)
        if data["quarantined"]:
            err(f"see the quarantined lines with: flowlens quarantine --store {target.location}")
        for problem in summary.errors:
            err(f"error: {problem}")
        if summary.errors:
            raise InputError(
                f"{len(summary.errors)} of {len(summary.files)} file(s) could not be read to the end (listed "
                "above); everything else was ingested"
            )

    @app.command("quarantine")
    def quarantine_cmd(store: StoreOpt = None, limit: LimitOpt = 50, as_json: JsonOpt = False) -> None:
        """List quarantined lines: file, line number, reason and the raw text (JSON: one object per
        line), oldest ingest first."""
        from flowlens.store import read_quarantine, render_quarantine

        target = resolve_store(store)
        lines = read_quarantine(target, limit)
        if not lines:
            err(f"no quarantined lines in {target.root}")
            return
        shown = "jsonl" if as_json else "text"
        typer.echo(safe_text(render_quarantine(lines, shown), shown), nl=False)

    @app.command("schema")
    def schema_cmd(as_json: JsonOpt = False) -> None:
        """Print the canonical flow schema: every column, its type and meaning."""
        from flowlens.schema import render_schema

        typer.echo(render_schema("json" if as_json else "text"), nl=False)
