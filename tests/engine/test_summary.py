"""flowlens.store.summaries and the engine's flow_summary view: stored hourly summaries never change an answer."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.engine import connect
from flowlens.errors import StoreDamagedError
from flowlens.ingest import ingest
from flowlens.schema import ARROW_SCHEMA
from flowlens.store import SUMMARY_DIR, Store, describe, duckdb_connection, summary_path
from flowlens.store.summaries import SUMMARY_COLUMNS, build, summarise_table, summary_sql
from tests.factories import T0, flow_row, write_store
from tests.ingest.helpers import GOLDMANE_EXAMPLE, WHISKER_ITEM, WHISKER_PUBLIC
from tests.queries.helpers import summarise

KEYS = [
    c
    for c in SUMMARY_COLUMNS
    if c not in ("hour", "records", "connections", "bytes", "first_seen", "last_seen")
]

# flow_summary regrouped without the hour: stored summaries split an hour's group by file, so
# compare the sums per key.
REGROUPED = f"""
SELECT {", ".join(KEYS)}, sum(records) AS records, sum(connections) AS connections, sum(bytes) AS bytes,
    min(first_seen) AS first_seen, max(last_seen) AS last_seen
FROM flow_summary GROUP BY ALL ORDER BY ALL
"""

PODS = [("wep", "shop", "api-1-*"), ("wep", "shop", "web-2-*"), ("wep", "data", "db-3-*")]
OTHERS = [("net", "-", "pub"), ("net", "-", "pvt"), ("hep", "-", "node-1")]
TRACES = [
    ["0|__PROFILE__|pro:kns.shop|allow|0"],
    ["0|default|knp:shop/allow-web|allow|0"],
    ["0|security|gnp:security.gate|pass|1", "1|default|np:data/default.db|allow|2"],
    ["0|default|knp:data/deny-all|deny|-1"],
    ["0|security|gnp:security.gate|pass|1"],  # incomplete: no verdict logged
    None,  # policies not logged
]


def _row(spec: dict[str, Any]) -> dict[str, Any]:
    src, dst = spec["src"], spec["dst"]
    start = T0 + dt.timedelta(minutes=spec["minute"])
    return flow_row(
        source_type=src[0],
        source_namespace=src[1],
        source_name_aggr=src[2],
        dest_type=dst[0],
        dest_namespace=dst[1],
        dest_name_aggr=dst[2],
        dest_domains=spec["domains"],
        start_time=start,
        end_time=start + dt.timedelta(minutes=5),
        reporter=spec["reporter"],
        action=spec["action"],
        enforced_policies=spec["enforced"],
        pending_policies=spec["pending"],
        num_flows_started=spec["started"],
        bytes_in=spec["bytes_in"],
        dest_port=spec["port"],
    )


ROW = st.fixed_dictionaries(
    {
        "src": st.sampled_from(PODS + OTHERS),
        "dst": st.sampled_from(PODS + OTHERS),
        "minute": st.integers(min_value=-40, max_value=40).map(lambda k: 5 * k),  # Felix intervals
        "reporter": st.sampled_from(["src", "dst", "fwd"]),
        "action": st.sampled_from(["allow", "deny"]),
        "enforced": st.sampled_from(TRACES),
        "pending": st.sampled_from(TRACES),
        "started": st.one_of(st.none(), st.integers(min_value=0, max_value=50)),
        "bytes_in": st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
        "port": st.sampled_from([53, 443, 5432]),
        "domains": st.sampled_from([None, ["api.example.com"], ["cdn.example.com", "api.example.com"], []]),
    }
)
# Window edges: none, on the hour, on a record's start minute, or between records.
EDGE = st.one_of(
    st.none(),
    st.integers(min_value=-4, max_value=4).map(lambda h: T0 + dt.timedelta(hours=h)),
    st.integers(min_value=-46, max_value=46).map(lambda k: T0 + dt.timedelta(minutes=5 * k)),
    st.integers(min_value=-230, max_value=230).map(lambda m: T0 + dt.timedelta(minutes=m, seconds=17)),
)


def _answers(
    root: Path, since: dt.datetime | None, until: dt.datetime | None, summaries: bool
) -> dict[str, Any]:
    with connect(root, since=since, until=until, summaries=summaries) as engine:
        return {
            "regrouped": engine.sql(REGROUPED).to_pylist(),
            "unexpected-allowed": engine.run("unexpected-allowed").to_pylist(),
            "coverage-facts": sorted(engine.run("coverage-facts").to_pylist(), key=repr),
        }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.lists(ROW, min_size=0, max_size=25),
    second=st.lists(ROW, min_size=0, max_size=25),
    since=EDGE,
    until=EDGE,
)
def test_summaries_give_the_answers_the_records_give(
    tmp_path_factory: pytest.TempPathFactory,
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> None:
    if since is not None and until is not None and since >= until:
        since, until = until - dt.timedelta(hours=1), since + dt.timedelta(hours=1)
    root = tmp_path_factory.mktemp("store")
    # Two files per day, so that one hour's group is split across files.
    write_store(root, [_row(s) for s in first], name="a")
    write_store(root, [_row(s) for s in second], name="b")
    raw = _answers(root, since, until, summaries=False)
    assert summarise(root) == len(Store(root).flow_files())
    assert _answers(root, since, until, summaries=True) == raw
    assert _answers(root, since, until, summaries=False) == raw


def _store_with_summaries(tmp_path: Path) -> Path:
    rows = [
        _row(
            {
                "src": PODS[0],
                "dst": PODS[2],
                "minute": m,
                "reporter": "dst",
                "action": "allow",
                "enforced": TRACES[0],
                "pending": TRACES[3],
                "started": 2,
                "bytes_in": 100,
                "port": 5432,
                "domains": None,
            }
        )
        for m in range(-90, 90, 5)
    ]
    root = write_store(tmp_path / "store", rows)
    assert summarise(root) == 1
    return root


def test_a_summary_groups_an_hour_of_records_into_one_row(tmp_path: Path) -> None:
    root = _store_with_summaries(tmp_path)
    (flows_file,) = Store(root).flow_files()
    table = pq.read_table(summary_path(root, flows_file))
    assert table.column_names == list(SUMMARY_COLUMNS)
    rows = table.to_pylist()
    # 36 five-minute records from 10:30 to 13:25: hours 10, 11, 12 and 13.
    assert [r["hour"].hour for r in sorted(rows, key=lambda r: r["hour"])] == [10, 11, 12, 13]
    assert sum(r["records"] for r in rows) == 36
    assert sum(r["connections"] for r in rows) == 72
    assert {r["enforced_last_hit"] for r in rows} == {"0|__PROFILE__|pro:kns.shop|allow|0"}
    assert {r["pending_deny_hit"] for r in rows} == {"0|default|knp:data/deny-all|deny|-1"}


def test_the_window_edges_are_read_from_the_records(tmp_path: Path) -> None:
    root = _store_with_summaries(tmp_path)
    since, until = T0 - dt.timedelta(minutes=47), T0 + dt.timedelta(minutes=33)
    with connect(root, since=since, until=until) as engine:
        (row,) = engine.sql("SELECT sum(records) AS n, min(first_seen) AS f FROM flow_summary").to_pylist()
    # Records starting at 11:15 ... 12:30: 16 of them, the first at 11:15.
    assert row["n"] == 16
    assert row["f"] == T0 - dt.timedelta(minutes=45)


def test_a_flows_file_replaced_by_hand_stops_queries_instead_of_pairing_it_with_the_old_summary(
    tmp_path: Path,
) -> None:
    """The manifest lists each committed file with its size: a file rewritten behind flowlens' back
    is damage, reported as such, never read with the summary of what it held before."""
    root = _store_with_summaries(tmp_path)
    (flows_file,) = Store(root).flow_files()
    write_store(root, [flow_row(), flow_row(bytes_in=7, bytes_out=8)], name=flows_file.stem)
    with pytest.raises(StoreDamagedError, match=r"resized: flows/date=2026-11-25/part-0.parquet"):
        connect(root)


def test_a_removed_flows_file_makes_queries_say_the_store_is_damaged(tmp_path: Path) -> None:
    root = _store_with_summaries(tmp_path)
    for flows_file in Store(root).flow_files():
        flows_file.unlink()
    with pytest.raises(StoreDamagedError, match=r"missing: flows/.*flowlens repair"):
        connect(root)


def _log(path: Path, records: int, hour: int) -> Path:
    lines = []
    for i in range(records):
        start = int(dt.datetime(2026, 11, 25, hour, 5 * (i % 12), tzinfo=dt.UTC).timestamp())
        lines.append(
            json.dumps(
                {
                    "start_time": start,
                    "end_time": start + 300,
                    "source_type": "wep",
                    "source_namespace": "shop",
                    "source_name_aggr": "web-1-*",
                    "dest_type": "wep",
                    "dest_namespace": "data",
                    "dest_name_aggr": "db-2-*",
                    "dest_port": 5432,
                    "proto": "tcp",
                    "action": "allow",
                    "reporter": "dst",
                    "policies": {"enforced_policies": ["0|default|knp:data/allow-web|allow|0"]},
                    "bytes_in": 10,
                    "bytes_out": 20,
                    "num_flows_started": 1,
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ingest_writes_a_summary_beside_each_flows_file_in_the_same_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [str(_log(tmp_path / "a.log", 24, 9))])
    ingest(store, [str(_log(tmp_path / "b.log", 12, 10))])
    files = store.flow_files()
    assert len(files) == 2
    for flows_file in files:
        summary = pq.read_table(summary_path(store.root, flows_file)).to_pylist()
        assert sum(r["records"] for r in summary) == pq.ParquetFile(flows_file).metadata.num_rows
    assert not (store.root / ".staging").exists() or not any((store.root / ".staging").iterdir())
    with connect(store.root) as engine:
        (row,) = engine.sql("SELECT sum(records) AS n, sum(bytes) AS b FROM flow_summary").to_pylist()
    assert (row["n"], row["b"]) == (36, 36 * 30)
    for since, until in (
        (None, None),
        (T0 - dt.timedelta(hours=2, minutes=50), T0 - dt.timedelta(minutes=95)),
    ):
        assert _answers(store.root, since, until, True) == _answers(store.root, since, until, False)


def test_the_next_ingest_summarises_files_written_before_summaries_existed(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [str(_log(tmp_path / "a.log", 24, 9))])
    shutil.rmtree(store.root / SUMMARY_DIR)
    summary = ingest(store, [str(_log(tmp_path / "b.log", 12, 10))])
    assert "summarised 1 older flows file(s) for faster queries" in summary.recovered
    assert all(summary_path(store.root, f).is_file() for f in store.flow_files())


SHUFFLED_TRACES = [
    *TRACES,
    [],
    ["1|default|knp:shop/allow-web|allow|0", "0|security|gnp:security.gate|pass|1"],  # unsorted
    ["0|default|knp:data/deny-all|deny|0", "1|default|knp:shop/allow-web|allow|0"],  # malformed
]
TRACE_ROW = ROW.flatmap(
    lambda spec: st.fixed_dictionaries(
        {"enforced": st.sampled_from(SHUFFLED_TRACES), "pending": st.sampled_from(SHUFFLED_TRACES)}
    ).map(lambda traces: {**spec, **traces})
)


@settings(max_examples=40, deadline=None)
@given(specs=st.lists(TRACE_ROW, min_size=0, max_size=40), cut=st.integers(min_value=0, max_value=5))
def test_the_arrow_summary_of_a_table_equals_the_sql_summary(specs: list[dict[str, Any]], cut: int) -> None:
    # ingest summarises the Arrow tables it writes with array arithmetic; backfill and the
    # flow_summary view use SUMMARY_SQL. Both must give the same rows, also for slices.
    table = pa.Table.from_pylist([_row(s) for s in specs], schema=ARROW_SCHEMA)
    table = table.slice(min(cut, table.num_rows))  # offsets that do not start at 0 ...
    table = table.slice(0, max(0, table.num_rows - cut))  # ... and values past the last trace
    con = duckdb_connection()
    try:
        con.register("t", table)
        expected = con.sql(f"SELECT * FROM ({summary_sql('t')}) ORDER BY ALL").fetchall()
        got = summarise_table(table)
        con.register("g", got)
        assert got.column_names == list(SUMMARY_COLUMNS)
        assert con.sql("SELECT * FROM g ORDER BY ALL").fetchall() == expected
        # Ingest appends the summary of each batch: the sums per group are what counts.
        parts = pa.concat_tables([summarise_table(table.slice(0, 3)), summarise_table(table.slice(3))])
        con.register("parts", parts)
        regrouped = con.sql(REGROUPED.replace("flow_summary", "parts").replace("SELECT ", "SELECT hour, ", 1))
        con.register("t_summary", con.sql(summary_sql("t")).to_arrow_table())
        expected_sums = con.sql(
            REGROUPED.replace("flow_summary", "t_summary").replace("SELECT ", "SELECT hour, ", 1)
        )
        assert regrouped.fetchall() == expected_sums.fetchall()
    finally:
        con.close()


def test_status_counts_the_flows_files_that_have_their_summary(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [str(_log(tmp_path / "a.log", 24, 9))])
    assert describe(store).summarised_files == describe(store).files == 1
    shutil.rmtree(store.root / SUMMARY_DIR)
    assert describe(store).as_dict()["summarised_files"] == 0


def test_the_hour_is_rounded_down_on_both_paths_also_before_1970() -> None:
    starts = [
        dt.datetime(1969, 12, 31, 23, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 25, 12, 59, 59, tzinfo=dt.UTC),
    ]
    table = pa.Table.from_pylist([flow_row(start_time=t, end_time=t) for t in starts], schema=ARROW_SCHEMA)
    con = duckdb_connection()
    try:
        con.register("t", table)
        by_sql = sorted(r[0] for r in con.sql(f"SELECT hour FROM ({summary_sql('t')})").fetchall())
        by_arrow = sorted(summarise_table(table)["hour"].to_pylist())
    finally:
        con.close()
    expected = [
        dt.datetime(1969, 12, 31, 23, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
    ]
    assert by_sql == by_arrow == expected


def _ingest_and_sql_summaries(tmp_path: Path, logs: Path, records: int) -> tuple[pa.Table, pa.Table]:
    """Ingest ``logs`` into a new store; the summary ingest wrote and build()'s SQL summary of the
    same flows file, each regrouped by hour."""
    store = Store(tmp_path / "store")
    result = ingest(store, [str(logs)])
    assert result.total("quarantined") == 0 and result.total("rows") == records
    (flows_file,) = store.flow_files()
    con = duckdb_connection()
    try:
        sql_summary = tmp_path / "sql.parquet"
        build(con, flows_file, sql_summary)
        regroup = REGROUPED.replace("SELECT ", "SELECT hour, ", 1)
        by_ingest = con.sql(
            regroup.replace("flow_summary", f"read_parquet('{summary_path(store.root, flows_file)}')")
        ).to_arrow_table()
        by_sql = con.sql(regroup.replace("flow_summary", f"read_parquet('{sql_summary}')")).to_arrow_table()
    finally:
        con.close()
    return by_ingest, by_sql


def test_the_summary_ingest_writes_equals_the_sql_summary_of_its_flows_file(tmp_path: Path) -> None:
    # Ingest picks the deciding hits once per distinct policies text; build() decodes the stored
    # traces with SUMMARY_SQL. Every pair of traces (unsorted, incomplete and missing ones too)
    # must give the same groups and sums.
    lines = []
    pairs = [(e, p) for e in SHUFFLED_TRACES for p in SHUFFLED_TRACES]
    for i, (enforced, pending) in enumerate(pairs):
        start = int((T0 + dt.timedelta(minutes=5 * (i % 30))).timestamp())
        policies = {
            key: trace
            for key, trace in (("enforced_policies", enforced), ("pending_policies", pending))
            if trace is not None
        }
        doc = {
            "start_time": start,
            "end_time": start + 300,
            "source_type": "wep",
            "source_namespace": "shop",
            "source_name_aggr": f"web-{i % 3}-*",
            "dest_type": "net",
            "dest_namespace": "-",
            "dest_name_aggr": "pub",
            "dest_domains": [["api.example.com"], [], None][i % 3],
            "dest_port": 443,
            "proto": "tcp",
            "action": "deny" if i % 4 == 0 else "allow",
            "reporter": "src",
            "policies": policies if policies else None,
            "bytes_in": i,
            "bytes_out": 1,
            "num_flows_started": i % 2,
        }
        lines.append(json.dumps(doc))
    log = tmp_path / "flows.log"
    log.write_text("\n".join(lines) + "\n")
    by_ingest, by_sql = _ingest_and_sql_summaries(tmp_path, log, len(lines))
    assert by_ingest.to_pylist() == by_sql.to_pylist()
    assert sum(by_sql["records"].to_pylist()) == len(lines)
    # the pairs give every kind of deciding hit, and no hit at all
    deciding = set(by_sql["enforced_deciding_hit"].to_pylist())
    assert None in deciding and len(deciding) >= 5
    assert len(set(by_sql["pending_deny_hit"].to_pylist())) >= 2
    assert set(by_sql["external_dest"].to_pylist()) == {"api.example.com", "pub"}


def test_the_summary_of_goldmane_and_whisker_rows_equals_the_sql_summary(tmp_path: Path) -> None:
    # Formats whose traces come as hit objects are converted row by row (not per distinct text):
    # ingest picks their deciding hits from those rows before it encodes their strings.
    logs = tmp_path / "logs"
    logs.mkdir()
    goldmane = json.loads(GOLDMANE_EXAMPLE)
    lines = []
    for i in range(40):
        doc = json.loads(json.dumps(goldmane))
        doc["start_time"] = goldmane["start_time"] + 60 * (i % 20)
        doc["end_time"] = doc["start_time"] + 300  # (an end before the start is quarantined)
        doc["Key"]["action"] = 2 if i % 3 == 0 else 1  # deny or allow
        if i % 4 == 0:
            del doc["Key"]["policies"]["pending_policies"]
        lines.append(json.dumps(doc))
    (logs / "goldmane.json").write_text("\n".join(lines) + "\n")
    (logs / "whisker.json").write_text(json.dumps({"items": [WHISKER_ITEM, WHISKER_PUBLIC]}))
    by_ingest, by_sql = _ingest_and_sql_summaries(tmp_path, logs, len(lines) + 2)
    assert by_ingest.to_pylist() == by_sql.to_pylist()
    assert sum(by_sql["records"].to_pylist()) == len(lines) + 2
    assert len(set(by_sql["enforced_deciding_hit"].to_pylist())) >= 2
    assert None in set(by_sql["pending_last_hit"].to_pylist())  # the lines without a pending trace
