"""flowlens.store.repair: whatever the fault, repair then ingesting the sources again leaves every
valid line stored exactly once; nothing is deleted, what is set aside is in lost+found."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.ingest import ingest
from flowlens.store import Store, check
from flowlens.store.repair import repair
from tests.store.helpers import log_lines, quarantined, restored_from_backup, seen, valid, write_log


def _fed(tmp_path: Path, runs: int = 3) -> tuple[Store, Path, list[str]]:
    """A store fed by ``runs`` ingests of one growing log (bad lines among them)."""
    store = Store(tmp_path / "store")
    log = tmp_path / "flows.log"
    lines = log_lines(40 * runs, bad_every=13)
    for run in range(1, runs + 1):
        write_log(log, lines[: 40 * run])
        ingest(store, [str(log)])
    return store, log, lines


def _bad_lines(lines: list[str]) -> dict[tuple[str, int], int]:
    return {("flows.log", i + 1): 1 for i, line in enumerate(lines) if not line.endswith("}")}


def test_a_deleted_flows_file_comes_back_exactly_once_by_ingesting_its_source_again(tmp_path: Path) -> None:
    store, log, lines = _fed(tmp_path)
    lost = store.flow_files()[1]
    lost.unlink()
    result = repair(store)
    assert not result.after.damaged
    assert any("missing" in a for a in result.actions)
    assert result.reingest == (str(log),)
    assert (
        any(Path(p).name == lost.name or "lost+found" in p for p in result.set_aside)
        or result.set_aside == ()
    )
    assert len(seen(store)) < len(valid(lines))  # short now, and said so; never doubled
    summary = ingest(store, [str(log)])
    assert summary.balanced
    assert seen(store) == valid(lines)
    assert quarantined(store) == _bad_lines(lines)
    assert not check(store, deep=True).damaged


def test_a_zero_byte_flows_file_is_set_aside_into_lost_and_found_and_its_rows_restored(
    tmp_path: Path,
) -> None:
    store, log, lines = _fed(tmp_path)
    victim = store.flow_files()[0]
    victim.write_bytes(b"")
    result = repair(store)
    rel = victim.relative_to(store.root).as_posix()
    kept = [store.root / p for p in result.set_aside if p.endswith(rel)]
    assert kept and kept[0].is_file() and kept[0].stat().st_size == 0
    ingest(store, [str(log)])
    assert seen(store) == valid(lines)


def test_a_file_damaged_in_place_is_found_deep_and_restored(tmp_path: Path) -> None:
    store, log, lines = _fed(tmp_path)
    victim = store.flow_files()[-1]
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    result = repair(store)
    assert any("checksum" in a for a in result.actions)
    ingest(store, [str(log)])
    assert seen(store) == valid(lines)
    assert not check(store, deep=True).damaged


@pytest.mark.parametrize("how", ["deleted", "garbled"])
def test_a_lost_manifest_is_rebuilt_from_the_journal_and_the_next_ingest_adds_nothing(
    tmp_path: Path, how: str
) -> None:
    store, log, lines = _fed(tmp_path)
    before = json.loads(store.manifest_path.read_text())
    if how == "deleted":
        store.manifest_path.unlink()
    else:
        store.manifest_path.write_text('{"version": 2, "files": ')
    result = repair(store)
    assert any("rebuilt the manifest from the journal" in a for a in result.actions)
    rebuilt = json.loads(store.manifest_path.read_text())
    assert rebuilt["files"] == before["files"] and rebuilt["sources"] == before["sources"]
    summary = ingest(store, [str(log)])
    assert summary.total("rows") == 0 and summary.total("skipped") == len(lines)
    assert seen(store) == valid(lines)


def test_a_manifest_restored_from_an_older_backup_is_brought_forward_by_the_journal(tmp_path: Path) -> None:
    lines = log_lines(120)
    store, log = restored_from_backup(tmp_path, lines, 40)
    result = repair(store)
    assert any("it was stale" in a for a in result.actions)
    assert seen(store) == valid(lines)
    assert ingest(store, [str(log)]).total("rows") == 0


def test_without_manifest_and_journal_the_files_are_set_aside_and_ingest_stores_each_line_once(
    tmp_path: Path,
) -> None:
    store, log, lines = _fed(tmp_path)
    files = len(store.flow_files())
    store.manifest_path.unlink()
    shutil.rmtree(store.journal_dir)
    result = repair(store)
    assert len([p for p in result.set_aside if "/flows/" in p]) == files
    assert all((store.root / p).is_file() for p in result.set_aside)
    assert seen(store) == []
    ingest(store, [str(log)])
    assert seen(store) == valid(lines)
    assert quarantined(store) == _bad_lines(lines)


def test_losing_a_file_of_a_commit_that_read_two_sources_forgets_both_and_sets_aside_what_follows(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a_lines, b_lines = log_lines(60), log_lines(90, start=1000)
    write_log(a, a_lines)
    write_log(b, b_lines[:30])
    ingest(store, [str(a), str(b)])  # one commit, two sources, two days
    first_commit = store.flow_files()
    write_log(b, b_lines)
    ingest(store, [str(b)])  # b's later lines in a file of their own
    first_commit[0].unlink()
    result = repair(store)
    assert sorted(result.reingest) == sorted([str(a), str(b)])
    assert any("holding lines that must be read again" in x for x in result.actions)
    ingest(store, [str(a), str(b)])
    assert seen(store) == sorted(valid(a_lines) + valid(b_lines))


def test_repair_of_an_intact_store_changes_nothing(tmp_path: Path) -> None:
    store, _, _ = _fed(tmp_path)
    before = store.manifest_path.read_bytes()
    result = repair(store)
    assert result.actions == () and result.set_aside == ()
    assert store.manifest_path.read_bytes() == before


def test_a_stray_file_is_set_aside_or_with_adopt_listed_as_it_is(tmp_path: Path) -> None:
    from tests.factories import flow_row, write_store

    store, _, lines = _fed(tmp_path)
    other = write_store(tmp_path / "other", [flow_row(), flow_row(bytes_in=99_999)], name="copied")
    (copied,) = Store(other).disk_files("flows")
    target = store.flows_dir / copied.parent.name / copied.name
    target.parent.mkdir(exist_ok=True)
    shutil.copy(copied, target)
    result = repair(store, adopt=True)
    assert any("listed 1 file(s)" in a for a in result.actions)
    assert len(seen(store)) == len(valid(lines)) + 2
    target2 = target.with_name("copied-again.parquet")
    shutil.copy(copied, target2)
    result = repair(store)
    assert [Path(p).name for p in result.set_aside] == ["copied-again.parquet"]
    assert len(seen(store)) == len(valid(lines)) + 2


def test_a_damaged_summary_is_set_aside_and_written_again_by_the_next_ingest(tmp_path: Path) -> None:
    store, _, _ = _fed(tmp_path)
    summary_file = next((store.root / "summary").rglob("*.parquet"))
    summary_file.write_bytes(b"")
    result = repair(store)
    assert any("dropped 1 summary file(s)" in a for a in result.actions)
    write_log(tmp_path / "more.log", log_lines(3, start=700))
    summary = ingest(store, [str(tmp_path / "more.log")])
    assert any("summarised 1" in note for note in summary.recovered)
    assert not check(store, deep=True).problems


# --- every fault, any store -----------------------------------------------------------------

FAULTS = ["delete", "truncate", "empty", "flip", "manifest-deleted", "manifest-stale", "stray"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=4),
    fault=st.sampled_from(FAULTS),
    victim=st.integers(min_value=0, max_value=50),
)
def test_after_any_fault_repair_and_ingesting_again_stores_every_valid_line_exactly_once(
    tmp_path_factory: pytest.TempPathFactory, runs: list[int], fault: str, victim: int
) -> None:
    tmp = tmp_path_factory.mktemp("fault")
    store = Store(tmp / "store")
    sources = {name: log_lines(90, start=1000 * i, bad_every=11) for i, name in enumerate(("a", "b", "c"))}
    grown = {name: 0 for name in sources}
    backup = None
    for step, count in enumerate(runs):
        names = list(sources)[:count]
        for name in names:
            grown[name] = min(90, grown[name] + 30)
            write_log(tmp / f"{name}.log", sources[name][: grown[name]])
        ingest(store, [str(tmp / f"{n}.log") for n in names])
        if step == 0:
            backup = store.manifest_path.read_bytes()
    files = store.flow_files()
    target = files[victim % len(files)]
    if fault == "delete":
        target.unlink()
    elif fault == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif fault == "empty":
        target.write_bytes(b"")
    elif fault == "flip":
        data = bytearray(target.read_bytes())
        data[100] ^= 0xFF
        target.write_bytes(bytes(data))
    elif fault == "manifest-deleted":
        store.manifest_path.unlink()
    elif fault == "manifest-stale":
        assert backup is not None
        store.manifest_path.write_bytes(backup)
    else:
        (target.parent / "stray.parquet").write_bytes(b"PAR1")
    result = repair(store)
    assert not result.after.damaged
    logs = [str(tmp / f"{n}.log") for n in sources if grown[n]]
    summary = ingest(store, logs)
    assert summary.balanced
    expected = sorted(v for n in sources for v in valid(sources[n][: grown[n]]))
    assert seen(store) == expected
    assert sum(quarantined(store).values()) == sum(
        1 for n in sources for line in sources[n][: grown[n]] if not line.endswith("}")
    )
    assert max(quarantined(store).values(), default=1) == 1
    assert not check(store, deep=True).damaged


def test_a_run_of_several_commits_journals_every_lineage_it_changed(tmp_path: Path) -> None:
    """A run that commits more than once (here before the record-by-record check of a copy)
    goes on changing its manifest after the first commit: the next entry of the journal holds
    those changes, so a manifest rebuilt from the journal is the one that was lost."""
    lines = log_lines(60)
    write_log(tmp_path / "a.log", lines)
    write_log(tmp_path / "b.log", [*lines[:30], *log_lines(5, start=900)])  # a copy that diverges
    store = Store(tmp_path / "store")
    ingest(store, [str(tmp_path / "a.log")])
    write_log(tmp_path / "new.log", log_lines(10, start=500))
    ingest(store, [str(tmp_path / "new.log"), str(tmp_path / "b.log")])  # commits, then checks b
    before = json.loads(store.manifest_path.read_text())
    store.manifest_path.unlink()
    repair(store)
    assert json.loads(store.manifest_path.read_text())["sources"] == before["sources"]
    again = ingest(store, [str(tmp_path / n) for n in ("a.log", "new.log", "b.log")])
    assert again.total("rows") == 0 and again.total("already_stored") == 0
