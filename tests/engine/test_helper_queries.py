"""Helper queries declare the tables they need and stay out of the default listing."""

from __future__ import annotations

from typer.testing import CliRunner

from flowlens.cli import app
from flowlens.engine import load_queries


def test_helper_queries_declare_the_table_they_read():
    specs = load_queries()
    helpers = {name for name, spec in specs.items() if spec.requires}
    assert "coverage-edges" in helpers and specs["coverage-edges"].requires == ("coverage_facts",)
    assert {"denied", "unexpected-allowed", "coverage-facts"}.isdisjoint(helpers)
    assert specs["suggest-activity"].requires == ("suggest_sides",)
    for name in helpers:
        assert all(table in specs[name].sql for table in specs[name].requires)


def test_the_query_list_hides_helper_queries_unless_asked():
    runner = CliRunner()
    plain = runner.invoke(app, ["queries", "--format", "csv"])
    assert plain.exit_code == 0
    names = [line.split(",", 1)[0] for line in plain.stdout.splitlines()[1:]]
    assert "denied" in names and "coverage-edges" not in names
    full = runner.invoke(app, ["queries", "--all", "--format", "csv"])
    assert full.exit_code == 0
    assert any(
        line.startswith("coverage-edges,") and line.endswith("coverage_facts")
        for line in full.stdout.splitlines()
    )
