"""The ingest, status, quarantine and schema commands as a user runs them."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from tests.helpers import run_cli
from tests.ingest.helpers import EXAMPLE_B, EXAMPLE_C


def _log(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_ingest_prints_a_summary_that_adds_up_and_json_on_request(tmp_path):
    log = _log(tmp_path / "flows.log", EXAMPLE_B, EXAMPLE_C, "{broken")
    result = run_cli("ingest", str(log), "--store", "st", "--json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["lines_read"], summary["rows"], summary["quarantined"]) == (3, 2, 1)
    err = result.stderr
    assert "3 lines read = 2 rows stored + 1 quarantined + 0 skipped (already ingested) + 0 ignored" in err
    assert "quarantined: " in err and "invalid JSON" in err
    shown = run_cli("quarantine", "--store", "st", cwd=tmp_path)
    assert shown.code == 0
    assert f"{log}:3: invalid JSON" in shown.stdout


def test_status_describes_the_store(tmp_path):
    log = _log(tmp_path / "flows.log", EXAMPLE_B, EXAMPLE_C)
    assert run_cli("ingest", str(log), "--store", "st", "--cluster", "prod", cwd=tmp_path).code == 0
    result = run_cli("status", "--store", "st", "--json", cwd=tmp_path)
    info = json.loads(result.stdout)
    assert info["rows"] == 2 and info["clusters"] == {"prod": 2} and info["dates"] == ["2023-02-03"]
    text = run_cli("status", "--store", "st", cwd=tmp_path).stdout
    assert "rows:         2 in 1 Parquet file(s)" in text


def test_status_of_a_missing_store_says_how_to_make_one(tmp_path):
    result = run_cli("status", "--store", "nowhere", cwd=tmp_path)
    assert result.code == 4
    assert "run `flowlens ingest PATH --store nowhere` first" in result.stderr


def test_the_store_comes_from_the_environment_then_the_config_file(tmp_path):
    log = _log(tmp_path / "flows.log", EXAMPLE_C)
    (tmp_path / "flowlens.yaml").write_text("store: from-config\nsources:\n  - path: flows.log\n")
    assert run_cli("ingest", cwd=tmp_path).code == 0
    assert list((tmp_path / "from-config" / "flows").glob("date=*/*.parquet"))
    env_result = run_cli("ingest", str(log), cwd=tmp_path, env={"FLOWLENS_STORE": str(tmp_path / "from-env")})
    assert env_result.code == 0
    assert list((tmp_path / "from-env" / "flows").glob("date=*/*.parquet"))


def test_a_config_file_with_an_unknown_key_is_refused(tmp_path):
    (tmp_path / "flowlens.yaml").write_text("stor: typo\n")
    result = run_cli("ingest", cwd=tmp_path)
    assert result.code == 2
    assert "unknown key(s) stor" in result.stderr


def test_strict_mode_exits_3_and_a_locked_store_exits_4(tmp_path):
    log = _log(tmp_path / "flows.log", EXAMPLE_C, "not json")
    strict = run_cli("ingest", str(log), "--store", "st", "--strict", cwd=tmp_path)
    assert strict.code == 3
    assert "flows.log:2: invalid JSON" in strict.stderr
    (tmp_path / "st2").mkdir()
    lock = tmp_path / "st2" / ".lock"
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running ingest holds it
        locked = run_cli("ingest", log, "--store", tmp_path / "st2", process=True)
    assert locked.code == 4
    assert "is being written by" in locked.stderr


def test_an_unknown_file_format_is_a_clear_input_error(tmp_path):
    odd = tmp_path / "notes.log"
    odd.write_text("hello world\n")
    result = run_cli("ingest", str(odd), "--store", "st", cwd=tmp_path)
    assert result.code == 3
    assert "not a Calico flow log flowlens knows" in result.stderr
    assert "--format" in result.stderr


def test_standard_input_is_ingested(tmp_path):
    data = (EXAMPLE_C + "\n").encode()
    result = run_cli("ingest", "-", "--store", "st", "--json", cwd=tmp_path, stdin=data)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 1


def test_schema_lists_every_column_with_its_meaning(tmp_path):
    result = run_cli("schema", "--json", cwd=tmp_path)
    data = json.loads(result.stdout)
    names = [c["name"] for c in data["columns"]]
    assert names[:3] == ["cluster", "start_time", "end_time"]
    assert {"source_labels", "enforced_policies", "ingest_id", "source_file", "source_line", "date"} <= set(
        names
    )
    assert "end_of_tier" in data["policy_hit"]


def test_an_unknown_format_option_is_a_usage_error(tmp_path):
    log = _log(tmp_path / "flows.log", EXAMPLE_C)
    result = run_cli("ingest", str(log), "--store", "st", "--format", "calico", cwd=tmp_path)
    assert result.code == 2
    assert (
        "unknown format 'calico'; choose one of: enterprise, elasticsearch, goldmane, whisker"
        in result.stderr
    )
