"""`flowlens query` and `flowlens queries`: formats, options, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.factories import flow_row, write_store
from tests.helpers import QUESTION_QUERIES, run_cli

DENY = ["0|security|gnp:security.base|pass|0", "1|default|knp:default/default-deny|deny|-1"]


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


def test_query_prints_an_aligned_table_on_stdout(store: Path) -> None:
    code, out, err = run_cli("query", "denied", "--store", str(store))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["source", "source_type", "dest", "dest_type"]
    assert set(lines[1]) == {"-", " "}
    assert len(lines) == 4
    assert "end of tier default: no rule matched (blamed on knp:default/default-deny)" in lines[2]


def test_csv_json_jsonl_and_markdown_carry_the_same_rows(store: Path) -> None:
    base = ["query", "denied", "--store", str(store), "--format"]
    _, out_csv, _ = run_cli(*base, "csv")
    _, out_json, _ = run_cli(*base, "json")
    _, out_jsonl, _ = run_cli(*base, "jsonl")
    _, out_md, _ = run_cli(*base, "markdown")
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


def test_parquet_needs_out_and_writes_the_table(store: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("query", "denied", "--store", str(store), "-f", "parquet")
    assert code == 2 and "--out" in err
    target = tmp_path / "denied.parquet"
    code, out, _ = run_cli("query", "denied", "--store", str(store), "-f", "parquet", "--out", str(target))
    assert code == 0 and out == ""
    assert pq.read_table(target).column("records").to_pylist() == [1, 1]


def test_out_writes_text_formats_to_a_file(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "denied.jsonl"
    code, out, _ = run_cli("query", "denied", "--store", str(store), "-f", "jsonl", "-o", str(target))
    assert code == 0 and out == ""
    assert len(target.read_text().splitlines()) == 2


def test_namespace_limit_and_param_options(store: Path) -> None:
    base = ["query", "denied", "--store", str(store), "-f", "jsonl"]
    _, out, _ = run_cli(*base, "--namespace", "other")
    assert [json.loads(x)["source"] for x in out.splitlines()] == ["other/client-5d8f7b9c6-*"]
    _, out, _ = run_cli(*base, "--param", "namespace=other")
    assert len(out.splitlines()) == 1
    _, out, _ = run_cli(*base, "--limit", "1")
    assert [json.loads(x)["connections"] for x in out.splitlines()] == [3]


def test_a_namespace_that_looks_like_sql_finds_nothing(store: Path) -> None:
    code, out, err = run_cli("query", "denied", "--store", store, "-p", "namespace=x' or 1=1 --", "-f", "csv")
    assert code == 0
    assert out.splitlines() == [out.splitlines()[0]]  # the header only
    code, out, err = run_cli("query", "denied", "--store", store, "-p", "namespace=x' or 1=1 --")
    assert code == 0 and "(no rows)" in err
    # --namespace takes only a namespace name: such text does not even reach the query
    code, out, err = run_cli("query", "denied", "--store", store, "--namespace", "x' or 1=1 --")
    assert code == 2 and out == "" and "is not a Kubernetes namespace name" in err


def test_since_and_until_choose_the_window(store: Path) -> None:
    base = ["query", "denied", "--store", str(store), "-f", "jsonl"]
    _, out, _ = run_cli(*base, "--since", "2026-11-25T12:00:00Z", "--until", "2026-11-25T12:01:00Z")
    assert len(out.splitlines()) == 2
    _, out, _ = run_cli(*base, "--since", "2026-11-25T12:00:01Z")
    assert out == ""
    code, _, err = run_cli(*base, "--since", "last tuesday")
    assert code == 2 and "--since: cannot read 'last tuesday'" in err


def test_ad_hoc_sql_runs_against_the_flows_view_with_bound_parameters(store: Path) -> None:
    code, out, _ = run_cli(
        "query",
        "--sql",
        "SELECT count(*) AS n FROM flows WHERE action = $a",
        "-p",
        "a=deny",
        "--store",
        str(store),
        "-f",
        "json",
    )
    assert code == 0 and json.loads(out) == [{"n": 2}]
    code, _, err = run_cli("query", "--sql", "SELECT nope FROM flows", "--store", str(store))
    assert code == 5 and "SQL failed" in err


def test_unknown_names_and_bad_parameters_are_clear_errors(store: Path) -> None:
    code, out, err = run_cli("query", "denyed", "--store", str(store))
    assert code == 5 and out == ""
    assert "no query named 'denyed'; valid names:" in err and "denied" in err and "unexpected-allowed" in err
    code, _, err = run_cli("query", "denied", "--store", str(store), "-p", "colour=red")
    assert code == 5 and "valid parameters: namespace" in err
    code, _, err = run_cli("query", "denied", "--store", str(store), "-p", "novalue")
    assert code == 2 and "NAME=VALUE" in err
    code, _, err = run_cli("query", "--store", str(store))
    assert code == 2 and "denied" in err
    code, _, err = run_cli("query", "denied", "--sql", "SELECT 1", "--store", str(store))
    assert code == 2 and "not both" in err


def test_a_missing_store_is_a_store_error(tmp_path: Path) -> None:
    code, _, err = run_cli("query", "denied", "--store", str(tmp_path / "nope"))
    assert code == 4 and "no flow store at" in err


def test_the_store_defaults_to_flowlens_store_from_the_environment(store: Path) -> None:
    result = run_cli("query", "denied", "-f", "jsonl", env={"FLOWLENS_STORE": str(store)})
    assert result.code == 0, result
    assert len(result.stdout.splitlines()) == 2


def test_queries_lists_names_descriptions_and_parameters() -> None:
    code, out, _ = run_cli("queries", "-f", "json")
    listed = {q["name"]: q for q in json.loads(out)}
    assert code == 0
    for name in QUESTION_QUERIES:
        assert listed[name]["description"]
    assert listed["unexpected-allowed"]["parameters"] == "namespace VARCHAR = NULL, category VARCHAR = NULL"
    code, out, _ = run_cli("queries", "denied")
    assert code == 0 and out.startswith("denied: Denied flows")
    assert "namespace VARCHAR = NULL  -- only flows whose source or destination is in this namespace" in out
    assert "Reporter rule:" in out


def test_a_users_queries_folder_adds_and_overrides(store: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my-count.sql").write_text(
        "-- description: Count records of one action.\n-- param: action VARCHAR = 'deny'  -- the verdict\n"
        "SELECT count(*) AS n FROM flows WHERE action = $action\n"
    )
    code, out, _ = run_cli("queries", "--queries", str(mine), "-f", "csv")
    assert "my-count,Count records of one action.,action VARCHAR = 'deny'" in out
    code, out, _ = run_cli("query", "my-count", "--queries", str(mine), "--store", str(store), "-f", "jsonl")
    assert code == 0 and json.loads(out) == {"n": 2}
    result = run_cli(
        "query",
        "my-count",
        "--store",
        store,
        "-f",
        "jsonl",
        "-p",
        "action=allow",
        env={"FLOWLENS_QUERIES": str(mine)},
    )
    assert result.code == 0, result
    assert json.loads(result.stdout) == {"n": 1}


def test_a_query_without_a_namespace_parameter_rejects_namespace(store: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "plain.sql").write_text("-- description: d\nSELECT 1 AS one\n")
    code, _, err = run_cli("query", "plain", "--queries", str(mine), "--store", str(store), "-n", "x")
    assert code == 5 and "no namespace parameter" in err


def test_the_config_files_queries_folder_is_read(store: Path, tmp_path: Path) -> None:
    mine = tmp_path / "cfg-queries"
    mine.mkdir()
    (mine / "denied.sql").write_text("-- description: Overridden.\nSELECT 'mine' AS who\n")
    (tmp_path / "flowlens.yaml").write_text(f"store: {store}\nqueries: ./cfg-queries\n")
    code, out, _ = run_cli("query", "denied", "-f", "jsonl", cwd=tmp_path)
    assert code == 0 and json.loads(out) == {"who": "mine"}
