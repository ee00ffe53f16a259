"""Start-up and exit of the ``flowlens`` process, made cheap for a command run from a shell.

Two costs every command paid, whatever its work, measured on the 2-core machine:

* **pandas, imported by pyarrow.** The first time a process hands pyarrow a Python list (or a
  NumPy array), pyarrow asks whether it is a pandas object, and imports pandas to find out: 0.2 to
  0.3 s. No flowlens command that runs on DuckDB ever hands pyarrow a pandas object, so
  :func:`spare_pandas_import` answers that question up front, with pandas hidden for that one
  call. pyarrow then no longer looks for pandas objects in what it is given; anything that asks
  for pandas itself (``to_pandas``, ``Table.from_pandas``) still imports it as usual. Spark's
  Arrow transfer hands pyarrow pandas objects, so a command on the Spark engine is left as it is.
* **Tearing the interpreter down.** Once a command has finished and its output is flushed,
  freeing every module and object one by one takes 0.15 to 0.2 s that nobody waits for.
  :func:`leave` ends the process at once instead, when nothing is left to finish: no other thread
  that Python would wait for, no Spark session, and standard output and error written out.

Both apply only to the console entry point (:func:`flowlens.cli.console`), which calls
:func:`console_started` first: a program or a test that runs ``app`` in its own process keeps
pyarrow and its interpreter as they are.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

_console = False


def console_started() -> None:
    """This process is the ``flowlens`` command itself."""
    global _console
    _console = True


class _NoPandas:
    """An import finder that says pandas is not installed."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def spare_pandas_import() -> None:
    """In the ``flowlens`` process, before a command runs on DuckDB: have pyarrow settle that it is
    handed no pandas objects, without importing pandas (see the module's docstring)."""
    if not _console or "pandas" in sys.modules or "pyspark" in sys.modules:
        return
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        with contextlib.suppress(ImportError):
            pa.array([0])  # pyarrow's one look for pandas
    finally:
        sys.meta_path.remove(finder)


def _quiet() -> bool:
    """Whether nothing is left for the interpreter to finish on its way out."""
    if "pyspark" in sys.modules:  # its session stops its JVM at exit
        return False
    main = threading.main_thread()
    return not any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate())


def leave(done: SystemExit) -> None:
    """End the ``flowlens`` process with ``done``'s exit status, at once when that is safe (see
    the module's docstring); otherwise raise ``done`` for the interpreter's usual exit."""
    if not _console or not _quiet():
        raise done
    code = done.code
    if code is not None and not isinstance(code, int):
        raise done  # a message: the interpreter prints it
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise done from None
    os._exit(code or 0)
