"""``flowlens ... | head``: when the reader closes stdout early, flowlens stops quietly with exit 141.

Each test runs the console script as a real process whose stdout is a pipe, reads a few lines,
closes its end while flowlens still has far more than a pipe's buffer (64 KB) to write, and
checks the exit code (141 only comes from a write that failed on the closed pipe: a command
that had written everything would exit 0) and that stderr is empty: no traceback, no
"Exception ignored ... BrokenPipeError".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowlens.errors import BROKEN_PIPE, EXIT_CODES
from flowlens.output import OutputFormat
from tests.helpers import ROOT

SAMPLE = ROOT / "sample_logs"
#: What each test reads before it closes the pipe: far less than what the command writes.
READ_LINES = 3
#: A pipe's buffer on Linux: the outputs these tests cut are larger.
PIPE_BUFFER = 64 * 1024


def _command() -> list[str]:
    script = Path(sys.executable).with_name("flowlens")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "flowlens"]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def read_then_close(*args: str | Path, lines: int = READ_LINES) -> tuple[int, list[bytes], str]:
    """Run ``flowlens ARGS``, read ``lines`` lines of its stdout, close the pipe, and return the
    exit code, the lines read and all of stderr."""
    process = subprocess.Popen(
        [*_command(), *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
    )
    assert process.stdout is not None and process.stderr is not None
    read = [process.stdout.readline() for _ in range(lines)]
    process.stdout.close()
    try:
        stderr = process.stderr.read().decode("utf-8", "replace")
        code = process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, read, stderr


def full_size(*args: str | Path) -> int:
    """Bytes ``flowlens ARGS`` writes to stdout when all of it is read."""
    done = subprocess.run(
        [*_command(), *(str(a) for a in args)], capture_output=True, env=_environment(), check=True
    )
    return len(done.stdout)


@pytest.fixture(scope="module")
def explain_policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's policies and 600 more in the security tier, each of which selects every pod
    and does not match: ``explain`` writes a line for each, on both sides."""
    folder = tmp_path_factory.mktemp("policies")
    for source in (SAMPLE / "policies").iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    items = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"security.unused-{i:03d}"},
            "spec": {
                "tier": "security",
                "order": 10 + i / 1000,
                "selector": "all()",
                "types": ["Ingress", "Egress"],
                "ingress": [{"action": "Deny", "source": {"nets": [f"192.0.2.{i % 250}/32"]}}],
                "egress": [{"action": "Deny", "destination": {"nets": [f"198.51.100.{i % 250}/32"]}}],
            },
        }
        for i in range(600)
    ]
    (folder / "15-unused.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return folder


def test_141_is_in_the_exit_code_table() -> None:
    assert BROKEN_PIPE == 141
    assert any(e.code == 141 and "closed" in e.meaning for e in EXIT_CODES)


@pytest.mark.parametrize("fmt", [f.value for f in OutputFormat if f is not OutputFormat.parquet])
def test_query_stops_quietly_in_every_format(sample_store: Path, fmt: str) -> None:
    code, read, stderr = read_then_close(
        "query", "--sql", "SELECT * FROM flows", "--store", sample_store, "--format", fmt
    )
    assert (code, stderr) == (BROKEN_PIPE, "")
    assert all(line.endswith(b"\n") for line in read)
    if fmt == "csv":
        assert read[0].startswith(b"cluster,start_time,")


def test_a_query_read_to_the_end_still_exits_0(sample_store: Path) -> None:
    code, read, stderr = read_then_close(
        "query", "--sql", "SELECT 1 AS one", "--store", sample_store, "--format", "csv", lines=10
    )
    assert (code, stderr, read[:2]) == (0, "", [b"one\n", b"1\n"])


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_simulate_stops_quietly(sample_store: Path, fmt: str) -> None:
    args = (
        "simulate",
        "--store",
        sample_store,
        "--policies",
        SAMPLE / "policies",
        "--inventory",
        SAMPLE / "inventory.yaml",
        "--format",
        fmt,
    )
    code, read, stderr = read_then_close(*args)
    assert code == BROKEN_PIPE, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception" not in stderr
    # what simulate always says on stderr (the Calico version it models) comes before the output
    assert all(line.startswith("flowlens: ") for line in stderr.splitlines()), stderr
    assert read[0].strip()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_stops_quietly(sample_store: Path, explain_policies: Path, fmt: str) -> None:
    args = (
        "explain",
        "--store",
        sample_store,
        "--policies",
        explain_policies,
        "--inventory",
        SAMPLE / "inventory.yaml",
        "--from",
        "production/frontend",
        "--to",
        "production/backend",
        "--port",
        "8080",
        "--format",
        fmt,
    )
    assert full_size(*args) > 2 * PIPE_BUFFER
    code, read, stderr = read_then_close(*args)
    assert code == BROKEN_PIPE, stderr
    assert all(line.startswith("flowlens: ") for line in stderr.splitlines()), stderr
    assert read[0].strip()
