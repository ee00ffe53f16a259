"""The ``flowlens`` process: pandas is not imported for a command on DuckDB, and the process ends
at once after a command, with everything it wrote and its exit status, unless something is left
for the interpreter to finish.

Each test runs the console entry point (:func:`flowlens.cli.console`) in a real process, through a
small driver that records, when the command is over, what the process holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowlens.errors import EXIT_CODES
from tests.helpers import ROOT, run_cli

SAMPLE = ROOT / "sample_logs"

# Runs ``flowlens <argv>`` as the console script does; when the command ends, writes to
# $FLOWLENS_TEST_SEEN whether pandas was imported, then lets process.leave end the process.
DRIVER = textwrap.dedent(
    """
    import json, os, sys
    from flowlens import cli
    from flowlens.cli import process

    _leave = process.leave

    def leave(done):
        with open(os.environ["FLOWLENS_TEST_SEEN"], "w") as out:
            json.dump({"pandas": "pandas" in sys.modules}, out)
        _leave(done)

    process.leave = leave
    sys.argv = ["flowlens", *sys.argv[1:]]
    cli.console()
    """
)


def _run(
    tmp_path: Path, *args: str, driver: str = DRIVER
) -> tuple[subprocess.CompletedProcess[str], dict[str, bool]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    seen = tmp_path / "seen.json"
    env["FLOWLENS_TEST_SEEN"] = str(seen)
    done = subprocess.run(
        [sys.executable, "-c", driver, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    return done, (json.loads(seen.read_text()) if seen.exists() else {})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("process") / "store"
    done, seen = _run(where.parent, "ingest", str(SAMPLE), "--store", str(where))
    assert done.returncode == 0, done.stderr
    assert seen == {"pandas": False}  # ingest on DuckDB: pyarrow never imported pandas
    return where


def test_query_on_duckdb_does_not_import_pandas_and_writes_everything(store: Path, tmp_path: Path) -> None:
    done, seen = _run(tmp_path, "query", "denied", "--store", str(store), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert seen == {"pandas": False}
    rows = done.stdout.splitlines()
    assert len(done.stdout) > 8192  # more than stdout's buffer: written in parts, the last at the exit
    here = run_cli("query", "denied", "--store", store, "--format", "jsonl")  # the same, in this process
    assert here.code == 0
    assert rows == here.stdout.splitlines()


def test_an_error_keeps_its_exit_status_and_message(tmp_path: Path) -> None:
    done, seen = _run(tmp_path, "query", "denied", "--store", str(tmp_path / "no-store"))
    assert done.returncode == next(c.code for c in EXIT_CODES if c.name == "store")
    assert "flowlens: error:" in done.stderr
    assert seen == {"pandas": False}


def test_pandas_is_still_there_for_whoever_asks_for_it(tmp_path: Path) -> None:
    driver = textwrap.dedent(
        """
        import sys
        import pyarrow as pa
        from flowlens.cli import process
        process.console_started()
        process.spare_pandas_import()
        assert "pandas" not in sys.modules
        frame = pa.table({"a": [1, None]}).to_pandas()
        assert "pandas" in sys.modules
        back = pa.Table.from_pandas(frame)
        assert back.column("a").null_count == 1, back
        print("ok")
        """
    )
    done, _ = _run(tmp_path, driver=driver)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    # A thread Python waits for at exit: the process must not end under it.
    marker = tmp_path / "finished"
    driver = textwrap.dedent(
        f"""
        import sys, threading, time
        from pathlib import Path
        from flowlens import cli

        def late():
            time.sleep(0.5)
            Path({str(marker)!r}).write_text("done")

        threading.Thread(target=late).start()
        sys.argv = ["flowlens", "version"]
        cli.console()
        """
    )
    done, _ = _run(tmp_path, driver=driver)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "done"


def test_a_program_that_calls_main_keeps_pyarrow_as_it_is(tmp_path: Path) -> None:
    # Outside the console entry point (a program, or a test, calling main), sparing pandas does
    # nothing: pyarrow still finds pandas objects (a Series with a missing value becomes a null,
    # not NaN), and the interpreter exits as usual.
    driver = textwrap.dedent(
        """
        import sys
        from flowlens import cli
        from flowlens.cli import process
        process.spare_pandas_import()
        sys.argv = ["flowlens", "version"]
        try:
            cli.main()
        except SystemExit as done:
            assert done.code in (0, None), done.code
        import pandas as pd
        import pyarrow as pa
        print(pa.array(pd.Series([1.5, None])).null_count)
        """
    )
    done, _ = _run(tmp_path, driver=driver)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1"
