"""``flowlens ingest --engine spark`` stores what a DuckDB ingest stores: the same rows and
quarantined lines, the same accounting per file, the same lineages, exactly once, whatever engine
wrote the store before; a job killed half way leaves nothing and the next run completes it; and
``status --engine spark`` says what DuckDB's says. One Spark session (local[2]) serves the run."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlens.engine import EngineChoice, connect, open_engine
from flowlens.errors import StrictModeError, UsageError
from flowlens.ingest import IngestOptions, IngestSummary, ingest
from flowlens.ingest.spark import ingest_spark
from flowlens.ingest.spark_plan import plan_rounds
from flowlens.store import Store, describe
from flowlens.store.integrity import check
from tests.helpers import run_cli
from tests.ingest import helpers
from tests.ingest.helpers import layouts
from tests.ingest.helpers.numbered import numbered_lines, stored_numbers, write_lines

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
#: Columns that name the run, not the record.
RUN_COLUMNS = ("ingest_id",)


def _spark(store: Store, choice: EngineChoice, *paths: str | Path, **options: Any) -> IngestSummary:
    return ingest_spark(store, [str(p) for p in paths], IngestOptions(**options), settings=choice.spark)


def _duck(store: Store, *paths: str | Path, **options: Any) -> IngestSummary:
    return ingest(store, [str(p) for p in paths], IngestOptions(**options))


def _table(store: Store, kind: str) -> pa.Table | None:
    """Every committed file of ``kind`` (flows or quarantine) as one table, in record order."""
    snapshot = store.snapshot()
    files = sorted(e.path for e in snapshot.entries.values() if e.kind == kind)
    if not files:
        return None
    table = pa.concat_tables([pq.read_table(store.root / rel) for rel in files])
    table = table.drop_columns([c for c in RUN_COLUMNS if c in table.column_names])
    return table.sort_by([("source_file", "ascending"), ("source_line", "ascending")])


def assert_same_store(spark: Store, duck: Store) -> None:
    """The same rows and quarantined lines, column by column, type by type; the same files per
    day; the same lineages (by content) and checkpoints."""
    for kind in ("flows", "quarantine"):
        got, want = _table(spark, kind), _table(duck, kind)
        assert (got is None) == (want is None), kind
        if got is not None and want is not None:
            assert got.schema == want.schema, kind
            assert got.num_rows == want.num_rows, kind
            assert got.to_pylist() == want.to_pylist(), kind
    s, d = spark.snapshot(), duck.snapshot()
    assert s.dates() == d.dates()
    assert {e.kind for e in s.entries.values()} == {e.kind for e in d.entries.values()}
    for day in d.dates():  # every day's files carry an hourly summary on both engines
        assert any(e.kind == "summary" and f"date={day}" in e.path for e in s.entries.values())
    assert _lineages(spark) == _lineages(duck)


def _lineages(store: Store) -> list[tuple[str, str, list[dict[str, Any]]]]:
    sources = store.read_manifest()["sources"]
    return sorted((s["head"], Path(s["path"]).name, s["checkpoints"]) for s in sources)


def _per_file(summary: IngestSummary) -> list[dict[str, Any]]:
    return sorted(summary.as_dict()["per_file"], key=lambda f: f["path"])


def _jsonl(path: Path, docs: list[Any], *extra: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(json.dumps(d).encode() + b"\n" for d in docs) + b"".join(extra))
    return path


def node_logs(logs: Path, *, nodes: int, records: int) -> Path:
    """``logs/node-<i>/flows.log`` for ``nodes`` nodes, each of ``records`` records whose
    ``bytes_in`` (``i * 1000 + n``) names them; returns ``logs``."""
    for i in range(nodes):
        _jsonl(
            logs / f"node-{i}" / "flows.log",
            [{**json.loads(helpers.EXAMPLE_C), "bytes_in": i * 1000 + n} for n in range(records)],
        )
    return logs


def _corpus(root: Path) -> Path:
    """Every format and layout Calico writes, with every kind of bad line, in one folder."""
    felix = [layouts.felix_record(states, n) for n, states in enumerate(layouts.every_felix_layout())]
    bad = [
        b"{not json\n",
        b'{"start_time": "soon"}\n',
        b"\xff\xfe invalid utf-8 \xff\n",
        b"[1, 2, 3]\n",
        json.dumps({**felix[0], "action": "maybe"}).encode() + b"\n",
        json.dumps({**felix[1], "policies": {"all_policies": ["not|a|hit"]}}).encode() + b"\n",
        b"x" * 1_100_000 + b"\n",  # past the line limit
        b"\n",
    ]
    _jsonl(root / "felix" / "flows.log", felix[:1500], *bad, b'{"unfinished": ')
    gz = _jsonl(root / "felix" / "flows.log.1", felix[1500:], b"{broken\n")
    (root / "felix" / "flows.log.1.gz").write_bytes(gzip.compress(gz.read_bytes()))
    gz.unlink()
    whole = gzip.compress(b"".join(json.dumps(d).encode() + b"\n" for d in felix[:50]))
    (root / "felix" / "flows.log.2.gz").write_bytes(whole[: len(whole) // 2])  # cut short: read up to there
    hits = [
        {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id{i}", "_source": d}
        for i, d in enumerate(felix[:40])
    ]
    response = {"took": 5, "timed_out": False, "hits": {"total": {"value": 40}, "hits": hits}}
    (root / "es").mkdir()
    (root / "es" / "search.json").write_text(json.dumps(response, indent=2))
    _jsonl(root / "es" / "bulk.log", hits[:20], b'{"_index": "x", "_source": 5}\n')
    omitted = [frozenset(), frozenset({"dest_labels", "source_labels"}), frozenset({"policies"})]
    goldmane = [layouts.goldmane_flow(v, omitted[v % 3], wrapped=v % 2 == 1) for v in range(60)]
    _jsonl(root / "goldmane" / "flows.jsonl", goldmane, b'{"Key": 7}\n')
    whisker = [layouts.whisker_flow(v) for v in range(30)]
    (root / "whisker").mkdir()
    (root / "whisker" / "list.json").write_text(json.dumps({"total": {"totalPages": 1}, "items": whisker}))
    (root / "whisker" / "stream.txt").write_text(
        "".join(f"event: flow\ndata: {json.dumps(w)}\n\n" for w in whisker[:10])
    )
    (root / "notes.log").write_text("hello, not a flow log\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _corpus(tmp_path_factory.mktemp("corpus"))


def test_every_format_layout_and_bad_line_is_stored_as_a_duckdb_ingest_stores_it(
    tmp_path: Path, corpus: Path, spark_choice: EngineChoice
) -> None:
    spark_store, duck_store = Store(tmp_path / "spark"), Store(tmp_path / "duck")
    got = _spark(spark_store, spark_choice, corpus)
    want = _duck(duck_store, corpus)
    assert got.balanced and want.balanced
    assert got.total("rows") > 2000 and got.total("quarantined") >= 10
    assert _per_file(got) == _per_file(want)
    assert {f["format"] for f in _per_file(got)} >= {"enterprise", "elasticsearch", "goldmane", "whisker"}
    assert got.partitions == want.partitions
    assert_same_store(spark_store, duck_store)
    assert not check(spark_store).problems
    # The unfinished last line and the cut gzip wait, as on DuckDB.
    assert got.total("pending_bytes") == want.total("pending_bytes") > 0
    assert sorted(got.errors) == sorted(want.errors) and any("notes.log" in e for e in got.errors)


def test_the_sample_cluster_is_stored_row_for_row_as_a_duckdb_ingest_stores_it(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    sample = REPO / "sample_logs"
    if not (sample / "enterprise").is_dir():
        pytest.skip("sample_logs is not checked in")
    paths = [sample / name for name in ("enterprise", "elasticsearch", "goldmane", "whisker")]
    spark_store, duck_store = Store(tmp_path / "spark"), Store(tmp_path / "duck")
    got = _spark(spark_store, spark_choice, *paths)
    want = _duck(duck_store, *paths)
    assert got.balanced and got.total("rows") == want.total("rows") > 100_000
    assert _per_file(got) == _per_file(want)
    assert_same_store(spark_store, duck_store)
    # ... and every engine reads it: the named queries answer the same over both stores.
    with connect(spark_store.root) as a, connect(duck_store.root) as b:
        for name in ("denied", "top-talkers"):
            assert a.run(name).to_pylist() == b.run(name).to_pylist()


def test_content_already_ingested_adds_nothing_under_any_name_in_the_same_run_or_later(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    store = Store(tmp_path / "store")
    logs = tmp_path / "logs"
    log = _jsonl(logs / "flows.log", [json.loads(helpers.EXAMPLE_C)] * 50)
    shutil.copy(log, logs / "copy-of-flows.log")  # the same content twice in one run
    (logs / "flows.log.1.gz").write_bytes(gzip.compress(log.read_bytes()))  # and rotated, gzipped
    first = _spark(store, spark_choice, logs)
    assert first.total("rows") == 50 and first.total("skipped") == 100 and first.balanced
    again = _spark(store, spark_choice, logs)
    assert again.total("rows") == 0 and again.total("skipped") == 150
    renamed = tmp_path / "elsewhere" / "renamed.log"
    renamed.parent.mkdir()
    shutil.move(log, renamed)
    assert _spark(store, spark_choice, renamed).total("rows") == 0
    with renamed.open("ab") as fh:  # it grows: only the new lines are read
        fh.write(json.dumps(json.loads(helpers.EXAMPLE_B)).encode() + b"\n")
    grown = _spark(store, spark_choice, renamed)
    assert (grown.total("rows"), grown.total("skipped")) == (1, 50)
    assert store.snapshot().rows("flows") == 51


def test_a_store_written_by_one_engine_is_appended_to_by_the_other(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    store = Store(tmp_path / "store")
    log = _jsonl(tmp_path / "flows.log", [json.loads(helpers.EXAMPLE_C)] * 10)
    assert _duck(store, log).total("rows") == 10
    with log.open("ab") as fh:
        fh.write(b"".join(json.dumps(json.loads(helpers.EXAMPLE_D)).encode() + b"\n" for _ in range(5)))
    on_spark = _spark(store, spark_choice, log)
    assert (on_spark.total("rows"), on_spark.total("skipped")) == (5, 10)
    with log.open("ab") as fh:
        fh.write(json.dumps(json.loads(helpers.EXAMPLE_B)).encode() + b"\n")
    on_duck = _duck(store, log)
    assert (on_duck.total("rows"), on_duck.total("skipped")) == (1, 15)
    assert store.snapshot().rows("flows") == 16
    assert not check(store).problems
    with open_engine(store.root, spark_choice) as spark_engine, connect(store.root) as duck_engine:
        assert spark_engine.run("top-talkers").num_rows == duck_engine.run("top-talkers").num_rows


def test_strict_mode_stops_at_the_first_bad_line_and_writes_nothing(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    store = Store(tmp_path / "store")
    log = _jsonl(tmp_path / "flows.log", [json.loads(helpers.EXAMPLE_C)] * 3, b"{bad\n")
    with pytest.raises(StrictModeError, match=r"flows\.log:4: invalid JSON"):
        _spark(store, spark_choice, log, strict=True)
    assert store.snapshot().rows("flows") == 0
    assert not list(store.staging_dir.iterdir())


def test_standard_input_and_remote_urls_are_refused_with_what_to_do(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    with pytest.raises(UsageError, match="DuckDB engine only"):
        ingest_spark(Store(tmp_path / "s"), ["-"], settings=spark_choice.spark)
    # s3a:// needs the hadoop-aws connector, which the pyspark wheel does not ship
    with pytest.raises(
        UsageError, match=r"cannot reach s3a://bucket/ through Hadoop .*add its connector's jars"
    ):
        ingest_spark(Store(tmp_path / "s"), ["s3a://bucket/flows/"], settings=spark_choice.spark)


_KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
import flowlens.store.commit as commit
import flowlens.ingest.spark as spark_ingest
from flowlens.engine.settings import SparkSettings
from flowlens.ingest import IngestOptions
from flowlens.store import Store

where = sys.argv[3]
def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)
if where == "task":  # the first task's files are moved into the commit, the other's not yet
    original = spark_ingest._Run.take
    def take(self, result):
        original(self, result)
        die()
    spark_ingest._Run.take = take
else:  # a step of the commit itself
    commit.FAULT_HOOK = lambda step: die() if step == where else None
spark_ingest.ingest_spark(
    Store(Path(sys.argv[1])), [sys.argv[2]], IngestOptions(),
    settings=SparkSettings("local[2]", (("spark.ui.enabled", "false"),)),  # a static setting: a fresh session takes it
)
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["task", "moved"])
def test_a_job_killed_half_way_leaves_no_rows_and_the_next_run_completes_it(
    tmp_path: Path, spark_choice: EngineChoice, where: str
) -> None:
    logs = node_logs(tmp_path / "logs", nodes=4, records=25)
    store = Store(tmp_path / "store")
    script = tmp_path / "kill_me.py"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(script), str(store.root), str(logs), where],
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    decided = where == "moved"
    # Before the commit is decided, readers see nothing of the run; after, the next writer finishes it.
    assert not store.manifest_path.exists() or store.snapshot().rows("flows") == 0
    summary = _spark(store, spark_choice, logs)
    recovered = " ".join(summary.recovered)
    assert ("finished interrupted commit" if decided else "discarded unfinished commit") in recovered
    assert summary.total("rows") == (0 if decided else 100) and summary.balanced
    stored = sorted(
        r["bytes_in"] for r in pq.read_table(store.root / "flows").select(["bytes_in"]).to_pylist()
    )
    assert stored == sorted(i * 1000 + n for i in range(4) for n in range(25))
    assert not list(store.staging_dir.iterdir())
    assert not check(store).problems


def test_status_on_spark_says_what_status_on_duckdb_says(
    tmp_path: Path, corpus: Path, spark_choice: EngineChoice
) -> None:
    store = Store(tmp_path / "store")
    _duck(store, corpus)
    from flowlens.engine.spark_status import spark_facts

    assert describe(store, read_facts=spark_facts(spark_choice.spark)) == describe(store)
    duck = run_cli("status", "--store", store.root, "--json")
    spark = run_cli("status", "--store", f"file://{store.root}", "--json", "--engine", "spark")
    assert duck.code == spark.code == 0
    assert json.loads(spark.stdout) == json.loads(duck.stdout)


def test_the_command_line_ingests_on_spark_into_a_store_given_as_a_file_url(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    log = _jsonl(tmp_path / "logs" / "flows.log", [json.loads(helpers.EXAMPLE_C)] * 7)
    result = run_cli(
        "ingest", f"file://{log}", "--store", f"file://{tmp_path}/store", "--engine", "spark", "--json"
    )
    assert result.code == 0, result
    data = json.loads(result.stdout)
    assert (data["rows"], data["balanced"]) == (7, True)
    assert Store(tmp_path / "store").read_manifest()["ingests"][-1]["engine"] == "spark"
    usage = run_cli("ingest", str(log), "--store", tmp_path / "s2", "--spark-master", "local[1]")
    assert usage.code == 2 and "need --engine spark" in usage.stderr


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 1000)), min_size=1, max_size=30),
    st.integers(1, 8),
)
def test_sources_with_the_same_first_line_go_to_successive_rounds_each_in_one_task(
    sources: list[tuple[str, int]], slots: int
) -> None:
    files = [(f"f{i}", None) for i in range(len(sources))]
    keys = [key for key, _ in sources]
    rounds = plan_rounds(files, keys, [size for _, size in sources], slots=slots, ingest_id="x")
    placed = [i for tasks in rounds for task in tasks for i, _, _ in task.sources]
    assert sorted(placed) == list(range(len(sources)))  # every source once
    for r, tasks in enumerate(rounds):
        assert 1 <= len(tasks) <= slots
        members = [i for task in tasks for i, _, _ in task.sources]
        assert len({keys[i] for i in members}) == len(members)  # no first line twice in a round
        for i in members:  # the r-th source of its first line, in the run's order
            assert sum(1 for j in range(i) if keys[j] == keys[i]) == r
        for task in tasks:
            assert [i for i, _, _ in task.sources] == sorted(i for i, _, _ in task.sources)
    assert len({t.task_id for tasks in rounds for t in tasks}) == sum(len(tasks) for tasks in rounds)


def test_tasks_get_about_the_same_bytes() -> None:
    rounds = plan_rounds([(f"f{i}", None) for i in range(5)], list("abcde"), [100, 60, 50, 40, 10], 2, "x")
    assert [[i for i, _, _ in t.sources] for t in rounds[0]] == [[0, 3], [1, 2, 4]]  # 140 and 120 bytes


def test_copies_that_diverge_from_what_is_stored_add_only_their_new_records_as_on_duckdb(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    """A copy whose records must be checked one by one (flowlens.ingest.dedupe) is handed back by
    its task and read by the driver after the tasks' files are committed: an edited copy in the
    same run as its original, and a prefix copy ending between two checkpoints, later."""
    lines = numbered_lines(100)
    edited = [*lines[:40], json.dumps({**json.loads(lines[40]), "bytes_in": 5_000}), *lines[41:80]]
    stores = {}
    for engine in ("spark", "duckdb"):
        logs = tmp_path / engine
        logs.mkdir()
        original = write_lines(logs / "a.log", lines[:50])
        copy = write_lines(logs / "b.log", edited)
        store = Store(tmp_path / f"{engine}-store")

        def run(*paths: Path, store: Store = store, engine: str = engine) -> IngestSummary:
            return _spark(store, spark_choice, *paths) if engine == "spark" else _duck(store, *paths)

        first = run(original)
        write_lines(original, lines)  # the original grew: checkpoints at 50 and 100 lines
        second = run(original, copy)
        assert (second.total("rows"), second.total("already_stored")) == (51, 79), engine
        assert second.balanced and first.balanced
        prefix = run(write_lines(logs / "c.log", lines[:75]))
        assert (prefix.total("rows"), prefix.total("already_stored")) == (0, 25), engine
        assert [f.path for f in second.files] == [str(original), str(copy)]
        assert stored_numbers(store) == sorted([*range(100), 5_000])
        stores[engine] = (store, [_by_name(f) for f in (*_per_file(second), *_per_file(prefix))])
    assert stores["spark"][1] == stores["duckdb"][1]
    got, want = _table(stores["spark"][0], "flows"), _table(stores["duckdb"][0], "flows")
    assert got is not None and want is not None
    assert got.drop_columns(["source_file"]).to_pylist() == want.drop_columns(["source_file"]).to_pylist()


def _by_name(per_file: dict[str, Any]) -> dict[str, Any]:
    return {**per_file, "path": Path(per_file["path"]).name}


def test_with_strict_a_handed_back_copy_is_committed_with_the_tasks_files_or_nothing_is(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    store = Store(tmp_path / "store")
    lines = numbered_lines(60)
    grown = write_lines(tmp_path / "old.log", lines[:30])
    _spark(store, spark_choice, grown)
    write_lines(grown, lines)
    new = write_lines(tmp_path / "new.log", numbered_lines(10, start=500))
    copy = write_lines(tmp_path / "copy.log", [*lines[:45], "{not json"])
    with pytest.raises(StrictModeError):  # the copy is handed back, read after the tasks' files
        _spark(store, spark_choice, grown, new, copy, strict=True)
    assert stored_numbers(store) == list(range(30))
    write_lines(copy, [*lines[:45], json.dumps({**json.loads(lines[45]), "bytes_in": 9_000})])
    summary = _spark(store, spark_choice, grown, new, copy, strict=True)
    assert (summary.total("rows"), summary.total("already_stored")) == (41, 15)
    assert summary.balanced
    assert stored_numbers(store) == sorted([*range(60), *range(500, 510), 9_000])
    assert len(store.read_manifest()["ingests"]) == 2  # one record per run


def test_overlapping_elasticsearch_exports_store_each_hit_once_as_on_duckdb(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    """Two or more Elasticsearch sources in a run (or one, once the store holds hits) are read by
    the driver after the tasks, each hit checked by document id: two overlapping exports in one
    run, then a third overlapping both, store each hit once, with DuckDB's accounting."""
    felix = [layouts.felix_record(states, n) for n, states in enumerate(layouts.every_felix_layout())]
    hits = [
        {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id{i}", "_source": d}
        for i, d in enumerate(felix[:90])
    ]
    results = {}
    for engine in ("spark", "duckdb"):
        logs = tmp_path / engine
        logs.mkdir()
        search = logs / "search.json"
        search.write_text(json.dumps({"took": 1, "hits": {"hits": hits[:50]}}, indent=2))
        lines = _jsonl(logs / "hits.log", hits[30:70])
        other = _jsonl(logs / "other.log", felix[200:210])  # not Elasticsearch: read by a task
        store = Store(tmp_path / f"{engine}-store")
        run = (
            (lambda *p, s=store: _spark(s, spark_choice, *p))
            if engine == "spark"
            else (lambda *p, s=store: _duck(s, *p))
        )
        first = run(search, lines, other)
        later = run(_jsonl(logs / "more.log", hits[60:90]))
        assert (first.total("rows"), first.total("already_stored")) == (80, 20), engine
        assert (later.total("rows"), later.total("already_stored")) == (20, 10), engine
        assert first.balanced and later.balanced
        table = _table(store, "flows")
        assert table is not None
        ids = [i for i in table.column("es_id").to_pylist() if i is not None]
        assert sorted(ids) == sorted(f"id{i}" for i in range(90)), engine
        results[engine] = (table, [_by_name(f) for f in (*_per_file(first), *_per_file(later))])
    assert results["spark"][1] == results["duckdb"][1]
    got, want = results["spark"][0], results["duckdb"][0]
    assert got.drop_columns(["source_file"]).to_pylist() == want.drop_columns(["source_file"]).to_pylist()
