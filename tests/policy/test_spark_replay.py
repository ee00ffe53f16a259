"""``simulate`` on Spark with the keys evaluated on the executors: the same JSONL, byte for byte,
as on DuckDB and as on Spark's driver, and the evaluation really happens in Spark's tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.engine import Engine, EngineChoice, connect, open_engine
from flowlens.errors import UsageError
from flowlens.policy import Evaluator, PolicySet, load_candidate
from flowlens.policy.render import write_simulation
from flowlens.policy.simulate import SimulationResult, simulate
from flowlens.policy.spark_replay import DEFAULT_DRIVER_KEYS, DRIVER_KEYS_CONF
from tests.engine.test_spark import _records
from tests.factories import write_store
from tests.helpers import run_cli
from tests.policy.helpers import policies

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
SAMPLE_POLICIES = REPO / "sample_logs" / "policies"

#: Policies for the random stores of tests/engine/test_spark.py (namespaces shop and data).
RANDOM_POLICIES = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: data}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 443}]}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: default.no-udp-out}
spec:
  selector: app == 'web'
  order: 10
  egress:
  - {action: Deny, protocol: UDP}
  - {action: Allow}
"""


def _jsonl(result: SimulationResult) -> str:
    pieces: list[str] = []
    write_simulation(result, "jsonl", pieces.append)
    return "".join(pieces)


def _three_ways(root: Path, choice: EngineChoice, policy_set: PolicySet) -> tuple[SimulationResult, ...]:
    """The replay on DuckDB, on Spark's driver, and on Spark's executors (threshold 0)."""
    with connect(root) as duck:
        on_duckdb = simulate(duck, policy_set)
    with open_engine(root, choice) as spark:
        on_driver = simulate(spark, policy_set, driver_keys=10**9)
        on_executors = simulate(spark, policy_set, driver_keys=0)
    return on_duckdb, on_driver, on_executors


@pytest.fixture()
def spark_engine(sample_store: Path, spark_choice: EngineChoice) -> Iterator[Engine]:
    with open_engine(sample_store, spark_choice) as engine:
        yield engine


def test_the_sample_gives_the_same_jsonl_on_duckdb_the_driver_and_the_executors(
    sample_store: Path, spark_choice: EngineChoice
) -> None:
    on_duckdb, on_driver, on_executors = _three_ways(
        sample_store, spark_choice, load_candidate([SAMPLE_POLICIES], [])
    )
    # Every key of the sample, with the notes and undecided verdicts of keys the facts cannot decide.
    assert len(on_duckdb.rows) > 1000 and any(r.undecided and r.notes for r in on_duckdb.rows)
    assert (on_duckdb.executor_keys, on_driver.executor_keys) == (0, 0)
    assert on_executors.executor_keys == len(on_executors.rows)
    assert on_executors.rows == on_duckdb.rows
    assert _jsonl(on_executors) == _jsonl(on_duckdb) == _jsonl(on_driver)


def test_the_command_line_sets_the_threshold_with_spark_conf(
    sample_store: Path, spark_choice: EngineChoice
) -> None:
    args: list[str | Path] = [
        "simulate",
        "--policies",
        SAMPLE_POLICIES,
        "--store",
        sample_store,
        "-f",
        "jsonl",
    ]
    duck = run_cli(*args)
    try:
        spark = run_cli(*args, "--engine", "spark", "--spark-conf", f"{DRIVER_KEYS_CONF}=0")
    finally:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        assert session is not None
        session.conf.unset(DRIVER_KEYS_CONF)  # the session serves the other tests
    assert duck.code == spark.code == 0
    assert spark.stdout_bytes == duck.stdout_bytes
    keys = len(duck.stdout.splitlines())
    assert f"{keys:,} flow keys evaluated on the Spark executors" in spark.stderr


def test_the_executors_evaluate_and_the_driver_does_not(
    spark_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_set = load_candidate([SAMPLE_POLICIES], [])

    def refuse(self: Evaluator, flow_key: Any) -> Any:
        raise AssertionError("evaluated on the driver")

    # The Python workers are processes of their own, which import the real Evaluator: only the
    # driver's is patched, and the driver path is shown to reach it.
    monkeypatch.setattr(Evaluator, "evaluate", refuse)
    with pytest.raises(AssertionError, match="evaluated on the driver"):
        simulate(spark_engine, policy_set, driver_keys=10**9)
    result = simulate(spark_engine, policy_set, driver_keys=0)
    # Counted by the tasks (a Spark accumulator), once per key: no key twice, none left out.
    assert result.executor_keys == len(result.rows) > 10


def test_the_threshold_counts_rows_of_the_key_query(spark_engine: Engine) -> None:
    policy_set = load_candidate([SAMPLE_POLICIES], [])
    keys = len(simulate(spark_engine, policy_set, driver_keys=0).rows)
    assert simulate(spark_engine, policy_set, driver_keys=keys - 1).executor_keys == keys
    # At most as many rows as twice the keys (a key recorded both allowed and denied has two).
    assert simulate(spark_engine, policy_set, driver_keys=2 * keys).executor_keys == 0


def test_a_bad_threshold_is_a_usage_error_naming_the_setting(spark_engine: Engine) -> None:
    session = spark_engine.spark  # type: ignore[attr-defined]
    policy_set = load_candidate([SAMPLE_POLICIES], [])
    for bad in ("many", "-1"):
        session.conf.set(DRIVER_KEYS_CONF, bad)
        try:
            with pytest.raises(
                UsageError, match=f"{DRIVER_KEYS_CONF}={bad}.*default is {DEFAULT_DRIVER_KEYS}"
            ):
                simulate(spark_engine, policy_set)
        finally:
            session.conf.unset(DRIVER_KEYS_CONF)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_records(), min_size=1, max_size=60))
def test_random_stores_give_the_same_jsonl_on_duckdb_the_driver_and_the_executors(
    tmp_path_factory: pytest.TempPathFactory, spark_choice: EngineChoice, rows: list[dict[str, Any]]
) -> None:
    root = write_store(tmp_path_factory.mktemp("random"), rows)
    on_duckdb, on_driver, on_executors = _three_ways(root, spark_choice, policies(RANDOM_POLICIES))
    assert on_executors.executor_keys == len(on_executors.rows) == len(on_duckdb.rows)
    assert _jsonl(on_executors) == _jsonl(on_duckdb) == _jsonl(on_driver)
