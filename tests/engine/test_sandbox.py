"""The SQL sandbox: queries read the store's flows and nothing else, whoever wrote them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowlens.engine import connect, load_queries
from flowlens.engine.sandbox import check_statement, lock_down
from flowlens.errors import QueryError
from flowlens.store import Store
from flowlens.store.summaries import summarise_store
from tests.factories import flow_row, write_store
from tests.helpers import run_cli


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = write_store(tmp_path / "store", [flow_row(action="deny", reporter="dst"), flow_row()])
    summarise_store(Store(root))
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the store with files SQL must not reach."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_text("user,password\nroot,hunter2\n")
    pq.write_table(pa.table({"secret": ["hunter2"]}), folder / "secret.parquet")
    return folder


def _refused(store: Path, sql: str) -> str:
    code, out, err = run_cli("query", "--sql", sql, "--store", store, "-f", "json")
    assert code == 5, (sql, code, out, err)
    assert out == "" and "hunter2" not in err
    assert err.startswith("flowlens: error: ") and len(err.strip().splitlines()) == 1
    assert "docs/security.md" in err
    return err


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_text('/proc/self/cmdline')",
        "SELECT * FROM read_text('/dev/stdin')",
        "SELECT * FROM read_csv('/dev/zero')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM read_csv('https://example.com/flows.csv')",
        "SELECT * FROM read_parquet('s3://bucket/flows.parquet')",
        "SELECT * FROM 'http://127.0.0.1:9/x.parquet'",
    ],
)
def test_reading_a_path_outside_the_store_is_refused(store: Path, sql: str) -> None:
    err = _refused(store, sql)
    assert "refused" in err and "only the store's flows" in err


def test_files_beside_the_store_and_its_own_folders_cannot_be_read_or_listed(
    store: Path, outside: Path
) -> None:
    for sql in (
        f"SELECT * FROM read_csv('{outside / 'secret.csv'}')",
        f"SELECT * FROM read_parquet('{outside / 'secret.parquet'}')",
        f"SELECT * FROM '{outside / 'secret.parquet'}'",
        f"SELECT * FROM read_text('{store / 'flows'}/../../outside/secret.csv')",
        f"SELECT * FROM glob('{outside}/*')",
        f"SELECT * FROM glob('{store}/**')",
        f"SELECT * FROM read_text('{store / 'manifest.json'}')",
    ):
        _refused(store, sql)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("COPY (SELECT * FROM flows) TO '{out}/stolen.csv'", "COPY"),
        ("COPY flows_copy FROM '{out}/secret.csv'", "COPY"),
        ("ATTACH '{out}/x.duckdb' AS x", "ATTACH"),
        ("EXPORT DATABASE '{out}/dump'", "EXPORT"),
        ("INSTALL httpfs", "INSTALL or LOAD"),
        ("LOAD httpfs", "INSTALL or LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("SET allowed_directories = ['/']", "SET"),
        ("RESET lock_configuration", "SET"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("CALL pragma_version()", "CALL"),
        ("CREATE TABLE t AS SELECT * FROM flows", "CREATE"),
    ],
)
def test_statements_that_are_not_queries_are_refused(store: Path, outside: Path, sql: str, kind: str) -> None:
    err = _refused(store, sql.format(out=outside))
    assert f" {kind} statement" in err
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv", "secret.parquet"]


def test_a_second_statement_is_refused(store: Path, outside: Path) -> None:
    err = _refused(store, f"SELECT 1; COPY (SELECT 1) TO '{outside}/x.csv'")
    assert "one query; it has 2 statements" in err
    assert not (outside / "x.csv").exists()


def test_the_sandbox_holds_without_the_statement_check(store: Path, outside: Path) -> None:
    """DuckDB itself refuses: SQL sent straight to the engine's connection gets nowhere either."""
    with connect(store) as engine:
        for sql in (
            f"COPY (SELECT 1) TO '{outside}/x.csv'",
            f"ATTACH '{outside}/x.duckdb' AS x",
            f"EXPORT DATABASE '{outside}/dump'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "SET allowed_paths = ['/etc/passwd']",
            "SET allowed_directories = ['/']",
            "SET lock_configuration = false",
            "RESET lock_configuration",
            "SET autoload_known_extensions = true",
            f"SET temp_directory = '{outside}'",
            "SELECT * FROM read_text('/etc/passwd')",
            f"SELECT * FROM read_csv('{outside}/secret.csv')",
        ):
            with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
                engine.con.execute(sql).fetchall()
        assert engine.run("denied").num_rows == 1
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv", "secret.parquet"]


def test_every_shipped_query_runs_in_the_sandbox(store: Path) -> None:
    with connect(store) as engine:
        assert engine.sandboxed
        specs = load_queries()
        params = {"suggest-edges": {"namespaces": ["default"]}}
        for name, spec in specs.items():
            if not spec.requires:
                assert isinstance(engine.run(name, params.get(name)), pa.Table), name
        with engine.temporary_table("coverage_facts", engine.run("coverage-facts")):
            for name, spec in specs.items():
                if spec.requires == ("coverage_facts",):
                    assert isinstance(engine.run(name), pa.Table), name
        assert engine.sql("SELECT count(*) AS n FROM flows").to_pylist() == [{"n": 2}]
        assert engine.sql("SELECT count(*) AS n FROM flow_summary").num_rows == 1
        for sql in ("DESCRIBE flows", "SUMMARIZE flows", "EXPLAIN SELECT * FROM flows", "SHOW TABLES"):
            assert engine.sql(sql).num_rows > 0, sql
        with engine.temporary_table("extra", pa.table({"x": [1, 2]})):
            assert engine.sql("SELECT sum(x) AS s FROM extra").to_pylist() == [{"s": 3}]


def test_queries_read_the_store_through_any_path_to_it(store: Path, tmp_path: Path, monkeypatch) -> None:
    link = tmp_path / "link-to-store"
    link.symlink_to(store, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for root in (link, Path("store"), Path("link-to-store")):
        with connect(root) as engine:
            assert engine.run("denied").num_rows == 1


def test_a_window_of_very_many_files_allows_their_folders_and_nothing_beside(
    tmp_path: Path, monkeypatch
) -> None:
    root = tmp_path / "store"
    for day in (24, 25):
        at = dt.datetime(2026, 11, day, 12, tzinfo=dt.UTC)
        for i in range(3):
            write_store(root, [flow_row(start_time=at, end_time=at)], name=f"part-{i}")
    pq.write_table(pa.table({"secret": ["hunter2"]}), root / "flows" / "decoy.parquet")
    monkeypatch.setattr("flowlens.engine.sandbox.MAX_ALLOWED_PATHS", 2)
    with connect(root, since="2026-11-24", until="2026-11-25") as engine:
        ((folders,),) = engine.con.execute("SELECT current_setting('allowed_directories')").fetchall()
        assert [Path(f).name for f in folders if "date=" in f] == ["date=2026-11-24"]
        assert engine.sql("SELECT count(*) AS n FROM flows").to_pylist() == [{"n": 3}]
        for path in (root / "flows" / "decoy.parquet", *(root / "flows" / "date=2026-11-25").iterdir()):
            with pytest.raises(QueryError, match="refused"):
                engine.sql(f"SELECT * FROM '{path}'")


def test_an_allowed_folder_does_not_allow_a_folder_whose_name_starts_like_it(tmp_path: Path) -> None:
    for name in ("date=2026-11-24", "date=2026-11-24x"):
        (tmp_path / name).mkdir()
        pq.write_table(pa.table({"n": [1]}), tmp_path / name / "f.parquet")
    con = duckdb.connect()
    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as patch:
        patch.setattr("flowlens.engine.sandbox.MAX_ALLOWED_PATHS", 0)
        lock_down(con, [tmp_path / "date=2026-11-24" / "f.parquet"])
    assert con.sql(f"SELECT n FROM '{tmp_path}/date=2026-11-24/f.parquet'").fetchall() == [(1,)]
    with pytest.raises(duckdb.PermissionException):
        con.sql(f"SELECT n FROM '{tmp_path}/date=2026-11-24x/f.parquet'").fetchall()


def test_allow_external_lifts_the_sandbox_and_says_so(store: Path, outside: Path) -> None:
    sql = f"SELECT * FROM read_csv('{outside / 'secret.csv'}')"
    code, out, err = run_cli("query", "--sql", sql, "--store", store, "-f", "json", "--allow-external")
    assert code == 0 and json.loads(out) == [{"user": "root", "password": "hunter2"}]
    assert "warning: --allow-external" in err and "any file you can" in err


def test_the_statement_check_names_the_sql_it_refuses() -> None:
    con = duckdb.connect()
    check_statement(con, "WITH a AS (SELECT 1) SELECT * FROM a", "--sql")
    check_statement(con, "FROM (VALUES (1))", "--sql")
    with pytest.raises(QueryError, match=r"^query 'x' \(mine.sql\) failed: .*Parser Error"):
        check_statement(con, "SELEC 1", "query 'x' (mine.sql)")
    with pytest.raises(QueryError, match="not a COPY statement"):
        check_statement(con, "COPY (SELECT 1) TO 'x.csv'", "--sql")


def test_sql_on_spark_without_allow_external_is_refused_before_spark_starts(
    store: Path, outside: Path
) -> None:
    # Spark SQL reads any path the cluster can: there is no sandbox to run --sql in.
    sql = f"SELECT * FROM csv.`{outside / 'secret.csv'}`"
    code, out, err = run_cli("query", "--sql", sql, "--store", store, "--engine", "spark")
    assert code == 2 and out == ""
    assert "--sql on --engine spark runs outside any sandbox" in err and "--allow-external" in err
