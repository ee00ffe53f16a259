"""`flowlens status`, `verify`, `repair`, `compact` and `prune` as a user runs them: output,
messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowlens.ingest import ingest
from flowlens.store import Store
from tests.helpers import run_cli
from tests.store.helpers import log_lines, seen, valid, write_log


@pytest.fixture
def fed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, Path, list[str]]:
    monkeypatch.chdir(tmp_path)
    store = Store(tmp_path / "store")
    lines = log_lines(90)
    for part in range(3):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 30 : (part + 1) * 30]))])
    return store, tmp_path, lines


def _last_ingests_file(store: Store) -> Path:
    """The one flows file the last ingest wrote (n2.log's 30 rows; file names sort by the second
    their ingest started, so the order of two ingests of the same second is not theirs)."""
    last = json.loads(store.manifest_path.read_text())["ingests"][-1]["ingest_id"]
    (path,) = [p for p in store.flow_files() if p.name.startswith(last)]
    return path


def test_status_says_the_store_is_intact_and_what_compaction_would_gain(fed) -> None:
    store, _, _ = fed
    code, out, err = run_cli("status", "--store", str(store.root))
    assert code == 0 and err == ""
    assert "rows:         90 in 4 Parquet file(s)" in out
    assert (
        "compaction:   4 small file(s); `flowlens compact` would turn 4 flows file(s) into 2 (2 day(s))"
        in out
    )
    assert "integrity:    ok (quick check" in out
    code, out, _ = run_cli("status", "--store", str(store.root), "--json")
    info = json.loads(out)
    assert info["integrity"]["damaged"] is False and info["compaction"]["files_after_compaction"] == 2


def test_status_of_a_damaged_store_shows_the_problem_and_exits_4(fed) -> None:
    store, _, _ = fed
    store.flow_files()[0].write_bytes(b"")
    code, out, err = run_cli("status", "--store", str(store.root))
    assert code == 4
    assert "integrity:    DAMAGED (1 problem(s), quick check):" in out
    assert "  empty: flows/date=2023-02-03/" in out
    assert err.startswith("flowlens: error: the store") and "flowlens repair" in err


def test_verify_prints_each_problem_on_stdout_and_fails_with_4(fed) -> None:
    store, _, _ = fed
    code, out, err = run_cli("verify", "--store", str(store.root))
    assert (code, out) == (0, "")
    assert "is intact (every file read, 8 file(s) listed, generation 3)" in err
    victim = _last_ingests_file(store)
    victim.unlink()
    code, out, err = run_cli("verify", "--store", str(store.root))
    assert code == 4
    assert out.splitlines() == [
        f"missing: {victim.relative_to(store.root).as_posix()}: the flows file is missing (30 rows listed)"
    ]
    assert "run `flowlens repair` to fix them" in err
    code, out, _ = run_cli("verify", "--store", str(store.root), "--json", "--quick")
    report = json.loads(out)
    assert code == 4 and report["deep"] is False and report["problems"][0]["code"] == "missing"


def test_ingest_into_a_damaged_store_refuses_with_one_line_naming_repair(fed) -> None:
    store, tmp, _ = fed
    store.flow_files()[0].unlink()
    code, out, err = run_cli("ingest", str(tmp / "n0.log"), "--store", str(store.root))
    assert code == 4 and out == ""
    assert err.count("\n") == 1 and "will not write to it" in err and "flowlens repair" in err


def test_repair_says_what_it_did_and_which_sources_to_ingest_again(fed) -> None:
    store, tmp, lines = fed
    victim = _last_ingests_file(store)  # n2.log's rows
    victim.unlink()
    code, out, err = run_cli("repair", "--store", str(store.root))
    assert code == 0 and out == ""
    assert f"repair: missing: {victim.relative_to(store.root).as_posix()}" in err
    assert f"ingest these again to restore what was set aside: {tmp / 'n2.log'}" in err
    code, _, _ = run_cli("ingest", str(tmp / "n2.log"), "--store", str(store.root))
    assert code == 0
    assert seen(store) == valid(lines)
    code, _, err = run_cli("repair", "--store", str(store.root))
    assert (code, err) == (0, f"nothing to repair: the store {store.root} is intact\n")


def test_compact_merges_the_days_and_says_so(fed) -> None:
    store, _, lines = fed
    code, out, err = run_cli("compact", "--store", str(store.root), "--date", "2023-02-04")
    assert code == 0 and out == ""
    assert err == "compacted 1 day(s) (2023-02-04): 2 flows file(s) into 1, 54 rows\n"
    code, out, err = run_cli("compact", "--store", str(store.root), "--json")
    assert err == "compacted 1 day(s) (2023-02-03): 2 flows file(s) into 1, 36 rows\n"
    assert json.loads(out) == {"days": ["2023-02-03"], "files_before": 2, "files_after": 1, "rows": 36}
    code, _, err = run_cli("compact", "--store", str(store.root))
    assert err == "compacted nothing: no day has two or more small files\n"
    assert len(store.flow_files()) == 2
    assert seen(store) == valid(lines)


def test_prune_takes_its_age_from_the_option_or_the_config(fed) -> None:
    store, tmp, _ = fed
    code, _, err = run_cli("prune", "--store", str(store.root))
    assert code == 2 and "give --older-than 90d" in err
    (tmp / "flowlens.yaml").write_text(f"store: {store.root}\nretention: 36500d\n")
    code, _, err = run_cli("prune")
    assert code == 0 and err.startswith("pruned nothing: no partition older than")
    code, _, err = run_cli("prune", "--older-than", "1d")
    assert code == 0 and err.startswith("pruned 2 partition(s) older than")
    assert seen(store) == []


@pytest.mark.parametrize(
    ("yaml", "message"),
    [("retention: soon\n", "'retention'"), ("compact_files: -1\n", "'compact_files' must be a whole number")],
)
def test_a_bad_lifecycle_setting_in_the_config_is_named(tmp_path, monkeypatch, yaml, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowlens.yaml").write_text(yaml)
    code, _, err = run_cli("prune", "--store", "x")
    assert code == 2 and message in err
