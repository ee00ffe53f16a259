"""The Spark engine gives what the DuckDB engine gives: every named query on the sample store and
on random stores, the views, parameters, errors. One Spark session (local[2]) serves the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.engine import Engine, EngineChoice, QuerySpec, connect, load_queries, open_engine
from flowlens.engine.spark import to_spark_sql
from flowlens.errors import QueryError, UsageError
from tests.engine.helpers import explain_sample_args, sample_report_json
from tests.factories import write_store
from tests.helpers import CliResult, run_cli
from tests.queries.helpers import flow

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
QUERIES = load_queries()
#: Columns whose values are the engine's own and only group rows: suggest-edges groups label
#: maps by hash(), and DuckDB's and Spark's hash functions differ.
ENGINE_OWN_COLUMNS = {"source_labels_hash", "dest_labels_hash"}
PARAMS: dict[str, dict[str, Any]] = {
    "suggest-edges": {"namespaces": ["production", "shop", "payments"]},
}


def _standalone(spec: QuerySpec) -> bool:
    tree = sqlglot.parse_one(spec.sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(sqlglot.exp.CTE)}
    return {t.name for t in tree.find_all(sqlglot.exp.Table)} - ctes <= {"flows", "flow_summary"}


def _ordered(spec: QuerySpec) -> bool:
    return sqlglot.parse_one(spec.sql, read="duckdb").args.get("order") is not None


STANDALONE = sorted(name for name, spec in QUERIES.items() if _standalone(spec))


def _plain(value: Any) -> Any:
    """A value with its maps as sorted key/value lists: a map's entries have no order, and Spark
    gives a map grouped on in key order."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return sorted(value, key=repr)
        return [_plain(v) for v in value]
    return value


def assert_same(got: pa.Table, expected: pa.Table, *, ordered: bool) -> None:
    """The same columns, types and rows (in the same order when ``ordered``)."""
    assert got.schema == expected.schema
    keep = [c for c in expected.column_names if c not in ENGINE_OWN_COLUMNS]
    rows = [_plain(r) for r in got.select(keep).to_pylist()]
    want = [_plain(r) for r in expected.select(keep).to_pylist()]
    if ordered:
        assert rows == want
    else:
        assert sorted(map(repr, rows)) == sorted(map(repr, want))


@pytest.fixture(scope="module")
def engines(sample_store: Path, spark_choice: EngineChoice) -> Iterator[tuple[Engine, Engine]]:
    with open_engine(sample_store, spark_choice) as spark, connect(sample_store) as duck:
        yield spark, duck


@pytest.mark.parametrize("name", STANDALONE)
def test_every_named_query_gives_duckdbs_rows_in_duckdbs_order_on_the_sample(
    engines: tuple[Engine, Engine], name: str
) -> None:
    assert_query_same(*engines, name)


def assert_query_same(spark: Engine, duck: Engine, name: str) -> None:
    """The named query gives on ``spark`` the rows it gives on ``duck`` (in its order, if it has one)."""
    params = PARAMS.get(name, {})
    expected = duck.run(name, params)
    assert expected.num_rows > 0, f"{name}: the sample should give rows"
    assert_same(spark.run(name, params), expected, ordered=_ordered(QUERIES[name]))


def test_parameters_are_bound_and_limits_cut_the_ranked_rows(engines: tuple[Engine, Engine]) -> None:
    spark, duck = engines
    for namespace in ("production", "nowhere", "it's"):
        expected = duck.run("denied", {"namespace": namespace}, limit=3)
        assert_same(spark.run("denied", {"namespace": namespace}, limit=3), expected, ordered=True)
    got = spark.sql("SELECT count(*) AS n FROM flows WHERE source_namespace = $ns", {"ns": "production"})
    assert (
        got.to_pylist()
        == duck.sql(
            "SELECT count(*) AS n FROM flows WHERE source_namespace = $ns", {"ns": "production"}
        ).to_pylist()
    )
    assert got.to_pylist()[0]["n"] > 0


def test_the_views_hold_the_same_records_and_summaries(engines: tuple[Engine, Engine]) -> None:
    spark, duck = engines
    counts = "SELECT date, count(*) AS n, sum(bytes_in) AS b FROM flows GROUP BY date ORDER BY date"
    assert_same(spark.sql(counts), duck.sql(counts), ordered=True)
    sums = (
        "SELECT hour, reporter, action, enforced_deciding_hit, pending_deny_hit, sum(records) AS records,"
        " sum(bytes) AS bytes, min(first_seen) AS first_seen FROM flow_summary GROUP BY ALL"
    )
    assert_same(spark.sql(sums), duck.sql(sums), ordered=False)


def test_a_window_and_its_partial_hours_read_the_same_records(
    sample_store: Path, spark_choice: EngineChoice
) -> None:
    window = {"since": "2026-11-24T07:35:00Z", "until": "2026-11-25T13:20:00Z"}
    for summaries in (True, False):
        with (
            open_engine(sample_store, spark_choice, summaries=summaries, **window) as spark,
            connect(sample_store, summaries=summaries, **window) as duck,
        ):
            for name in ("unexpected-allowed", "coverage-facts", "denied"):
                assert_same(spark.run(name), duck.run(name), ordered=_ordered(QUERIES[name]))


def test_an_empty_store_has_views_with_the_full_schema(tmp_path: Path, spark_choice: EngineChoice) -> None:
    with open_engine(tmp_path / "none", spark_choice) as spark, connect(tmp_path / "none") as duck:
        for name in ("denied", "unexpected-allowed", "top-talkers"):
            got = spark.run(name)
            assert got.num_rows == 0
            assert got.schema == duck.run(name).schema


def test_a_registered_table_is_read_by_the_helper_queries(engines: tuple[Engine, Engine]) -> None:
    spark, duck = engines
    facts = duck.run("coverage-facts")
    with spark.temporary_table("coverage_facts", facts), duck.temporary_table("coverage_facts", facts):
        for name in sorted(QUERIES):
            if name.startswith("coverage-") and name != "coverage-facts":
                assert_same(spark.run(name), duck.run(name), ordered=_ordered(QUERIES[name]))
    with pytest.raises(QueryError):
        spark.run("coverage-edges")


def test_bad_sql_is_one_query_error_naming_the_problem(engines: tuple[Engine, Engine]) -> None:
    spark, _ = engines
    with pytest.raises(QueryError, match="no_such_column"):
        spark.sql("SELECT no_such_column FROM flows")
    with pytest.raises(QueryError, match="one query; it has 2 statements"):
        spark.sql("SELECT 1; SELECT 2")


def test_the_views_are_renamed_but_a_query_still_names_them_and_their_columns() -> None:
    sql = to_spark_sql("SELECT flows.proto, len(dest_domains) FROM flows WHERE x = $v", {"flows": "t_1"})
    assert "t_1 AS flows" in sql and "flows.proto" in sql
    assert "ARRAY_SIZE(dest_domains)" in sql and ":v" in sql


def test_an_unknown_engine_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="duckdb, spark"):
        EngineChoice("presto")


# Random stores: the ranked queries on records drawn at random, both engines.

_ENDPOINTS = [
    ("wep", "shop", "web-*", {"app": "web"}),
    ("wep", "data", "db-*", {"app": "db", "tier": "data"}),
    ("hep", "-", "node-1", {"role": "node"}),
    ("net", "-", "pub", {}),
    ("net", "-", "pvt", {}),
    ("ns", "-", "partners", None),
]
_TRACES = [
    None,
    [],
    ["0|__PROFILE__|pro:kns.shop|allow|0"],
    ["0|security|gnp:security.base|pass|0", "1|default|knp:shop/allow-web|allow|1"],
    ["0|security|gnp:security.base|pass|0", "1|default|knp:data/default-deny|deny|-1"],
    ["0|security|gnp:security.block|deny|2"],
]


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    src, dst = draw(st.sampled_from(_ENDPOINTS)), draw(st.sampled_from(_ENDPOINTS))
    enforced = draw(st.sampled_from(_TRACES))
    maybe = st.none() | st.integers(0, 10**6)
    return flow(
        src,
        dst,
        minute=draw(st.integers(-120, 3000)),
        reporter=draw(st.sampled_from(["src", "dst", "fwd"])),
        action="deny" if enforced and "deny" in enforced[-1] else "allow",
        enforced_policies=enforced,
        pending_policies=draw(st.sampled_from(_TRACES)),
        proto=draw(st.sampled_from(["tcp", "udp", "icmp"])),
        dest_port=draw(st.none() | st.sampled_from([53, 80, 443])),
        dest_domains=draw(st.sampled_from([None, [], ["a.example"], ["b.example", "a.example"]])),
        num_flows_started=draw(st.none() | st.integers(0, 5)),
        bytes_in=draw(maybe),
        bytes_out=draw(maybe),
    )


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_records(), min_size=1, max_size=60))
def test_random_stores_give_the_same_answers_on_both_engines(
    tmp_path_factory: pytest.TempPathFactory, spark_choice: EngineChoice, rows: list[dict[str, Any]]
) -> None:
    root = write_store(tmp_path_factory.mktemp("random"), rows)
    with open_engine(root, spark_choice) as spark, connect(root) as duck:
        for name in ("denied", "unexpected-allowed", "coverage-facts", "top-talkers", "namespace-matrix"):
            assert_same(spark.run(name), duck.run(name), ordered=_ordered(QUERIES[name]))


# The commands on Spark: the same bytes as on DuckDB.


def _both(*args: str | Path, env: dict[str, str] | None = None) -> tuple[CliResult, CliResult]:
    duck = run_cli(*args, env=env)
    spark = run_cli(*args, "--engine", "spark", env=env)
    assert duck.code == spark.code, f"duckdb: {duck}\nspark: {spark}"
    return duck, spark


def test_query_prints_the_same_on_spark_chosen_by_option_environment_or_config(
    sample_store: Path, spark_choice: EngineChoice, tmp_path: Path
) -> None:
    duck, spark = _both("query", "denied", "--store", sample_store, "--format", "json", "-n", "production")
    assert duck.code == 0 and json.loads(duck.stdout)
    assert spark.stdout_bytes == duck.stdout_bytes
    by_env = run_cli(
        "query",
        "denied",
        "--store",
        sample_store,
        "-f",
        "json",
        "-n",
        "production",
        env={"FLOWLENS_ENGINE": "spark"},
    )
    assert by_env.stdout_bytes == duck.stdout_bytes
    (tmp_path / "flowlens.yaml").write_text(f"store: {sample_store}\nengine: spark\n")
    by_config = run_cli("query", "top-talkers", "-f", "csv", cwd=tmp_path)
    assert by_config.code == 0
    assert (
        by_config.stdout_bytes
        == run_cli("query", "top-talkers", "--store", sample_store, "-f", "csv").stdout_bytes
    )


def test_suggest_writes_the_same_policies_byte_for_byte(
    sample_store: Path, spark_choice: EngineChoice
) -> None:
    duck, spark = _both("suggest", "--store", sample_store, "--all-namespaces")
    assert duck.code == 0 and "kind: NetworkPolicy" in duck.stdout
    assert spark.stdout_bytes == duck.stdout_bytes


def test_simulate_and_explain_give_the_same_lines(sample_store: Path, spark_choice: EngineChoice) -> None:
    policies = REPO / "sample_logs" / "policies"
    duck, spark = _both("simulate", "--policies", policies, "--store", sample_store, "-f", "jsonl")
    assert duck.code == 0 and len(duck.stdout.splitlines()) > 10
    assert spark.stdout_bytes == duck.stdout_bytes
    first = json.loads(duck.stdout.splitlines()[0])
    assert first
    duck, spark = _both(*explain_sample_args(REPO), "--store", sample_store, "-f", "json")
    assert spark.stdout_bytes == duck.stdout_bytes


def test_report_json_is_the_same_apart_from_when_it_was_made(
    sample_store: Path, spark_choice: EngineChoice, tmp_path: Path
) -> None:
    documents = [
        sample_report_json(sample_store, engine, tmp_path / engine) for engine in ("duckdb", "spark")
    ]
    assert documents[0] == documents[1]
    assert documents[0]["summary"]["score"] is not None


def test_spark_options_without_the_spark_engine_are_a_usage_error(sample_store: Path) -> None:
    result = run_cli("query", "denied", "--store", sample_store, "--spark-master", "local[1]")
    assert result.code == 2 and "--engine spark" in result.stderr
    result = run_cli("query", "denied", "--store", sample_store, "--engine", "presto")
    assert result.code == 2 and "duckdb, spark" in result.stderr


def test_a_static_setting_the_session_already_has_is_no_error_and_another_value_is(
    spark_choice: EngineChoice,
) -> None:
    from flowlens.engine.settings import SparkSettings
    from flowlens.engine.spark import spark_session

    running = spark_session(spark_choice.spark)
    master = running.conf.get("spark.master")
    assert spark_session(SparkSettings(None, (("spark.master", master),))) is running
    with pytest.raises(UsageError, match="give it to spark-submit"):
        spark_session(SparkSettings(None, (("spark.executor.memory", "3g"),)))
