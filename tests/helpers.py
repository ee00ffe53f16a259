"""What tests of every area share: running the CLI as a user does, and the shipped query names.

:func:`run_cli` runs ``flowlens ARGS...`` through its real entry point, :func:`flowlens.cli.main`
with its error boundary, in this process (fast) or, with ``process=True``, as a separate process
of the console script (when a real process matters: signals, locks held by another process,
stdin from a pipe). Either way the test gets the exit code, stdout and stderr, and the
environment is the user's without any ``FLOWLENS_*`` variable unless the test passes one.

Area helpers live in ``tests/<area>/helpers.py``; rows and stores are built by
``tests/factories.py``.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The shipped queries that answer a user's question (``flowlens queries`` lists them; the
#: helper queries other commands run are listed only with ``--all``).
QUESTION_QUERIES = (
    "denied",
    "unexpected-allowed",
    "top-talkers",
    "namespace-matrix",
    "external-destinations",
    "policy-hits",
    "workloads",
)


@dataclass(frozen=True)
class CliResult:
    """How a run of the CLI ended: its exit code and what it wrote."""

    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    def __iter__(self) -> Iterator[object]:
        """``code, out, err = run_cli(...)``."""
        return iter((self.code, self.stdout, self.stderr))

    def __str__(self) -> str:  # what an assertion message shows
        return f"exit {self.code}\n--- stderr\n{self.stderr}\n--- stdout\n{self.stdout[:2000]}"


def run_cli(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    process: bool = False,
    timeout: float = 300,
) -> CliResult:
    """Run ``flowlens ARGS...`` through :func:`flowlens.cli.main`; see the module docstring."""
    argv = [str(a) for a in args]
    if process:
        return _run_process(argv, env, cwd, stdin, timeout)
    return _run_here(argv, env, cwd, stdin)


def _environment(extra: Mapping[str, str] | None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    clean.update(extra or {})
    return clean


def _run_process(
    argv: list[str], env: Mapping[str, str] | None, cwd: Path | None, stdin: bytes | None, timeout: float
) -> CliResult:
    script = Path(sys.executable).with_name("flowlens")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "flowlens"]
    full_env = _environment(env)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    done = subprocess.run(
        [*command, *argv],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return CliResult(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        done.stdout,
    )


def _run_here(
    argv: list[str], env: Mapping[str, str] | None, cwd: Path | None, stdin: bytes | None
) -> CliResult:
    from flowlens.cli import main

    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    )
    code: int
    with _patched(argv, _environment(env), cwd, streams):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        finally:
            for stream in streams[1:]:
                stream.flush()
    data = out.getvalue()
    return CliResult(code, data.decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace"), data)


@contextlib.contextmanager
def _patched(
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None,
    streams: tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper],
) -> Iterator[None]:
    saved = (sys.argv, sys.stdin, sys.stdout, sys.stderr, dict(os.environ), Path.cwd())
    sys.argv = ["flowlens", *argv]
    sys.stdin, sys.stdout, sys.stderr = streams
    os.environ.clear()
    os.environ.update(env)
    try:
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved[:4]
        os.environ.clear()
        os.environ.update(saved[4])
        os.chdir(saved[5])
