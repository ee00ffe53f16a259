"""Output to a pipe whose reader has gone: ``flowlens query denied --format csv | head -3``.

When the reader of stdout closes its end (``head`` has its lines), the next write fails with
``EPIPE``. A Unix tool then stops quietly; so does flowlens: no traceback, no "Exception ignored"
line when the interpreter flushes stdout at exit, and the exit code of a tool that SIGPIPE ended,
141 (:data:`flowlens.errors.BROKEN_PIPE`), so that a script with ``set -o pipefail`` knows the
output was cut short.

:class:`CommandGroup` is the command group of ``flowlens``: every command runs inside its
:meth:`~CommandGroup.invoke`, which flushes stdout before it returns (so a write the reader
refuses fails there, not at exit) and turns an ``EPIPE`` on stdout into that quiet exit. Stdout
is then pointed at ``/dev/null`` (Python's recipe), so the final flush has somewhere to go. An
``EPIPE`` anywhere else (a socket, a pipe flowlens opened) while stdout's reader is still there
stays an error. Files are not affected: ``--out`` files, reports and the store are written
under temporary names and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import select
import stat
import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from flowlens.errors import BROKEN_PIPE

if TYPE_CHECKING:
    from typer._click.core import Context  # typer's own click, which its TyperGroup takes


def is_broken_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a write to a pipe nobody reads."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BrokenPipeError) or (
            isinstance(current, OSError) and current.errno == errno.EPIPE
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reading end is closed.

    A pipe's writing end polls as an error (``POLLERR``) once no reader is left. Where stdout has
    no file descriptor (tests capture it in memory) or cannot be polled, an ``EPIPE`` is taken to
    be stdout's.
    """
    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return True
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def silence_stdout() -> None:
    """Point stdout's file descriptor at ``/dev/null`` and drop what is still buffered, so that
    no later write or the interpreter's final flush raises again."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()


class WholeWrites(io.FileIO):
    """A file descriptor whose :meth:`write` writes all it is given or raises.

    A pipe whose reader goes away in the middle of a large write takes part of it and returns
    the count; :class:`io.BufferedWriter` then returns that short count and
    :class:`io.TextIOWrapper` drops the rest without a word, so the command would end with exit 0
    and its output silently cut. Writing the rest makes the next ``write(2)`` fail with ``EPIPE``.
    """

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            written = super().write(view[done:])
            if written is None:  # a non-blocking descriptor that would block
                raise BlockingIOError(errno.EAGAIN, "stdout would block", done)
            done += written
        return done


def whole_writes_stdout() -> None:
    """Replace ``sys.stdout``, when it is a file descriptor that is not a terminal, with the same
    descriptor, encoding and buffering over :class:`WholeWrites`."""
    stream = sys.stdout
    try:
        fd = stream.fileno()
        if stream.isatty() or not isinstance(stream, io.TextIOWrapper):
            return
    except (AttributeError, OSError, ValueError):
        return
    stream.flush()
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(WholeWrites(fd, "wb", closefd=False)),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
    )


class CommandGroup(TyperGroup):
    """``flowlens``' command group: a closed stdout pipe ends the command quietly with exit 141."""

    def invoke(self, ctx: Context) -> Any:
        whole_writes_stdout()
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()
            return result
        except Exception as exc:
            if not (is_broken_pipe(exc) and stdout_reader_gone()):
                raise
        silence_stdout()
        raise typer.Exit(BROKEN_PIPE)
