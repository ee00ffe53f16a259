"""flowlens.store.integrity: every fault a store can have is found, named, and stops readers and
writers that it would make answer short or store twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flowlens.engine import connect
from flowlens.errors import StoreDamagedError
from flowlens.ingest import ingest
from flowlens.store import Store, check, describe
from tests.store.helpers import log_lines, restored_from_backup, seen, valid, write_log


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Store, list[str]]:
    """A store fed by two ingests of a growing log (two days, two flows files each)."""
    store = Store(tmp_path / "store")
    lines = log_lines(120, bad_every=25)
    log = tmp_path / "flows.log"
    write_log(log, lines[:60])
    ingest(store, [str(log)])
    write_log(log, lines)
    ingest(store, [str(log)])
    return store, lines


def _codes(store: Store, *, deep: bool = False) -> list[tuple[str, bool]]:
    return [(p.code, p.blocking) for p in check(store, deep=deep).problems]


def test_a_store_fresh_from_ingest_is_intact_quick_and_deep(two_runs) -> None:
    store, _ = two_runs
    assert _codes(store) == []
    report = check(store, deep=True)
    assert report.problems == () and not report.damaged
    assert report.files_checked == len(json.loads(store.manifest_path.read_text())["files"])


def test_the_manifest_lists_each_file_with_its_rows_size_and_checksum(two_runs) -> None:
    import pyarrow.parquet as pq
    import xxhash

    store, lines = two_runs
    files = json.loads(store.manifest_path.read_text())["files"]
    flows = {rel: e for rel, e in files.items() if e["kind"] == "flows"}
    assert sum(e["rows"] for e in flows.values()) == len(valid(lines))
    for rel, entry in files.items():
        data = (store.root / rel).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["xxh3_64"] == xxhash.xxh3_64(data).hexdigest()
        assert entry["rows"] == pq.read_metadata(store.root / rel).num_rows


def test_a_deleted_flows_file_is_missing_and_queries_and_status_say_so_instead_of_answering_short(
    two_runs,
) -> None:
    store, _ = two_runs
    victim = store.flow_files()[0]
    victim.unlink()
    assert ("missing", True) in _codes(store)
    with pytest.raises(StoreDamagedError, match=r"missing: flows/.*rows listed.*flowlens repair"):
        connect(store)
    status = describe(store)
    assert status.integrity is not None and status.integrity.damaged


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "resized"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "resized"),
    ],
)
def test_a_truncated_emptied_or_grown_file_is_found_by_the_quick_check(two_runs, damage, code) -> None:
    store, _ = two_runs
    damage(store.flow_files()[-1])
    assert (code, True) in _codes(store)
    with pytest.raises(StoreDamagedError):
        ingest(store, [str(store.root.parent / "flows.log")])


def test_a_file_rewritten_to_the_same_size_is_found_by_the_deep_check(two_runs) -> None:
    store, _ = two_runs
    path = store.flow_files()[-1]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # inside the first data page: the footer still reads
    path.write_bytes(bytes(data))
    assert _codes(store) == []  # the quick check looks at sizes only
    assert ("checksum", True) in _codes(store, deep=True)


def test_a_zero_byte_parquet_file_in_a_partition_crashes_nothing_and_stops_writers(two_runs) -> None:
    store, _ = two_runs
    stray = store.flows_dir / "date=2023-02-04" / "stray.parquet"
    stray.write_bytes(b"")
    assert ("unlisted", True) in _codes(store)
    status = describe(store)  # no crash
    assert status.rows == len(valid(two_runs[1]))
    assert seen(store) == valid(two_runs[1])  # readers read what the manifest lists
    with pytest.raises(
        StoreDamagedError, match=r"unlisted: flows/date=2023-02-04/stray.parquet: a zero-byte file"
    ):
        ingest(store, [str(store.root.parent / "flows.log")])


def test_a_file_that_is_not_parquet_is_a_notice(two_runs) -> None:
    store, _ = two_runs
    (store.flows_dir / "README.txt").write_text("notes")
    assert _codes(store) == [("foreign", False)]


def test_a_removed_manifest_stops_readers_and_writers_so_that_nothing_is_stored_twice(two_runs) -> None:
    store, _ = two_runs
    store.manifest_path.unlink()
    assert ("manifest-missing", True) in _codes(store)
    with pytest.raises(StoreDamagedError, match=r"no manifest\.json"):
        connect(store)
    with pytest.raises(StoreDamagedError, match="manifest-missing"):
        ingest(store, [str(store.root.parent / "flows.log")])


def test_a_manifest_restored_from_an_older_backup_is_stale(tmp_path: Path) -> None:
    store, log = restored_from_backup(tmp_path, log_lines(90), 30)
    codes = _codes(store)
    assert ("manifest-stale", True) in codes and ("unlisted", True) in codes
    with pytest.raises(StoreDamagedError, match="restored from an older copy"):
        connect(store)
    with pytest.raises(StoreDamagedError, match="manifest-stale"):
        ingest(store, [str(log)])


def test_an_unreadable_manifest_is_named(two_runs) -> None:
    store, _ = two_runs
    store.manifest_path.write_text("{not json")
    assert ("manifest-unreadable", True) in _codes(store)
    with pytest.raises(StoreDamagedError, match="cannot be read"):
        connect(store)


def test_a_deleted_journal_is_a_notice_and_the_next_commit_writes_a_full_entry(
    two_runs, tmp_path: Path
) -> None:
    store, _ = two_runs
    shutil.rmtree(store.journal_dir)
    assert _codes(store) == [("journal-behind", False)]
    write_log(tmp_path / "more.log", log_lines(3, start=500))
    ingest(store, [str(tmp_path / "more.log")])
    assert _codes(store, deep=True) == []
    assert [p.name.endswith(".full.json") for p in sorted(store.journal_dir.iterdir())] == [True]


def test_a_deleted_summary_is_a_notice_queries_read_the_records_and_ingest_writes_it_again(
    two_runs, tmp_path: Path
) -> None:
    store, lines = two_runs
    shutil.rmtree(store.root / "summary")
    assert {code for code, _ in _codes(store)} == {"missing"}
    assert not check(store).damaged
    with connect(store) as engine:
        assert engine.sql("SELECT sum(records) AS n FROM flow_summary")["n"][0].as_py() == len(valid(lines))
    write_log(tmp_path / "more.log", log_lines(3, start=500))
    summary = ingest(store, [str(tmp_path / "more.log")])
    assert any("summarised" in note for note in summary.recovered)
    assert _codes(store, deep=True) == []


def test_a_commit_left_decided_is_a_notice_not_damage(two_runs) -> None:
    store, _ = two_runs
    stage = store.staging_dir / "20990101T000000Z-deadbeef-000"
    stage.mkdir(parents=True)
    (stage / "commit.json").write_text(json.dumps({"generation": 99, "moves": []}))
    assert ("pending", False) in _codes(store)
    assert not check(store).damaged


def test_parquet_files_of_another_tool_without_a_manifest_are_read_and_listed_by_the_first_writer(
    tmp_path: Path,
) -> None:
    from tests.factories import flow_row, write_store

    root = write_store(tmp_path / "store", [flow_row(), flow_row(bytes_in=5)])
    store = Store(root)
    assert _codes(store) == [("unmanaged", False)]
    assert len(seen(store)) == 2
    write_log(tmp_path / "flows.log", log_lines(6))
    summary = ingest(store, [str(tmp_path / "flows.log")])
    assert any("listed the 1 data file(s)" in note for note in summary.recovered)
    assert len(seen(store)) == 8
    assert _codes(store, deep=True) == []


def test_a_store_of_an_older_flowlens_is_read_from_its_folders_and_listed_by_the_next_ingest(
    two_runs, tmp_path: Path
) -> None:
    store, lines = two_runs
    manifest = json.loads(store.manifest_path.read_text())
    legacy = {"version": 1, "sources": manifest["sources"], "ingests": manifest["ingests"]}
    store.manifest_path.write_text(json.dumps(legacy))
    shutil.rmtree(store.journal_dir)
    assert _codes(store) == [("legacy", False)]
    assert seen(store) == valid(lines)
    summary = ingest(store, [str(store.root.parent / "flows.log")])
    assert summary.total("rows") == 0  # its lineages still know every line
    upgraded = json.loads(store.manifest_path.read_text())
    assert upgraded["version"] == 2 and len(upgraded["files"]) == len(manifest["files"])
    assert _codes(store, deep=True) == []
