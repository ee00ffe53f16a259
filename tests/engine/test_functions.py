"""flowlens.engine.functions: endpoint display names, defined once, the same in every engine."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.engine import connect
from flowlens.engine.functions import inline_functions, load_functions, parse_function
from flowlens.errors import QueryError
from tests.factories import write_store
from tests.queries.helpers import flow, hep, net, netset, wep

FUNCTIONS = load_functions()

# (type, namespace, name_aggr) -> display name, for every kind of endpoint a flow log names.
DISPLAY_NAMES = [
    (("wep", "shop", "api-6c7d8e9f0-*"), "shop/api-6c7d8e9f0-*"),
    (("ns", "shop", "office-ips"), "shop/office-ips"),
    (("ns", "-", "partners"), "partners"),
    (("net", "-", "pub"), "pub"),
    (("net", "-", "pvt"), "pvt"),
    (("hep", "-", "node-1"), "node-1"),
    (("wep", None, "api-*"), "api-*"),
    (("wep", "shop", None), None),
]


def _display(type_: str | None, namespace: str | None, name: str | None) -> str | None:
    """The README's rule, written out in Python."""
    if name is None:
        return None
    if type_ in ("wep", "ns") and namespace not in (None, "-"):
        return f"{namespace}/{name}"
    return name


@pytest.fixture(scope="module")
def no_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store folder with no flows: the functions need a connection, not records."""
    return tmp_path_factory.mktemp("empty")


Rows = list[tuple[str | None, str | None, str | None]]


def _names_in_duckdb(store: Path, rows: Rows, inline: bool) -> list[str | None]:
    table = pa.table(
        {
            "type": [r[0] for r in rows],
            "namespace": [r[1] for r in rows],
            "name_aggr": [r[2] for r in rows],
            "n": list(range(len(rows))),
        }
    )
    sql = "SELECT endpoint_name(e.type, e.namespace, e.name_aggr) AS name FROM endpoints AS e ORDER BY n"
    if inline:
        sql = inline_functions(sql, FUNCTIONS)
        assert "endpoint_name" not in sql
    with connect(store) as engine, engine.temporary_table("endpoints", table):
        return engine.sql(sql).column("name").to_pylist()


@pytest.mark.parametrize("inline", [False, True], ids=["macro", "inlined"])
def test_every_endpoint_type_has_its_documented_display_name(no_store: Path, inline: bool) -> None:
    names = _names_in_duckdb(no_store, [key for key, _ in DISPLAY_NAMES], inline)
    assert names == [expected for _, expected in DISPLAY_NAMES]
    assert names == [_display(*key) for key, _ in DISPLAY_NAMES]


TEXT = st.one_of(
    st.none(),
    st.sampled_from(["-", "shop", "a/b", "it's", ""]),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.sampled_from(["wep", "ns", "net", "hep"])), TEXT, TEXT), max_size=20
    )
)
def test_the_display_name_follows_the_rule_for_any_values(no_store: Path, rows: Rows) -> None:
    expected = [_display(*r) for r in rows]
    assert _names_in_duckdb(no_store, rows, inline=False) == expected
    assert _names_in_duckdb(no_store, rows, inline=True) == expected


def test_the_queries_name_endpoints_with_it(tmp_path: Path) -> None:
    endpoints = [
        wep("shop", "api-1-*"),
        netset("shop", "office"),
        netset("-", "partners"),
        net("pub"),
        net("pvt"),
    ]
    endpoints.append(hep("node-1"))
    rows = [flow(src, dst, reporter="src", action="deny") for src in endpoints for dst in endpoints]
    write_store(tmp_path, rows)
    with connect(tmp_path) as engine:
        workloads = {r["endpoint"] for r in engine.run("workloads").to_pylist()}
        denied = engine.run("denied").to_pylist()
    expected = {_display(e[0], e[1], e[2]) for e in endpoints}
    assert workloads == expected == {"shop/api-1-*", "shop/office", "partners", "pub", "pvt", "node-1"}
    assert {r["source"] for r in denied} == {r["dest"] for r in denied} == expected


def test_the_function_is_plain_sql_that_spark_reads() -> None:
    function = FUNCTIONS["endpoint_name"]
    assert function.params == ("type", "namespace", "name_aggr")
    spark = sqlglot.transpile(
        function.body, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE
    )
    assert len(spark) == 1 and spark[0].upper().startswith("CASE")


def test_inlining_leaves_comments_and_strings_alone_and_refuses_what_it_cannot_write_out() -> None:
    sql = "SELECT endpoint_name(t, n, a), 'endpoint_name(x, y, z)' -- endpoint_name(p, q, r)\nFROM f"
    inlined = inline_functions(sql, FUNCTIONS)
    assert inlined.startswith(
        "SELECT (CASE WHEN t IN ('wep', 'ns') AND n <> '-' THEN n || '/' || a ELSE a END)"
    )
    assert inlined.endswith(", 'endpoint_name(x, y, z)' -- endpoint_name(p, q, r)\nFROM f")
    with pytest.raises(QueryError, match="must be column names"):
        inline_functions("SELECT endpoint_name(lower(t), n, a) FROM f", FUNCTIONS)
    with pytest.raises(QueryError, match="takes 3 arguments"):
        inline_functions("SELECT endpoint_name(t, n) FROM f", FUNCTIONS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- description: x\nSELECT 1", "first line must be '-- function: f"),
        ("-- function: g(a)\n-- description: x\na", "header says function 'g'"),
        ("-- function: f(a, a)\n-- description: x\na", "distinct names"),
        ("-- function: f(a)\na", "needs a '-- description"),
    ],
)
def test_a_malformed_function_file_is_a_query_error(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_function(text, "f", "f.sql")


def test_an_install_without_its_functions_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flowlens.engine import functions

    monkeypatch.setattr(functions, "package_functions_dir", lambda: tmp_path / "missing")
    with pytest.raises(QueryError, match="lacks its SQL functions"):
        connect(tmp_path)
