"""A store at a Hadoop URL, read on Spark: every read goes through Hadoop's ``FileSystem`` API.

The store is the sample store, reached as ``viewfs://<table>/<mount>``: Hadoop's ViewFileSystem
(in the pyspark wheel's hadoop-client-api) with a mount table that points the mount at the store's
folder. Python's ``os`` cannot open such a URL, and the mount's path does not exist on this
machine, so every answer below was read through Hadoop (the driver's manifest, journal and
summaries, Spark's Parquet scans). The answers must be those of the same store read at its local
path by DuckDB. s3a://, gs://, abfss:// and hdfs:// themselves cannot be reached from the test
machines.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowlens.engine import EngineChoice, connect, open_engine
from flowlens.engine.spark import spark_session
from flowlens.errors import UsageError
from flowlens.store import Store
from flowlens.store.hadoop import HadoopFiles, open_hadoop
from tests.engine.helpers import explain_sample_args, sample_report_json
from tests.engine.test_spark import QUERIES, STANDALONE, _ordered, assert_query_same, assert_same
from tests.helpers import run_cli

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]


def mount(spark_choice: EngineChoice, folder: Path) -> str:
    """A new ``viewfs://`` URL whose mount is ``folder``, set in the session's Hadoop configuration."""
    table, point = f"flowlens{uuid.uuid4().hex[:8]}", f"/mnt-{uuid.uuid4().hex[:8]}"
    assert not Path(point).exists()  # the URL's path names nothing on this machine
    spark = spark_session(spark_choice.spark)
    spark._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{table}.link.{point}", folder.as_uri())
    return f"viewfs://{table}{point}"


@pytest.fixture(scope="module")
def url(sample_store: Path, spark_choice: EngineChoice) -> str:
    return mount(spark_choice, sample_store)


def test_the_store_files_go_through_hadoop(url: str, spark_choice: EngineChoice, sample_store: Path) -> None:
    store = open_hadoop(Store.at(url), spark_session(spark_choice.spark))
    assert isinstance(store.files, HadoopFiles)
    assert not store.root.exists()
    assert store.read_manifest() == Store(sample_store).read_manifest()
    assert store.snapshot().entries == Store(sample_store).snapshot().entries
    assert store.disk_files("flows") == [
        store.root / p.relative_to(sample_store) for p in Store(sample_store).disk_files("flows")
    ]
    flows = store.flow_files()[0]
    assert store.files.size(flows) == (sample_store / flows.relative_to(store.root)).stat().st_size
    with pytest.raises(FileNotFoundError):
        store.files.size(store.root / "nothing.parquet")


@pytest.fixture(scope="module")
def engines(url: str, sample_store: Path, spark_choice: EngineChoice) -> Iterator[tuple[Any, Any]]:
    with open_engine(url, spark_choice) as spark, connect(sample_store) as duck:
        yield spark, duck


@pytest.mark.parametrize("name", STANDALONE)
def test_every_named_query_on_the_url_gives_duckdbs_rows_on_the_folder(
    engines: tuple[Any, Any], name: str
) -> None:
    assert_query_same(*engines, name)


def test_a_window_with_partial_hours_reads_the_same_records(
    url: str, sample_store: Path, spark_choice: EngineChoice
) -> None:
    window = {"since": "2026-11-24T07:35:00Z", "until": "2026-11-25T13:20:00Z"}
    with open_engine(url, spark_choice, **window) as spark, connect(sample_store, **window) as duck:
        for name in ("unexpected-allowed", "coverage-facts"):
            assert_same(spark.run(name), duck.run(name), ordered=_ordered(QUERIES[name]))


def _same_output(url: str, sample_store: Path, *args: str | Path) -> str:
    duck = run_cli(*args, "--store", sample_store)
    spark = run_cli(*args, "--store", url, "--engine", "spark")
    assert duck.code == 0 and spark.code == 0, f"duckdb: {duck}\nspark: {spark}"
    assert spark.stdout_bytes == duck.stdout_bytes
    return duck.stdout


def test_query_suggest_simulate_and_explain_print_the_same(url: str, sample_store: Path) -> None:
    policies = REPO / "sample_logs" / "policies"
    assert json.loads(_same_output(url, sample_store, "query", "denied", "-f", "json", "-n", "production"))
    assert "kind: NetworkPolicy" in _same_output(url, sample_store, "suggest", "--all-namespaces")
    lines = _same_output(url, sample_store, "simulate", "--policies", policies, "-f", "jsonl").splitlines()
    assert len(lines) > 10
    explained = _same_output(url, sample_store, *explain_sample_args(REPO), "-f", "json")
    assert json.loads(explained)


def test_report_json_is_the_same(url: str, sample_store: Path, tmp_path: Path) -> None:
    documents = [
        sample_report_json(store, engine, tmp_path / engine)
        for store, engine in ((sample_store, "duckdb"), (url, "spark"))
    ]
    assert documents[0] == documents[1]
    assert documents[0]["summary"]["score"] is not None


def test_status_says_the_same_but_where_the_store_is(url: str, sample_store: Path) -> None:
    duck = run_cli("status", "--store", sample_store, "--json")
    spark = run_cli("status", "--store", url, "--engine", "spark", "--json")
    assert duck.code == 0 and spark.code == 0, f"duckdb: {duck}\nspark: {spark}"
    local, remote = json.loads(duck.stdout), json.loads(spark.stdout)
    assert (local.pop("store"), remote.pop("store")) == (str(sample_store), url)
    assert (local["integrity"].pop("store"), remote["integrity"].pop("store")) == (str(sample_store), url)
    assert remote == local
    assert local["rows"] > 0


def test_a_mount_given_with_spark_conf_to_a_running_session_is_used(
    sample_store: Path, spark_choice: EngineChoice
) -> None:
    table = f"flowlens{uuid.uuid4().hex[:8]}"
    setting = f"spark.hadoop.fs.viewfs.mounttable.{table}.link./s={sample_store.as_uri()}"
    args = ("query", "top-talkers", "-f", "csv")
    spark = run_cli(*args, "--store", f"viewfs://{table}/s", "--engine", "spark", "--spark-conf", setting)
    assert spark.code == 0, str(spark)
    assert spark.stdout_bytes == run_cli(*args, "--store", sample_store).stdout_bytes


def test_the_store_url_may_come_from_the_environment_or_the_config_file(
    url: str, sample_store: Path, tmp_path: Path
) -> None:
    args = ("query", "top-talkers", "-f", "csv", "--engine", "spark")
    want = run_cli("query", "top-talkers", "-f", "csv", "--store", sample_store).stdout_bytes
    by_env = run_cli(*args, env={"FLOWLENS_STORE": url})
    assert by_env.code == 0, str(by_env)
    assert by_env.stdout_bytes == want
    (tmp_path / "flowlens.yaml").write_text(f"store: {url}\n")
    by_config = run_cli(*args, cwd=tmp_path)
    assert by_config.code == 0, str(by_config)
    assert by_config.stdout_bytes == want


def test_duckdb_refuses_a_hadoop_url_in_one_line_that_says_what_to_do(url: str) -> None:
    result = run_cli("query", "denied", "--store", url)
    assert result.code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--engine spark" in result.stderr and "mount it" in result.stderr
    with pytest.raises(UsageError, match="--engine spark"):
        connect(url)


def test_a_url_hadoop_cannot_reach_is_one_line_that_says_so(spark_choice: EngineChoice) -> None:
    result = run_cli("query", "denied", "--store", "viewfs://no-such-table/store", "--engine", "spark")
    assert result.code == 2, str(result)
    assert result.stderr.strip().count("\n") == 0
    assert "cannot reach viewfs://no-such-table/ through Hadoop" in result.stderr
