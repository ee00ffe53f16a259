"""The ingest, status, quarantine and schema commands as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ingest import records

ROOT = Path(__file__).resolve().parents[2]


def flowlens(
    *args: str, cwd: Path, stdin: bytes | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLENS_")}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "flowlens", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def _log(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_ingest_prints_a_summary_that_adds_up_and_json_on_request(tmp_path):
    log = _log(tmp_path / "flows.log", records.EXAMPLE_B, records.EXAMPLE_C, "{broken")
    result = flowlens("ingest", str(log), "--store", "st", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["lines_read"], summary["rows"], summary["quarantined"]) == (3, 2, 1)
    err = result.stderr.decode()
    assert "3 lines read = 2 rows stored + 1 quarantined + 0 skipped (already ingested) + 0 ignored" in err
    assert "quarantined: " in err and "invalid JSON" in err
    shown = flowlens("quarantine", "--store", "st", cwd=tmp_path)
    assert shown.returncode == 0
    assert f"{log}:3: invalid JSON" in shown.stdout.decode()


def test_status_describes_the_store(tmp_path):
    log = _log(tmp_path / "flows.log", records.EXAMPLE_B, records.EXAMPLE_C)
    assert flowlens("ingest", str(log), "--store", "st", "--cluster", "prod", cwd=tmp_path).returncode == 0
    result = flowlens("status", "--store", "st", "--json", cwd=tmp_path)
    info = json.loads(result.stdout)
    assert info["rows"] == 2 and info["clusters"] == {"prod": 2} and info["dates"] == ["2023-02-03"]
    text = flowlens("status", "--store", "st", cwd=tmp_path).stdout.decode()
    assert "rows:         2 in 1 Parquet file(s)" in text


def test_status_of_a_missing_store_says_how_to_make_one(tmp_path):
    result = flowlens("status", "--store", "nowhere", cwd=tmp_path)
    assert result.returncode == 4
    assert b"run `flowlens ingest PATH --store nowhere` first" in result.stderr


def test_the_store_comes_from_the_environment_then_the_config_file(tmp_path):
    log = _log(tmp_path / "flows.log", records.EXAMPLE_C)
    (tmp_path / "flowlens.yaml").write_text("store: from-config\nsources:\n  - path: flows.log\n")
    assert flowlens("ingest", cwd=tmp_path).returncode == 0
    assert list((tmp_path / "from-config" / "flows").glob("date=*/*.parquet"))
    env_result = flowlens(
        "ingest", str(log), cwd=tmp_path, env={"FLOWLENS_STORE": str(tmp_path / "from-env")}
    )
    assert env_result.returncode == 0
    assert list((tmp_path / "from-env" / "flows").glob("date=*/*.parquet"))


def test_a_config_file_with_an_unknown_key_is_refused(tmp_path):
    (tmp_path / "flowlens.yaml").write_text("stor: typo\n")
    result = flowlens("ingest", cwd=tmp_path)
    assert result.returncode == 2
    assert b"unknown key(s) stor" in result.stderr


def test_strict_mode_exits_3_and_a_locked_store_exits_4(tmp_path):
    log = _log(tmp_path / "flows.log", records.EXAMPLE_C, "not json")
    strict = flowlens("ingest", str(log), "--store", "st", "--strict", cwd=tmp_path)
    assert strict.returncode == 3
    assert b"flows.log:2: invalid JSON" in strict.stderr
    (tmp_path / "st2").mkdir()
    lock = tmp_path / "st2" / ".lock"
    code = (
        "import fcntl, subprocess, sys\n"
        f"fh = open({str(lock)!r}, 'a+'); fcntl.flock(fh, fcntl.LOCK_EX)\n"
        f"r = subprocess.run([sys.executable, '-m', 'flowlens', 'ingest', {str(log)!r}, '--store', "
        f"{str(tmp_path / 'st2')!r}], capture_output=True)\n"
        "print(r.returncode); sys.stderr.write(r.stderr.decode())\n"
    )
    locked = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert locked.stdout.strip() == "4"
    assert "is being written by" in locked.stderr


def test_an_unknown_file_format_is_a_clear_input_error(tmp_path):
    odd = tmp_path / "notes.log"
    odd.write_text("hello world\n")
    result = flowlens("ingest", str(odd), "--store", "st", cwd=tmp_path)
    assert result.returncode == 3
    assert b"not a Calico flow log flowlens knows" in result.stderr
    assert b"--format" in result.stderr


def test_standard_input_is_ingested(tmp_path):
    data = (records.EXAMPLE_C + "\n").encode()
    result = flowlens("ingest", "-", "--store", "st", "--json", cwd=tmp_path, stdin=data)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 1


def test_schema_lists_every_column_with_its_meaning(tmp_path):
    result = flowlens("schema", "--json", cwd=tmp_path)
    data = json.loads(result.stdout)
    names = [c["name"] for c in data["columns"]]
    assert names[:3] == ["cluster", "start_time", "end_time"]
    assert {"source_labels", "enforced_policies", "ingest_id", "source_file", "source_line", "date"} <= set(
        names
    )
    assert "end_of_tier" in data["policy_hit"]


def test_an_unknown_format_option_is_a_usage_error(tmp_path):
    log = _log(tmp_path / "flows.log", records.EXAMPLE_C)
    result = flowlens("ingest", str(log), "--store", "st", "--format", "calico", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        b"unknown format 'calico'; choose one of: enterprise, elasticsearch, goldmane, whisker"
        in result.stderr
    )
