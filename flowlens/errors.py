"""Errors flowlens raises on purpose: each says what went wrong and what to do about it.

The CLI maps each class to an exit code (see ``EXIT_CODES``); anything else is a bug and stays a
traceback.
"""

from __future__ import annotations


class FlowlensError(Exception):
    """Base class: a problem the user can act on. The message says how."""

    exit_code = 1


class UsageError(FlowlensError):
    """Bad options or arguments."""

    exit_code = 2


class InputError(FlowlensError):
    """An input file cannot be read or has the wrong format."""

    exit_code = 3


class StrictModeError(InputError):
    """``--strict`` ingest met a bad line; nothing was written."""


class StoreError(FlowlensError):
    """The store is missing, locked by another process, or damaged."""

    exit_code = 4


class StoreLockedError(StoreError):
    """Another flowlens process holds the store's lock."""


class StoreDamagedError(StoreError):
    """The store's files do not match its manifest (or the manifest is missing or stale): reading
    would answer short and writing could double rows, so both stop until ``flowlens repair``."""


class StoreWriteError(StoreError):
    """Writing the store failed (a full disk, an I/O error); the message says what was kept."""


class QueryError(FlowlensError):
    """A named query is unknown, badly declared, or was given bad parameters."""

    exit_code = 5


class PolicyError(FlowlensError):
    """A policy or inventory manifest is invalid."""

    exit_code = 6


class SelectorError(PolicyError, ValueError):
    """A Calico selector does not parse; the message gives the position of the problem."""


class CheckFailed(FlowlensError):
    """A gate the user asked for failed (``--fail-on``, a suggestion that breaks traffic)."""

    exit_code = 10


EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "error": FlowlensError.exit_code,
    "usage": UsageError.exit_code,
    "input": InputError.exit_code,
    "store": StoreError.exit_code,
    "query": QueryError.exit_code,
    "policy": PolicyError.exit_code,
    "check-failed": CheckFailed.exit_code,
}
