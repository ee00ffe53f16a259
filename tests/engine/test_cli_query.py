"""`flowlens query` and `flowlens queries`: formats, options, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flowlens.cli import main
from tests.factories import flow_row, write_store

DENY = ["0|security|gnp:security.base|pass|0", "1|default|knp:default/default-deny|deny|-1"]


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["flowlens", *args])
    monkeypatch.delenv("FLOWLENS_STORE", raising=False)
    monkeypatch.delenv("FLOWLENS_QUERIES", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    code = exit_.value.code
    return (code if isinstance(code, int) else 0 if code is None else 1), out, err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    rows = [
        flow_row(action="deny", reporter="dst", enforced_policies=DENY, num_flows_started=3),
        flow_row(
            action="deny",
            reporter="src",
            source_namespace="other",
            dest_port=443,
            enforced_policies=["0|default|knp:other/egress|deny|-1"],
        ),
        flow_row(),
    ]
    return write_store(tmp_path / "store", rows)


def test_query_prints_an_aligned_table_on_stdout(store: Path, capsys, monkeypatch) -> None:
    code, out, err = cli(["query", "denied", "--store", str(store)], capsys, monkeypatch)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["source", "source_type", "dest", "dest_type"]
    assert set(lines[1]) == {"-", " "}
    assert len(lines) == 4
    assert "end of tier default: no rule matched (blamed on knp:default/default-deny)" in lines[2]


def test_csv_json_jsonl_and_markdown_carry_the_same_rows(store: Path, capsys, monkeypatch) -> None:
    base = ["query", "denied", "--store", str(store), "--format"]
    _, out_csv, _ = cli([*base, "csv"], capsys, monkeypatch)
    _, out_json, _ = cli([*base, "json"], capsys, monkeypatch)
    _, out_jsonl, _ = cli([*base, "jsonl"], capsys, monkeypatch)
    _, out_md, _ = cli([*base, "markdown"], capsys, monkeypatch)
    from_csv = list(csv.DictReader(io.StringIO(out_csv)))
    from_json = json.loads(out_json)
    from_jsonl = [json.loads(line) for line in out_jsonl.splitlines()]
    assert from_json == from_jsonl
    assert [r["policy"] for r in from_json] == ["knp:default/default-deny", "knp:other/egress"]
    assert [r["policy"] for r in from_csv] == [r["policy"] for r in from_json]
    assert from_json[0]["connections"] == 3 and from_csv[0]["connections"] == "3"
    assert from_json[0]["first_seen"] == "2026-11-25T12:00:00Z"
    assert from_json[0]["end_of_tier"] is True and from_csv[0]["end_of_tier"] == "true"
    md = out_md.splitlines()
    assert md[0].startswith("| source | source_type |")
    assert md[1].startswith("|---|---|") and "---:" in md[1]
    assert len(md) == 4


def test_parquet_needs_out_and_writes_the_table(store: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, err = cli(["query", "denied", "--store", str(store), "-f", "parquet"], capsys, monkeypatch)
    assert code == 2 and "--out" in err
    target = tmp_path / "denied.parquet"
    code, out, _ = cli(
        ["query", "denied", "--store", str(store), "-f", "parquet", "--out", str(target)], capsys, monkeypatch
    )
    assert code == 0 and out == ""
    assert pq.read_table(target).column("records").to_pylist() == [1, 1]


def test_out_writes_text_formats_to_a_file(store: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / "denied.jsonl"
    code, out, _ = cli(
        ["query", "denied", "--store", str(store), "-f", "jsonl", "-o", str(target)], capsys, monkeypatch
    )
    assert code == 0 and out == ""
    assert len(target.read_text().splitlines()) == 2


def test_namespace_limit_and_param_options(store: Path, capsys, monkeypatch) -> None:
    base = ["query", "denied", "--store", str(store), "-f", "jsonl"]
    _, out, _ = cli([*base, "--namespace", "other"], capsys, monkeypatch)
    assert [json.loads(x)["source"] for x in out.splitlines()] == ["other/client-5d8f7b9c6-*"]
    _, out, _ = cli([*base, "--param", "namespace=other"], capsys, monkeypatch)
    assert len(out.splitlines()) == 1
    _, out, _ = cli([*base, "--limit", "1"], capsys, monkeypatch)
    assert [json.loads(x)["connections"] for x in out.splitlines()] == [3]


def test_a_namespace_that_looks_like_sql_finds_nothing(store: Path, capsys, monkeypatch) -> None:
    code, out, err = cli(
        ["query", "denied", "--store", str(store), "--namespace", "x' or 1=1 --", "-f", "csv"],
        capsys,
        monkeypatch,
    )
    assert code == 0
    assert out.splitlines() == [out.splitlines()[0]]  # the header only
    code, out, err = cli(
        ["query", "denied", "--store", str(store), "--namespace", "x' or 1=1 --"], capsys, monkeypatch
    )
    assert code == 0 and "(no rows)" in err


def test_since_and_until_choose_the_window(store: Path, capsys, monkeypatch) -> None:
    base = ["query", "denied", "--store", str(store), "-f", "jsonl"]
    _, out, _ = cli(
        [*base, "--since", "2026-11-25T12:00:00Z", "--until", "2026-11-25T12:01:00Z"], capsys, monkeypatch
    )
    assert len(out.splitlines()) == 2
    _, out, _ = cli([*base, "--since", "2026-11-25T12:00:01Z"], capsys, monkeypatch)
    assert out == ""
    code, _, err = cli([*base, "--since", "last tuesday"], capsys, monkeypatch)
    assert code == 2 and "--since: cannot read 'last tuesday'" in err


def test_ad_hoc_sql_runs_against_the_flows_view_with_bound_parameters(
    store: Path, capsys, monkeypatch
) -> None:
    code, out, _ = cli(
        [
            "query",
            "--sql",
            "SELECT count(*) AS n FROM flows WHERE action = $a",
            "-p",
            "a=deny",
            "--store",
            str(store),
            "-f",
            "json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0 and json.loads(out) == [{"n": 2}]
    code, _, err = cli(
        ["query", "--sql", "SELECT nope FROM flows", "--store", str(store)], capsys, monkeypatch
    )
    assert code == 5 and "SQL failed" in err


def test_unknown_names_and_bad_parameters_are_clear_errors(store: Path, capsys, monkeypatch) -> None:
    code, out, err = cli(["query", "denyed", "--store", str(store)], capsys, monkeypatch)
    assert code == 5 and out == ""
    assert "no query named 'denyed'; valid names:" in err and "denied" in err and "unexpected-allowed" in err
    code, _, err = cli(["query", "denied", "--store", str(store), "-p", "colour=red"], capsys, monkeypatch)
    assert code == 5 and "valid parameters: namespace" in err
    code, _, err = cli(["query", "denied", "--store", str(store), "-p", "novalue"], capsys, monkeypatch)
    assert code == 2 and "NAME=VALUE" in err
    code, _, err = cli(["query", "--store", str(store)], capsys, monkeypatch)
    assert code == 2 and "denied" in err
    code, _, err = cli(["query", "denied", "--sql", "SELECT 1", "--store", str(store)], capsys, monkeypatch)
    assert code == 2 and "not both" in err


def test_a_missing_store_is_a_store_error(tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, err = cli(["query", "denied", "--store", str(tmp_path / "nope")], capsys, monkeypatch)
    assert code == 4 and "no store at" in err


def test_the_store_defaults_to_flowlens_store_from_the_environment(store: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["flowlens", "query", "denied", "-f", "jsonl"])
    monkeypatch.setenv("FLOWLENS_STORE", str(store))
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code in (0, None)
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_queries_lists_names_descriptions_and_parameters(capsys, monkeypatch) -> None:
    code, out, _ = cli(["queries", "-f", "json"], capsys, monkeypatch)
    listed = {q["name"]: q for q in json.loads(out)}
    assert code == 0
    for name in (
        "denied",
        "unexpected-allowed",
        "top-talkers",
        "namespace-matrix",
        "external-destinations",
        "policy-hits",
        "workloads",
    ):
        assert listed[name]["description"]
    assert listed["unexpected-allowed"]["parameters"] == "namespace VARCHAR = NULL, category VARCHAR = NULL"
    code, out, _ = cli(["queries", "denied"], capsys, monkeypatch)
    assert code == 0 and out.startswith("denied: Denied flows")
    assert "namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace" in out
    assert "Reporter rule:" in out


def test_a_users_queries_folder_adds_and_overrides(store: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my-count.sql").write_text(
        "-- description: Count records of one action.\n-- param: action VARCHAR = 'deny'  -- the verdict\n"
        "SELECT count(*) AS n FROM flows WHERE action = $action\n"
    )
    code, out, _ = cli(["queries", "--queries", str(mine), "-f", "csv"], capsys, monkeypatch)
    assert "my-count,Count records of one action.,action VARCHAR = 'deny'" in out
    code, out, _ = cli(
        ["query", "my-count", "--queries", str(mine), "--store", str(store), "-f", "jsonl"],
        capsys,
        monkeypatch,
    )
    assert code == 0 and json.loads(out) == {"n": 2}
    monkeypatch.setattr(
        sys,
        "argv",
        ["flowlens", "query", "my-count", "--store", str(store), "-f", "jsonl", "-p", "action=allow"],
    )
    monkeypatch.setenv("FLOWLENS_QUERIES", str(mine))
    with pytest.raises(SystemExit):
        main()
    assert json.loads(capsys.readouterr().out) == {"n": 1}


def test_a_query_without_a_namespace_parameter_rejects_namespace(
    store: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "plain.sql").write_text("-- description: d\nSELECT 1 AS one\n")
    code, _, err = cli(
        ["query", "plain", "--queries", str(mine), "--store", str(store), "-n", "x"], capsys, monkeypatch
    )
    assert code == 5 and "no namespace parameter" in err


def test_the_config_files_queries_folder_is_read(store: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    mine = tmp_path / "cfg-queries"
    mine.mkdir()
    (mine / "denied.sql").write_text("-- description: Overridden.\nSELECT 'mine' AS who\n")
    (tmp_path / "flowlens.yaml").write_text(f"store: {store}\nqueries: ./cfg-queries\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWLENS_CONFIG", raising=False)
    code, out, _ = cli(["query", "denied", "-f", "jsonl"], capsys, monkeypatch)
    assert code == 0 and json.loads(out) == {"who": "mine"}
