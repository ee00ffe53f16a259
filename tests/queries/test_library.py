"""Every file of the query library: header, parameters, portability, and a run on real-looking stores."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from flowlens.engine import VIEWS, QuerySpec, check_query, connect, load_queries, package_queries_dir
from flowlens.engine.functions import inline_functions, load_functions
from tests.factories import T0, flow_row, write_store
from tests.helpers import QUESTION_QUERIES

QUERIES = load_queries()
FUNCTIONS = load_functions()
SAMPLE_VALUES: dict[str, Any] = {
    "VARCHAR": "shop",
    "INTEGER": 10,
    "BIGINT": 10,
    "DOUBLE": 1.0,
    "BOOLEAN": True,
    "DATE": T0.date(),
    "TIMESTAMP": T0,
    "TIMESTAMPTZ": T0,
}


def _other_tables(spec: QuerySpec) -> set[str]:
    """Tables a query reads besides the engine's views and its own CTEs (a module registers them first)."""
    tree = sqlglot.parse_one(spec.sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(sqlglot.exp.CTE)}
    tables = {t.name for t in tree.find_all(sqlglot.exp.Table) if t.name}
    return tables - ctes - set(VIEWS)


STANDALONE = sorted(name for name, spec in QUERIES.items() if not _other_tables(spec))


def _required_params(spec: QuerySpec) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in spec.params:
        if p.required:
            base = p.type.removesuffix("[]")
            values[p.name] = [SAMPLE_VALUES[base]] if p.type.endswith("[]") else SAMPLE_VALUES[base]
    return values


def _busy_rows(n: int = 400, seed: int = 7) -> list[dict[str, Any]]:
    """A few hundred records over two days: every endpoint type, both reporters, allow and deny,
    pass hits, profiles, end-of-tier denies, staged denies, missing traces, ICMP without ports."""
    rnd = random.Random(seed)
    namespaces = ["shop", "data", "kube-system"]
    weps = [
        ("wep", ns, f"{app}-{i}abc-*", {"app": app, "team": ns})
        for ns in namespaces
        for i, app in enumerate(["web", "api", "db"])
    ]
    others = [
        ("net", "-", "pub", {}),
        ("net", "-", "pvt", {}),
        ("hep", "-", "node-1", {"role": "node"}),
        ("ns", "-", "partners", {}),
        ("ns", "shop", "office", {}),
    ]
    traces = [
        ["0|__PROFILE__|pro:kns.shop|allow|0"],
        ["0|security|gnp:security.base|pass|0", "1|default|knp:shop/allow-web|allow|1"],
        ["0|default|np:data/default.db|allow|0"],
        ["0|security|gnp:security.base|pass|0", "1|default|knp:data/default-deny|deny|-1"],
        ["0|security|gnp:security.block|deny|2"],
        ["0|__PROFILE__|__PROFILE__.kns.kube-system|allow"],
        None,
    ]
    rows = []
    for i in range(n):
        src = rnd.choice(weps + others[:3])
        dst = rnd.choice(weps + others)
        enforced = rnd.choice(traces)
        action = "deny" if enforced and enforced[-1].split("|")[3] == "deny" else "allow"
        pending = rnd.choice([enforced, ["0|default|sknp:shop/lockdown|deny|-1"]]) if enforced else None
        proto = rnd.choice(["tcp", "tcp", "udp", "icmp"])
        start = T0 + dt.timedelta(minutes=5 * rnd.randrange(0, 2 * 288))
        rows.append(
            flow_row(
                source_type=src[0],
                source_namespace=src[1],
                source_name_aggr=src[2],
                source_labels=src[3],
                dest_type=dst[0],
                dest_namespace=dst[1],
                dest_name_aggr=dst[2],
                dest_labels=dst[3],
                reporter=rnd.choice(["src", "dst", "dst", "fwd"]),
                action=action,
                enforced_policies=enforced,
                pending_policies=pending,
                proto=proto,
                dest_port=None if proto == "icmp" else rnd.choice([53, 80, 443, 5432]),
                dest_domains=rnd.choice([None, ["example.com"], ["b.example", "a.example"]]),
                start_time=start,
                end_time=start + dt.timedelta(minutes=5),
                num_flows=rnd.randrange(1, 5),
                num_flows_started=rnd.randrange(0, 4),
                bytes_in=rnd.randrange(0, 10_000),
                bytes_out=rnd.randrange(0, 10_000),
                source_line=i + 1,
            )
        )
    return rows


@pytest.fixture(scope="module")
def busy_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_store(tmp_path_factory.mktemp("busy"), _busy_rows())


def test_the_issue_queries_ship_in_the_package_with_hyphenated_names() -> None:
    for name in QUESTION_QUERIES:
        assert (package_queries_dir() / f"{name}.sql").is_file()
        assert name in QUERIES


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_declares_exactly_the_parameters_it_uses(name: str) -> None:
    spec = QUERIES[name]
    assert spec.description and "\n" not in spec.description
    assert check_query(spec) == []


@pytest.mark.parametrize("name", QUESTION_QUERIES)
def test_every_issue_query_explains_its_reporter_rule_and_takes_a_namespace(name: str) -> None:
    spec = QUERIES[name]
    assert "Reporter rule:" in spec.explanation
    assert spec.param("namespace") is not None
    assert "Columns:" in spec.explanation


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_transpiles_from_duckdb_to_spark(name: str) -> None:
    # An engine without SQL functions writes the engine's functions (endpoint_name) out first.
    sql = inline_functions(QUERIES[name].sql, FUNCTIONS)
    spark = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    assert len(spark) == 1 and spark[0].upper().startswith(("WITH", "SELECT"))
    assert not any(f in spark[0].lower() for f in FUNCTIONS)


@pytest.mark.parametrize("name", STANDALONE)
def test_every_query_gives_the_same_rows_with_its_functions_written_out(busy_store: Path, name: str) -> None:
    spec = QUERIES[name]
    inlined = inline_functions(spec.sql, FUNCTIONS)
    with connect(busy_store) as engine:
        expected = engine.run(name, _required_params(spec))
        got = engine.sql(inlined, engine.bind(name, _required_params(spec)))
    assert got.schema == expected.schema
    assert sorted(map(repr, got.to_pylist())) == sorted(map(repr, expected.to_pylist()))
    if name in QUESTION_QUERIES:  # ranked: in the same order too (helper queries have none)
        assert got.equals(expected)


def test_only_module_helper_queries_read_other_tables_than_flows() -> None:
    # coverage-* read coverage_facts, which flowlens.report.coverage registers before running them.
    helpers = {name: _other_tables(spec) for name, spec in QUERIES.items() if name not in STANDALONE}
    assert not set(QUESTION_QUERIES) & set(helpers)
    assert all(name.split("-")[0] in ("coverage", "suggest", "policy", "report") for name in helpers), helpers


@pytest.mark.parametrize("name", STANDALONE)
def test_every_query_runs_on_an_empty_store(tmp_path: Path, name: str) -> None:
    with connect(tmp_path) as engine:
        table = engine.run(name, _required_params(QUERIES[name]))
    assert table.num_rows == 0
    assert table.num_columns > 0


@pytest.mark.parametrize("name", STANDALONE)
def test_every_query_runs_on_a_busy_store(busy_store: Path, name: str) -> None:
    with connect(busy_store) as engine:
        table = engine.run(name, _required_params(QUERIES[name]))
    assert table.num_columns > 0


@pytest.mark.parametrize("name", QUESTION_QUERIES)
def test_issue_queries_give_the_same_rows_in_the_same_order_every_time(busy_store: Path, name: str) -> None:
    with connect(busy_store) as engine:
        first = engine.run(name)
    with connect(busy_store, threads=1) as engine:
        second = engine.run(name)
    assert first.num_rows > 0
    assert first.equals(second)


def test_denied_accounts_for_every_denied_record(busy_store: Path) -> None:
    with connect(busy_store) as engine:
        denied = engine.run("denied").to_pylist()
        expected = engine.sql(
            "SELECT count(*) AS n, sum(num_flows_started) AS c FROM flows WHERE action = 'deny'"
        ).to_pylist()[0]
    assert denied, "the busy store has denied flows"
    assert sum(r["records"] for r in denied) == expected["n"]
    assert sum(r["connections"] for r in denied) == expected["c"]
    keys = [
        (r["source"], r["dest"], r["proto"], r["dest_port"], r["side"], r["policy"], r["rule_index"])
        for r in denied
    ]
    assert len(keys) == len(set(keys))


def test_issue_queries_on_the_busy_store_cover_every_category(busy_store: Path) -> None:
    with connect(busy_store) as engine:
        categories = {r["category"] for r in engine.run("unexpected-allowed").to_pylist()}
        matrix = engine.run("namespace-matrix").to_pylist()
        talkers = engine.run("top-talkers").to_pylist()
    assert categories == {
        "default-allow",
        "public-ingress",
        "public-egress",
        "cross-namespace",
        "staged-deny",
        "host-endpoint",
    }
    assert sum(r["connections"] for r in matrix) == sum(r["connections"] for r in talkers) > 0


@pytest.mark.parametrize("name", QUESTION_QUERIES)
def test_an_injection_attempt_in_the_namespace_finds_nothing(busy_store: Path, name: str) -> None:
    with connect(busy_store) as engine:
        assert engine.run(name).num_rows > 0
        assert engine.run(name, {"namespace": "x' or 1=1 --"}).num_rows == 0
        assert engine.run(name, {"namespace": "shop'; DROP VIEW flows; --"}).num_rows == 0
        assert engine.run(name).num_rows > 0
