"""Errors flowlens raises on purpose, and the one table of exit codes.

Each error says what went wrong and what to do about it; its class decides the exit code the CLI
exits with. :data:`EXIT_CODES` is the only place exit codes are written down: the classes take
their code from it, and ``flowlens --help`` and ``docs/exit-codes.md`` are generated from it
(``python -m flowlens.cli.gendocs``; a test fails when they differ). Anything that is not a
:class:`FlowlensError` is a bug and stays a traceback.

To add an error: subclass the error whose code it shares (a damaged store is a
:class:`StoreError`, exit 4); for a new code, add a row to :data:`EXIT_CODES` first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExitCode:
    """One exit code: its number, a short name, and what it means."""

    code: int
    name: str
    #: a few words, for the ``--help`` of every command
    summary: str
    #: the full meaning for the documentation: which errors and checks end with this code
    meaning: str


#: Every exit code flowlens uses, in order. Edit here, then run ``python -m flowlens.cli.gendocs``.
EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(0, "ok", "ok", "success"),
    ExitCode(1, "error", "error", "another flowlens error; a bug shows a traceback and exits 1 too"),
    ExitCode(
        2,
        "usage",
        "bad usage",
        "bad usage: options, arguments, the config file (`flowlens.yaml`)",
    ),
    ExitCode(
        3,
        "input",
        "unreadable or malformed input (also --strict)",
        "an input file cannot be read or has the wrong format; `ingest --strict` met a bad line",
    ),
    ExitCode(
        4,
        "store",
        "store missing, locked or damaged",
        "the store is missing, locked by another writer, or damaged",
    ),
    ExitCode(
        5,
        "query",
        "query problem",
        "a query problem: an unknown name, a bad parameter, a query header that does not declare "
        "what it uses, SQL that fails",
    ),
    ExitCode(
        6,
        "policy",
        "invalid policy, inventory or selector",
        "an invalid policy or inventory manifest, or a selector that does not parse",
    ),
    ExitCode(
        10,
        "check-failed",
        "a requested check failed (simulate --fail-on, suggest, report --fail-under)",
        "a check you asked for failed: `simulate --fail-on` found such changes; `suggest` found "
        "observed allowed traffic its suggestion (or the `--check` folder) would deny, or "
        "`--validate` found an object that fails its schema; `report --fail-under` found a lower score",
    ),
    ExitCode(130, "interrupted", "interrupted (Ctrl-C)", "interrupted with Ctrl-C (SIGINT)"),
    ExitCode(
        141,
        "broken-pipe",
        "the reader of the output closed it (| head)",
        "the program reading the output closed it before the end (`flowlens query ... | head`): "
        "flowlens stops quietly, as a tool ended by SIGPIPE does (128 + 13)",
    ),
)

_BY_NAME = {entry.name: entry for entry in EXIT_CODES}


def exit_code(name: str) -> int:
    """The code of the exit named ``name`` in :data:`EXIT_CODES` (``KeyError`` when none is)."""
    return _BY_NAME[name].code


def exit_codes_help() -> str:
    """The exit codes in one paragraph, as ``flowlens --help`` prints them."""
    return "Exit codes: " + "; ".join(f"{e.code} {e.summary}" for e in EXIT_CODES) + "."


def exit_codes_markdown() -> str:
    """The documentation page ``docs/exit-codes.md``, generated from :data:`EXIT_CODES`."""
    lines = [
        "# Exit codes",
        "",
        "<!-- Generated from EXIT_CODES in flowlens/errors.py by `python -m flowlens.cli.gendocs`:",
        "     edit the table there, then run that command. tests/cli/ fails when they differ. -->",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {e.code} | {e.meaning} |" for e in EXIT_CODES),
        "",
        "Errors are one line on stderr, `flowlens: error: ...`, that says what to do; a traceback "
        "means a bug (it never shows local variables: flow data is sensitive). A command stopped "
        "with Ctrl-C prints `flowlens: interrupted` and exits with 130.",
        "",
        "When the program reading flowlens' output closes it early (`flowlens query denied "
        "--format csv | head -3`), flowlens stops writing, prints nothing more and exits with 141, "
        "the status a shell shows for a tool ended by SIGPIPE: with `set -o pipefail` a script "
        "sees that the output was cut short. Files are not affected: `--out` files, reports and the "
        "store are written under temporary names and renamed into place only when complete.",
        "",
        "`flowlens --help` lists the same codes.",
        "",
    ]
    return "\n".join(lines)


class FlowlensError(Exception):
    """Base class: a problem the user can act on. The message says how."""

    exit_code = exit_code("error")


class UsageError(FlowlensError):
    """Bad options or arguments."""

    exit_code = exit_code("usage")


class InputError(FlowlensError):
    """An input file cannot be read or has the wrong format."""

    exit_code = exit_code("input")


class StrictModeError(InputError):
    """``--strict`` ingest met a bad line; nothing was written."""


class StoreError(FlowlensError):
    """The store is missing, locked by another process, or damaged."""

    exit_code = exit_code("store")


class StoreLockedError(StoreError):
    """Another flowlens process holds the store's lock."""


class StoreDamagedError(StoreError):
    """The store's files do not match its manifest (or the manifest is missing or stale): reading
    would answer short and writing could double rows, so both stop until ``flowlens repair``."""


class StoreWriteError(StoreError):
    """Writing the store failed (a full disk, an I/O error); the message says what was kept."""


class CollectError(FlowlensError):
    """A live collector cannot go on: its source cannot be reached as configured (certificates,
    address), the optional ``collect`` extra is missing, or another collector of the same name
    writes to the store."""


class QueryError(FlowlensError):
    """A named query is unknown, badly declared, or was given bad parameters."""

    exit_code = exit_code("query")


class PolicyError(FlowlensError):
    """A policy or inventory manifest is invalid."""

    exit_code = exit_code("policy")


class SelectorError(PolicyError, ValueError):
    """A Calico selector does not parse; the message gives the position of the problem."""


class CheckFailed(FlowlensError):
    """A gate the user asked for failed (``--fail-on``, a suggestion that breaks traffic)."""

    exit_code = exit_code("check-failed")


#: Ctrl-C: not an error class, the CLI's boundary exits with it on ``KeyboardInterrupt``.
INTERRUPTED = exit_code("interrupted")

#: The reader of stdout closed it (``| head``): not an error class, the CLI's command group
#: (:mod:`flowlens.cli.pipe`) exits with it quietly.
BROKEN_PIPE = exit_code("broken-pipe")
