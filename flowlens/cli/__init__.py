"""The flowlens command line: options, progress, output and exit codes, and nothing else.

Each command group lives in its own module and registers itself on ``app``; this module owns the
one error boundary that turns :class:`flowlens.errors.FlowlensError` into a message on stderr and a
documented exit code.
"""

from __future__ import annotations

import os
import sys

import typer

from flowlens.cli import process
from flowlens.cli.pipe import CommandGroup
from flowlens.errors import INTERRUPTED, FlowlensError, exit_codes_help
from flowlens.output.text import visible_lines

app = typer.Typer(
    name="flowlens",
    cls=CommandGroup,
    help=(
        "Calico flow logs in Parquet: find denied and unexpectedly allowed traffic, replay "
        "candidate policies against recorded flows, suggest least-privilege policies and report "
        "segmentation coverage.\n\n" + exit_codes_help()
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    # Imported here so that each command module can import ``app`` from this package.
    from flowlens.cli import collect, demo, ingest, policy, query, report, sample, store, suggest, version

    for module in (ingest, store, collect, query, policy, suggest, report, sample, demo, version):
        module.register(app)


_register()


def main() -> None:
    """The commands with their error boundary: ends with SystemExit (a program or a test may call
    it in a process of its own)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):  # Arrow's own setting: the pool it names is kept
        from flowlens.ingest.memory import keep_chosen_pool

        keep_chosen_pool()
    try:
        app()
    except FlowlensError as exc:
        typer.echo(visible_lines(f"flowlens: error: {exc}"), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("flowlens: interrupted", err=True)
        sys.exit(INTERRUPTED)


def console() -> None:
    """The ``flowlens`` console script (and ``python -m flowlens``): :func:`main` in a process that
    is the command, so started and ended cheaply (:mod:`flowlens.cli.process`)."""
    process.console_started()
    try:
        main()
    except SystemExit as done:
        process.leave(done)
