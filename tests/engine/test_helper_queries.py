"""Helper queries say who runs them and what tables they need, and stay out of the default listing."""

from __future__ import annotations

import json

from flowlens.engine import load_queries
from tests.helpers import QUESTION_QUERIES, run_cli


def test_helper_queries_declare_the_table_they_read():
    specs = load_queries()
    helpers = {name for name, spec in specs.items() if spec.requires}
    assert "coverage-edges" in helpers and specs["coverage-edges"].requires == ("coverage_facts",)
    assert {"denied", "unexpected-allowed", "coverage-facts"}.isdisjoint(helpers)
    assert specs["suggest-activity"].requires == ("suggest_sides",)
    for name in helpers:
        assert all(table in specs[name].sql for table in specs[name].requires)


def test_the_query_list_hides_helper_queries_unless_asked():
    plain = run_cli("queries", "--format", "csv")
    assert plain.code == 0
    names = [line.split(",", 1)[0] for line in plain.stdout.splitlines()[1:]]
    assert "denied" in names and "coverage-edges" not in names
    full = run_cli("queries", "--all", "--format", "csv")
    assert full.code == 0
    assert any(
        line.startswith("coverage-edges,") and line.endswith("coverage_facts")
        for line in full.stdout.splitlines()
    )


def test_every_shipped_query_either_answers_a_question_or_says_who_runs_it():
    specs = load_queries()
    assert sorted(name for name, spec in specs.items() if not spec.helper) == sorted(QUESTION_QUERIES)
    for name, spec in specs.items():
        if spec.helper:
            assert spec.used_by, f"{name}: say which command runs it (-- used-by: COMMAND)"
    assert specs["policy-flow-keys"].used_by == ("simulate",)
    assert specs["suggest-edges"].used_by == ("suggest",)
    assert specs["coverage-facts"].used_by == ("report",) and not specs["coverage-facts"].requires


def test_the_default_list_is_the_question_queries_and_all_marks_the_helpers():
    plain = run_cli("queries", "--format", "json")
    assert plain.code == 0, plain
    assert [q["name"] for q in json.loads(plain.stdout)] == sorted(QUESTION_QUERIES)
    full = run_cli("queries", "--all", "--format", "json")
    assert full.code == 0, full
    listed = {q["name"]: q for q in json.loads(full.stdout)}
    assert set(listed) == set(load_queries())
    assert listed["policy-endpoints"]["used_by"] == "explain"
    assert listed["coverage-edges"]["used_by"] == "report"
    assert listed["coverage-edges"]["requires"] == "coverage_facts"
    assert listed["denied"]["used_by"] == "" and listed["denied"]["requires"] == ""


def test_a_used_by_header_makes_a_users_query_a_helper(tmp_path):
    from flowlens.engine import parse_query

    spec = parse_query("-- description: d\n-- used-by: my-script, cron\nSELECT 1\n", "mine", "mine.sql")
    assert spec.helper and spec.used_by == ("my-script", "cron")
    assert spec.explanation == ""
