"""CLI commands about the store itself: ``status``, ``verify``, ``repair``, ``compact``, ``prune``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from flowlens.cli.common import (
    EngineOpt,
    JsonOpt,
    ProgressOpt,
    SinceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    StoreOpt,
    UntilOpt,
    config,
    engine_choice,
    err,
    existing_store,
    lifecycle_of,
    resolve_store,
    show_progress,
    window,
)
from flowlens.errors import StoreDamagedError, UsageError
from flowlens.output.text import visible_lines

if TYPE_CHECKING:
    from flowlens.engine.choice import EngineChoice
    from flowlens.store import Store, StoreWriter


def _writer(target: Store, choice: EngineChoice) -> AbstractContextManager[StoreWriter]:
    """The writer of ``target``: a local store's (:func:`flowlens.store.open_writer`), or, for a
    store at a URL opened on Spark, the URL writer (its lock, recovery and commits through Hadoop:
    :mod:`flowlens.store.hadoop_commit`), once its file system is known to rename atomically."""
    from flowlens.store import open_writer

    if not target.files.remote:
        return open_writer(target)
    from flowlens.engine.spark import spark_session
    from flowlens.store.hadoop_commit import open_for_writing, open_url_writer

    return open_url_writer(open_for_writing(target, spark_session(choice.spark)))


@contextmanager
def _progress(label: str, option: bool | None) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr (--progress, else when it is a terminal); the callback to feed it."""
    if not show_progress(option):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick


def _dates(date: str | None, since: str | None, until: str | None) -> tuple[dt.date | None, dt.date | None]:
    """The first and last day ``--date`` or ``--since``/``--until`` name (None: unbounded)."""
    if date:
        if since or until:
            raise UsageError("give --date or --since/--until, not both")
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise UsageError(f"--date: give a day as YYYY-MM-DD, not {date!r}") from None
        return day, day
    start, end = window(since, until)
    first = start.date() if start is not None else None
    last = None
    if end is not None:
        last = end.date() if end.time() != dt.time(0) else end.date() - dt.timedelta(days=1)
    return first, last


#: Lines of one kind of problem ``repair`` lists on stderr before it counts the rest.
SHOWN_PER_PROBLEM = 10


def _problem_code(line: str) -> str | None:
    """The code of a problem line (``missing: flows/date=…/x.parquet: what``), else None."""
    code, sep, rest = line.partition(": ")
    return code if sep and code.replace("-", "").isalpha() and "/" in rest.split(": ", 1)[0] else None


def _counted(lines: list[str], shown: int = SHOWN_PER_PROBLEM) -> list[str]:
    """``lines`` with at most ``shown`` problem lines of each code, the rest counted in one line
    after them, so that damage across hundreds of days stays a screenful."""
    totals: dict[str, int] = {}
    for line in lines:
        code = _problem_code(line)
        if code is not None:
            totals[code] = totals.get(code, 0) + 1
    seen: dict[str, int] = {}
    kept: list[str] = []
    for line in lines:
        code = _problem_code(line)
        if code is None:
            kept.append(line)
            continue
        seen[code] = seen.get(code, 0) + 1
        if seen[code] <= shown:
            kept.append(line)
        if seen[code] == shown and totals[code] > shown:
            kept.append(f"… and {totals[code] - shown:,} more {code!r} file(s) (--json lists every one)")
    return kept


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("status")
    def status_cmd(
        store: StoreOpt = None,
        as_json: JsonOpt = False,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Describe a store: rows, files, time range, clusters, size, summaries, what compaction would
        gain, quarantine, last ingest, and a quick integrity check (exit code 4 when damaged).
        With --engine spark, the time range, clusters, formats and quarantine reasons are read by
        Spark; the rest comes from the manifest either way."""
        from flowlens.collect.status import describe_collectors, render_collectors
        from flowlens.store import describe, render_status

        choice = engine_choice(engine, spark_master, spark_conf)
        target = resolve_store(store, choice)
        read_facts = None
        if choice.name == "spark":
            from flowlens.engine.spark_status import spark_facts

            read_facts = spark_facts(choice.spark)
        status = describe(target, lifecycle=lifecycle_of(config()), read_facts=read_facts)
        collectors = describe_collectors(target)
        if as_json:
            info = status.as_dict()
            info["collectors"] = [c.as_dict() for c in collectors]
            typer.echo(json.dumps(info, indent=2, sort_keys=True, default=str))
        else:
            typer.echo(visible_lines(render_status(status) + render_collectors(collectors)), nl=False)
        if status.integrity is not None and status.integrity.damaged:
            raise StoreDamagedError(
                f"the store {target.location} is damaged; run `flowlens verify` to see every problem and "
                "`flowlens repair` to fix them"
            )

    @app.command("verify")
    def verify_cmd(
        store: StoreOpt = None,
        quick: Annotated[
            bool, typer.Option("--quick", help="Only sizes and the folders, without reading every file.")
        ] = False,
        as_json: JsonOpt = False,
        progress: ProgressOpt = None,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Check the store: every file the manifest lists (present, same size, same XXH3-64, same row
        count, readable Parquet), no file it does not list, the manifest against the journal.
        A store at a Hadoop URL is checked with --engine spark (through Hadoop; every file is
        copied to a local temporary folder, one at a time, to be read).

        Prints one line per problem on stdout (`code: path: what is wrong`) and a verdict on stderr.
        Exit code 4 when the store is damaged (reading would answer short, writing could store rows
        twice); notices (a missing summary, a commit to finish) do not fail it. `flowlens repair`
        fixes what it finds.
        """
        from flowlens.store import check

        target = existing_store(store, engine_choice(engine, spark_master, spark_conf))
        with _progress("verify", progress) as tick:
            report = check(target, deep=not quick, progress=tick)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        else:
            for problem in report.problems:
                typer.echo(problem.line())
        kind = "quick check" if quick else "every file read"
        if report.damaged:
            raise StoreDamagedError(
                f"the store {target.location} is damaged: {len(report.blocking)} problem(s) ({kind}, "
                f"{report.files_checked:,} file(s) listed); run `flowlens repair` to fix them"
            )
        err(
            f"the store {target.location} is intact ({kind}, {report.files_checked:,} file(s) listed, generation "
            f"{report.generation if report.generation is not None else '-'})"
            + (f"; {len(report.notices)} notice(s)" if report.notices else "")
        )

    @app.command("repair")
    def repair_cmd(
        store: StoreOpt = None,
        adopt: Annotated[
            bool,
            typer.Option(
                "--adopt",
                help="List Parquet files no manifest names as committed, as they are, instead of setting "
                "them aside (for files of another tool: their source lines are unknown, so re-ingesting "
                "their sources would store those rows twice).",
            ),
        ] = False,
        as_json: JsonOpt = False,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Make a damaged store consistent: nothing doubled, nothing deleted.

        A missing, unreadable or stale manifest is rebuilt from the store's journal. A listed file
        that is missing, truncated, rewritten or unreadable is lost: repair forgets the progress of
        the sources its rows came from (and sets aside other files holding later lines of them), so
        that ingesting those sources again restores exactly the lost rows. Files no manifest lists
        and damaged summaries are set aside. Everything set aside goes to <store>/lost+found/.
        Says what it did on stderr, with at most 10 damaged files of each kind (the rest counted;
        --json lists every one). Exit code 4 when the store is still damaged afterwards.
        A store at a Hadoop URL is repaired on a mount of it (docs/spark.md).
        """
        from flowlens.store.repair import repair

        target = resolve_store(store, engine_choice(engine, spark_master, spark_conf))
        if target.files.remote:
            raise UsageError(
                f"the store {target.location!r}: repair runs on a local (or mounted) store only: it must "
                "open a store whose manifest may be unreadable and move files aside before any commit, "
                "which the writer of a store at a URL does not do; mount it and repair the mounted "
                "folder (`flowlens verify --engine spark` says what is wrong)"
            )
        result = repair(target, adopt=adopt)
        if as_json:
            typer.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        for line in _counted(list(result.actions)):
            err(f"repair: {line}")
        if not result.actions:
            err(f"nothing to repair: the store {target.root} is intact")
        if result.reingest:
            err("ingest these again to restore what was set aside: " + ", ".join(result.reingest))
        if result.after.damaged:
            raise StoreDamagedError(
                "the store is still damaged after repair: "
                + "; ".join(p.line() for p in result.after.blocking[:3])
            )

    @app.command("compact")
    def compact_cmd(
        store: StoreOpt = None,
        date: Annotated[
            str | None, typer.Option("--date", help="Only this day (YYYY-MM-DD).", show_default=False)
        ] = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        as_json: JsonOpt = False,
        progress: ProgressOpt = None,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Rewrite each day's small flows files (and their summaries) into one.

        A store fed every few minutes gets a small file per day per run, and every query pays for
        each file it opens. Compaction merges a day's files under 64 MB into one file written as
        ingest writes (denied rows in row groups of their own), in one atomic commit per day: a
        query running meanwhile reads the old files or the new one, never both, and a kill at any
        point leaves one or the other. No answer changes. Ingest compacts closed days on its own
        once they hold more than `compact_files` (flowlens.yaml, default 24) small files.
        A store at a Hadoop URL is compacted with --engine spark: each day's files are copied to a
        local temporary folder, rewritten there and uploaded; the old files are deleted an hour
        later (queries reading them meanwhile still can).
        """
        from flowlens.store.compact import compact
        from flowlens.store.layout import Snapshot
        from flowlens.store.lifecycle import compaction_plan

        choice = engine_choice(engine, spark_master, spark_conf)
        target = existing_store(store, choice)
        first, last = _dates(date, since, until)
        with _writer(target, choice) as writer, _progress("compact", progress) as tick:
            plans = compaction_plan(Snapshot.of(target, writer.manifest), first=first, last=last)
            result = compact(writer, plans, progress=tick)
        if as_json:
            typer.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        err(result.line())

    @app.command("prune")
    def prune_cmd(
        store: StoreOpt = None,
        older_than: Annotated[
            str | None,
            typer.Option(
                "--older-than",
                help="Remove partitions older than this (90d, 12w). Default: retention in flowlens.yaml.",
                show_default=False,
            ),
        ] = None,
        as_json: JsonOpt = False,
        engine: EngineOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Remove whole date partitions older than an age, and the quarantine files of ingests
        before it, in one atomic commit; says what it removed in one line.

        The lineage checkpoints stay, so ingesting a source that was ingested before still adds
        nothing. `retention: 90d` in flowlens.yaml makes every ingest do this after its run.
        A store at a Hadoop URL is pruned with --engine spark; its removed files are deleted an
        hour later (queries reading them meanwhile still can).
        """
        from flowlens.store.lifecycle import parse_age, prune

        cfg = config()  # a bad setting is named before anything else
        choice = engine_choice(engine, spark_master, spark_conf)
        target = existing_store(store, choice)
        if older_than is not None:
            days = parse_age(older_than)
        elif cfg.retention_days is not None:
            days = cfg.retention_days
        else:
            raise UsageError("give --older-than 90d (or set retention: in flowlens.yaml)")
        with _writer(target, choice) as writer:
            result = prune(writer, days, dt.datetime.now(dt.UTC))
        if as_json:
            typer.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        err(result.line())
