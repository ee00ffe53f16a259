"""flowlens.store.facts and the column fingerprint the manifest keeps: files of one set of columns
are read as one table, files of an older flowlens with fewer columns by name, both in full."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from flowlens.engine import connect
from flowlens.ingest import ingest
from flowlens.store import Store
from flowlens.store.facts import file_facts
from tests.store.helpers import log_lines, seen, valid, write_log


def _fed(tmp_path: Path) -> tuple[Store, list[str]]:
    store = Store(tmp_path / "store")
    lines = log_lines(120)
    for part in range(2):
        ingest(store, [str(write_log(tmp_path / f"n{part}.log", lines[part * 60 : (part + 1) * 60]))])
    return store, lines


def test_every_flows_file_ingest_writes_has_the_same_column_fingerprint(tmp_path: Path) -> None:
    store, _ = _fed(tmp_path)
    manifest = json.loads(store.manifest_path.read_text())
    flows = {rel: e for rel, e in manifest["files"].items() if e["kind"] == "flows"}
    assert len(flows) == 3
    assert len({e["columns"] for e in flows.values()}) == 1 and all(e["columns"] for e in flows.values())
    snapshot = store.snapshot()
    assert snapshot.same_columns(snapshot.flows())


def test_a_file_with_other_columns_has_another_fingerprint(tmp_path: Path) -> None:
    store, _ = _fed(tmp_path)
    path = store.flow_files()[0]
    other = tmp_path / "other.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["process_name"]), other)
    same = tmp_path / "same.parquet"
    pq.write_table(pq.read_table(path), same)
    assert file_facts(other).columns != file_facts(path).columns
    assert file_facts(same).columns == file_facts(path).columns


def test_files_of_an_older_flowlens_with_fewer_columns_are_read_by_name_in_full(tmp_path: Path) -> None:
    store, lines = _fed(tmp_path)
    # As an older flowlens left it: a manifest that lists no files, and a file without a column
    # that later versions added.
    manifest = json.loads(store.manifest_path.read_text())
    legacy = {"version": 1, "sources": manifest["sources"], "ingests": manifest["ingests"]}
    store.manifest_path.write_text(json.dumps(legacy))
    shutil.rmtree(store.journal_dir)
    old = store.flow_files()[0]
    table = pq.read_table(old)
    pq.write_table(table.drop_columns(["process_name"]), old)
    ingest(store, [str(tmp_path / "n0.log")])  # lists the files, with their fingerprints
    snapshot = store.snapshot()
    assert snapshot.generation is not None and not snapshot.same_columns(snapshot.flows())
    assert seen(store) == valid(lines)
    with connect(store) as engine:
        counted = engine.sql("SELECT count(*) AS n, count(process_name) AS named FROM flows")
    assert counted["n"][0].as_py() == len(valid(lines))
    assert counted["named"][0].as_py() == len(valid(lines)) - table.num_rows
