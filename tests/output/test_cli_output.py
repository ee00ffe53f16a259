"""`flowlens query` output: streamed in every format, cut with a note on a terminal, untrusted text made safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowlens.output import TERMINAL_ROWS
from tests.factories import flow_row, write_store
from tests.helpers import ROOT, run_cli

HOSTILE = "api\x1b]0;pwned\x07\r\u202e-*"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    rows = [flow_row(action="deny", reporter="dst", dest_port=1000 + i) for i in range(TERMINAL_ROWS + 5)]
    rows.append(flow_row(action="deny", reporter="dst", source_name_aggr=HOSTILE, dest_port=9))
    return write_store(tmp_path / "store", rows)


def _on_a_terminal(*args: str | Path) -> tuple[str, str]:
    """Run flowlens with stdout on a pseudo-terminal; its stdout and stderr."""
    leader, follower = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    env["PYTHONPATH"] = str(ROOT)
    with subprocess.Popen(
        [sys.executable, "-m", "flowlens", *map(str, args)], stdout=follower, stderr=subprocess.PIPE, env=env
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal is closed when the process ends
                break
            if not data:
                break
            chunks.append(data)
        _, err = proc.communicate(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n"), err.decode()


def test_a_table_on_a_terminal_shows_the_first_rows_and_says_how_many_more(store: Path) -> None:
    out, err = _on_a_terminal("query", "denied", "--store", store)
    assert len(out.splitlines()) == 2 + TERMINAL_ROWS
    assert "… 6 more rows (of 106): use --limit, --format csv or --out FILE" in err


def test_a_table_into_a_pipe_or_file_is_written_whole(store: Path, tmp_path: Path) -> None:
    code, out, err = run_cli("query", "denied", "--store", store)
    assert code == 0 and err == "" and len(out.splitlines()) == 2 + TERMINAL_ROWS + 6
    code, _, err = run_cli("query", "denied", "--store", store, "--out", tmp_path / "all.txt")
    assert code == 0 and err == "" and (tmp_path / "all.txt").read_text() == out


def test_escape_sequences_from_a_flow_log_are_shown_not_run(store: Path) -> None:
    for fmt in ("table", "markdown"):
        code, out, _ = run_cli("query", "denied", "--store", store, "--format", fmt)
        assert code == 0
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\u202e" not in out
        assert "api\\x1b]0;pwned\\x07\\r\\u202e-*" in out.replace("\\\\", "\\")
    out, _ = _on_a_terminal("query", "denied", "--store", store, "--format", "csv")
    assert "\x1b" not in out and "api\\x1b]0;pwned\\x07\\r\\u202e-*" in out


def test_json_keeps_the_raw_value_and_a_file_gets_what_stdout_gets(store: Path, tmp_path: Path) -> None:
    code, out, _ = run_cli("query", "denied", "--store", store, "--format", "json")
    assert code == 0 and "\x1b" not in out  # written as the JSON escape \u001b
    rows = json.loads(out)
    assert len(rows) == TERMINAL_ROWS + 6 and any(r["source"].endswith(HOSTILE) for r in rows)
    for fmt in ("json", "jsonl", "csv", "markdown"):
        target = tmp_path / f"r.{fmt}"
        code, piped, _ = run_cli("query", "denied", "--store", store, "--format", fmt)
        assert run_cli("query", "denied", "--store", store, "--format", fmt, "--out", target).code == 0
        assert target.read_bytes().decode("utf-8") == piped, fmt
        assert not list(tmp_path.glob(".*.partial"))


def test_a_query_that_fails_while_streaming_is_an_error_and_leaves_no_file(
    store: Path, tmp_path: Path
) -> None:
    target = tmp_path / "r.json"
    sql = "SELECT CAST(source_name_aggr AS INTEGER) AS n FROM flows"
    code, out, err = run_cli("query", "--sql", sql, "--store", store, "-f", "json", "--out", target)
    assert code != 0 and out == ""
    assert err.startswith("flowlens: error: SQL failed: Conversion Error")
    assert not target.exists() and not list(tmp_path.glob(".*.partial"))


def test_an_error_message_quoting_untrusted_text_shows_its_control_characters(store: Path) -> None:
    code, out, err = run_cli("query", "no\x1b[2Jsuch", "--store", store)
    assert code != 0 and out == ""
    assert "\x1b" not in err and "no\\x1b[2Jsuch" in err
