"""``flowlens ingest --engine spark`` reads one large file in byte ranges, a task each, and stores
exactly what a DuckDB ingest of the whole file stores: the same rows and quarantined lines (line
numbers included), the same accounting per file, the same lineage and checkpoint, so that reading
it again adds nothing and an appended-to file resumes from its end. A tiny split size keeps the
files small: the ranges cut lines in the middle, right on a newline and right at a line's start."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.engine import EngineChoice
from flowlens.engine.spark import spark_session
from flowlens.errors import StrictModeError, UsageError
from flowlens.ingest import IngestOptions, IngestSummary, ingest, spark_split
from flowlens.ingest.spark import ingest_spark
from flowlens.ingest.spark_plan import SPLIT_BYTES_CONF, configured_split_bytes, parse_split_bytes
from flowlens.store import Store
from flowlens.store.hadoop import open_hadoop
from flowlens.store.integrity import check
from tests.ingest import helpers
from tests.ingest.helpers import layouts
from tests.ingest.helpers.numbered import numbered_lines
from tests.ingest.test_spark import _per_file, assert_same_store
from tests.ingest.test_spark_url_store import _mount
from tests.store.test_scratch import killed_owner_folder

BAD = [b"{not json", b'{"start_time": "soon"}', b"\xff\xfe invalid utf-8 \xff", b"[1, 2, 3]"]


def _records(fmt: str, n: int) -> list[bytes]:
    """``n`` records of ``fmt`` as lines (without line ends), every 9th one bad in one of four ways."""
    if fmt == "enterprise":
        good = [line.encode() for line in numbered_lines(n)]
    elif fmt == "elasticsearch":
        good = [
            json.dumps(
                {"_index": "tigera_secure_ee_flows.c1.x", "_id": f"id{i}", "_source": json.loads(line)}
            ).encode()
            for i, line in enumerate(numbered_lines(n))
        ]
    else:
        omitted = [frozenset(), frozenset({"dest_labels", "source_labels"}), frozenset({"policies"})]
        good = [
            json.dumps(layouts.goldmane_flow(v, omitted[v % 3], wrapped=v % 2 == 1)).encode()
            for v in range(n)
        ]
    return [BAD[(i // 9) % len(BAD)] if i % 9 == 4 else line for i, line in enumerate(good)]


def _cuts(data: bytes, start: int, split: int) -> list[int]:
    """The nominal cuts :func:`flowlens.ingest.spark_split.plan_split` makes of ``data`` read from
    ``start`` with a split size of ``split`` (its formula, restated)."""
    end = data.rfind(b"\n") + 1
    count = -(-(end - start) // split)
    step = -(-(end - start) // count)
    return [start + k * step for k in range(1, count)]


def _kinds(data: bytes, cuts: list[int]) -> set[str]:
    """How the cuts fall: on a newline, at a line's first byte, or inside a line."""
    return {
        "on a newline" if data[c] == 10 else "at a line start" if data[c - 1] == 10 else "mid-line"
        for c in cuts
    }


def _cut_every_way(lines: list[bytes], ranges: int = 4) -> tuple[bytes, int]:
    """``lines`` as a file, some padded with trailing blanks (which JSON ignores), and a split size
    that cuts it into ``ranges`` ranges: the first cut right on a newline, the second at a line's
    first byte, the others inside lines."""
    total = sum(len(line) + 1 for line in lines)
    reserve = 4000 + (-(total + 4000)) % ranges
    step = (total + reserve) // ranges
    pads = [0] * len(lines)

    def pad_to(newline_at: int) -> None:  # the last line ending before it now ends there
        pos = -1
        for i, line in enumerate(lines):
            end = pos + len(line) + pads[i] + 1
            if end >= newline_at:
                pads[i - 1] += newline_at - pos
                return
            pos = end

    pad_to(step)  # a newline right on the first cut
    pad_to(2 * step - 1)  # a line starts right on the second
    pads[-1] += reserve - sum(pads)
    assert pads[-1] >= 0
    data = b"".join(line + b" " * pad + b"\n" for line, pad in zip(lines, pads, strict=True))
    assert len(data) == step * ranges
    return data, step


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[spark_split.SplitPlan]:
    """Every source the driver plans to read in ranges, as it plans it."""
    made: list[spark_split.SplitPlan] = []
    original = spark_split.plan_split

    def spy(*args: Any, **kwargs: Any) -> spark_split.SplitPlan | None:
        plan = original(*args, **kwargs)
        if plan is not None:
            made.append(plan)
        return plan

    monkeypatch.setattr(spark_split, "plan_split", spy)
    return made


def _both(
    tmp_path: Path, choice: EngineChoice, split: int, **options: Any
) -> tuple[Callable[..., IngestSummary], Callable[..., IngestSummary], Store, Store]:
    spark_store, duck_store = Store(tmp_path / "spark"), Store(tmp_path / "duck")

    def on_spark(*paths: Path) -> IngestSummary:
        return ingest_spark(
            spark_store,
            [str(p) for p in paths],
            IngestOptions(**options),
            settings=choice.spark,
            split_bytes=split,
        )

    def on_duck(*paths: Path) -> IngestSummary:
        return ingest(duck_store, [str(p) for p in paths], IngestOptions(**options))

    return on_spark, on_duck, spark_store, duck_store


def _same_run(got: IngestSummary, want: IngestSummary) -> None:
    assert got.balanced and want.balanced
    assert _per_file(got) == _per_file(want)
    left, right = got.as_dict(), want.as_dict()
    for key in ("ingest_id", "store", "seconds", "per_file", "maintenance"):
        left.pop(key), right.pop(key)
    assert left == right


@pytest.mark.spark
@pytest.mark.parametrize("fmt", ["enterprise", "elasticsearch", "goldmane"])
def test_a_file_read_in_ranges_is_stored_as_a_duckdb_ingest_of_the_whole_file_stores_it(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan], fmt: str
) -> None:
    lines = _records(fmt, 240)
    whole, split = _cut_every_way(lines)
    data = whole + b'{"unfinished": '
    log = tmp_path / "logs" / "flows.log"
    log.parent.mkdir()
    log.write_bytes(data)
    on_spark, on_duck, spark_store, duck_store = _both(tmp_path, spark_choice, split)
    got, want = on_spark(log), on_duck(log)
    assert [p.path for p in plans] == [str(log)] and len(plans[0].parts) >= 4
    plan = plans[0]
    assert _kinds(data, _cuts(data, 0, split)) == {"on a newline", "at a line start", "mid-line"}
    # The ranges are whole lines, one after the other, and their first line numbers are exact.
    assert plan.parts[0].start == 0 and plan.parts[-1].end == data.rfind(b"\n") + 1
    for before, after in zip(plan.parts, plan.parts[1:], strict=False):
        assert before.end == after.start and data[after.start - 1] == 10
        assert after.first_line == data[: after.start].count(b"\n")
    # Bad lines in several ranges: quarantined with their line numbers, as on DuckDB.
    bad_lines = [i + 1 for i, line in enumerate(lines) if line in BAD]
    ranges_with_bad = {
        p.number for p in plan.parts for n in bad_lines if p.first_line < n <= data[: p.end].count(b"\n")
    }
    assert len(ranges_with_bad) >= 3
    assert got.total("quarantined") == len(bad_lines) and got.total("rows") == len(lines) - len(bad_lines)
    _same_run(got, want)
    assert got.total("pending_bytes") == len(b'{"unfinished": ')
    assert_same_store(spark_store, duck_store)
    assert not check(spark_store).problems


@pytest.mark.spark
def test_a_line_past_the_length_limit_across_a_cut_is_quarantined_once_as_on_duckdb(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan]
) -> None:
    lines = [line.encode() for line in numbered_lines(60)]
    lines[30] = b'{"start_time": "' + b"y" * 9000 + b'"}'
    data = b"".join(line + b"\n" for line in lines)
    log = tmp_path / "flows.log"
    log.write_bytes(data)
    split = -(-len(data) // 4)
    long_start = data.index(b'{"start_time": "y')
    assert any(long_start < cut < long_start + 9000 for cut in _cuts(data, 0, split))
    on_spark, on_duck, spark_store, duck_store = _both(tmp_path, spark_choice, split, max_line_bytes=4096)
    got, want = on_spark(log), on_duck(log)
    assert len(plans[0].parts) == 4
    _same_run(got, want)
    assert got.total("quarantined") == 1 and got.total("rows") == 59
    assert_same_store(spark_store, duck_store)


@pytest.mark.spark
def test_reading_it_again_adds_nothing_and_appended_lines_are_read_from_the_checkpoint_in_ranges(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan]
) -> None:
    lines = _records("enterprise", 300)
    log = tmp_path / "logs" / "flows.log"
    log.parent.mkdir()
    first = b"".join(line + b"\n" for line in lines[:150])
    log.write_bytes(first + lines[150][:40])  # the 151st line is being written
    split = len(first) // 3
    on_spark, on_duck, spark_store, duck_store = _both(tmp_path, spark_choice, split)
    _same_run(on_spark(log), on_duck(log))
    again, again_duck = on_spark(log), on_duck(log)
    assert again.total("rows") == again.total("quarantined") == 0 and again.total("skipped") == 150
    _same_run(again, again_duck)
    data = b"".join(line + b"\n" for line in lines)
    log.write_bytes(data)  # the line completed, 149 more after it
    plans.clear()
    grown, grown_duck = on_spark(log), on_duck(log)
    _same_run(grown, grown_duck)
    assert (grown.total("skipped"), grown.total("lines_read")) == (150, 300)
    assert grown.total("rows") + grown.total("quarantined") == 150
    # The appended lines were read in ranges from the checkpoint (its offset starts the first).
    assert len(plans) == 1 and plans[0].start_bytes == len(first) and plans[0].start_lines == 150
    assert plans[0].parts[0].start == len(first) and len(plans[0].parts) >= 2
    assert_same_store(spark_store, duck_store)
    assert not check(spark_store).problems
    assert on_spark(log).total("rows") == 0


@pytest.mark.spark
def test_a_gzip_is_read_whole_by_one_task(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan]
) -> None:
    data = b"".join(line + b"\n" for line in _records("enterprise", 200))
    log = tmp_path / "logs" / "flows.log.1.gz"
    log.parent.mkdir()
    log.write_bytes(gzip.compress(data, compresslevel=1))
    on_spark, on_duck, spark_store, duck_store = _both(tmp_path, spark_choice, 512)
    assert log.stat().st_size > 4 * 512
    _same_run(on_spark(log), on_duck(log))
    assert plans == []
    assert_same_store(spark_store, duck_store)


@pytest.mark.spark
def test_strict_mode_names_the_first_bad_line_of_a_later_range_by_its_number(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan]
) -> None:
    lines = [line.encode() for line in numbered_lines(200)]
    lines[170] = b"{bad"
    data = b"".join(line + b"\n" for line in lines)
    log = tmp_path / "flows.log"
    log.write_bytes(data)
    store = Store(tmp_path / "store")
    with pytest.raises(StrictModeError, match=r"flows\.log:171: invalid JSON"):
        ingest_spark(
            store,
            [str(log)],
            IngestOptions(strict=True),
            settings=spark_choice.spark,
            split_bytes=len(data) // 4,
        )
    assert len(plans[0].parts) >= 4 and plans[0].parts[0].end < data.index(b"{bad")
    assert store.snapshot().rows("flows") == 0


@pytest.mark.spark
def test_a_file_rewritten_while_its_ranges_are_read_keeps_nothing_of_it_and_is_read_again(
    tmp_path: Path, spark_choice: EngineChoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [line.encode() for line in numbered_lines(200)]
    log = tmp_path / "logs" / "flows.log"
    log.parent.mkdir()
    data = b"".join(line + b"\n" for line in lines)
    log.write_bytes(data)
    other = tmp_path / "logs" / "other.log"
    other.write_text(helpers.EXAMPLE_B + "\n")
    original = spark_split.plan_split

    def rewrite_after_planning(*args: Any, **kwargs: Any) -> spark_split.SplitPlan | None:
        plan = original(*args, **kwargs)
        if plan is not None:  # the same length, one record changed (a copytruncate and refill)
            log.write_bytes(data.replace(b'"bytes_in": 150,', b'"bytes_in": 999,'))
        return plan

    monkeypatch.setattr(spark_split, "plan_split", rewrite_after_planning)
    store = Store(tmp_path / "store")
    summary = ingest_spark(
        store, [str(log), str(other)], settings=spark_choice.spark, split_bytes=len(data) // 3
    )
    assert summary.balanced
    failed = next(f for f in summary.files if f.path == str(log))
    assert failed.error and "changed while it was being read" in failed.error and failed.rows == 0
    assert store.snapshot().rows("flows") == 1  # the other file's record only
    monkeypatch.setattr(spark_split, "plan_split", original)
    again = ingest_spark(store, [str(log)], settings=spark_choice.spark, split_bytes=len(data) // 3)
    assert (again.total("rows"), again.total("skipped"), again.errors) == (200, 0, [])


@pytest.mark.spark
def test_the_split_size_is_a_spark_setting(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan]
) -> None:
    data = b"".join(line.encode() + b"\n" for line in numbered_lines(100))
    log = tmp_path / "flows.log"
    log.write_bytes(data)
    spark = spark_session(spark_choice.spark)
    # unset: no splitting on a local master (one machine), 128 MB on a cluster
    assert spark.sparkContext.master.startswith("local") and configured_split_bytes(spark) == 0
    try:
        spark.conf.set(SPLIT_BYTES_CONF, str(len(data) // 3))
        summary = ingest_spark(Store(tmp_path / "store"), [str(log)], settings=spark_choice.spark)
        assert summary.total("rows") == 100 and len(plans[0].parts) == 3
        spark.conf.set(SPLIT_BYTES_CONF, "a lot")
        with pytest.raises(UsageError, match="splitBytes=a lot: give a size in bytes"):
            ingest_spark(Store(tmp_path / "other"), [str(log)], settings=spark_choice.spark)
    finally:
        spark.conf.unset(SPLIT_BYTES_CONF)


def test_split_sizes_are_read_as_spark_writes_sizes() -> None:
    assert (
        parse_split_bytes("134217728") == parse_split_bytes("128m") == parse_split_bytes("128MB") == 128 << 20
    )
    assert (
        parse_split_bytes("1g") == 1 << 30
        and parse_split_bytes("0") == 0
        and parse_split_bytes("64k") == 65536
    )
    for bad in ("", "-1", "1.5g", "lots"):
        with pytest.raises(UsageError):
            parse_split_bytes(bad)


@pytest.mark.spark
def test_a_spark_ingest_removes_the_staging_folder_a_killed_driver_left(
    tmp_path: Path, spark_choice: EngineChoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    left = killed_owner_folder(scratch)
    log = tmp_path / "flows.log"
    log.write_text(helpers.EXAMPLE_C + "\n")
    summary = ingest_spark(Store(tmp_path / "store"), [str(log)], settings=spark_choice.spark)
    assert summary.total("rows") == 1
    assert not left.exists()
    assert any("removed 1 local staging folder" in note and str(left) in note for note in summary.recovered)


@pytest.mark.spark
def test_a_file_read_in_ranges_into_a_store_at_a_url_is_stored_as_in_a_folder(
    tmp_path: Path,
    spark_choice: EngineChoice,
    plans: list[spark_split.SplitPlan],
) -> None:
    """Into a store at a URL the ranges' tasks hand their files back to the driver, as whole-file
    tasks do (flowlens.ingest.spark_upload)."""
    url, _ = _mount(spark_choice, tmp_path / "mounted")
    remote = open_hadoop(Store.at(f"{url}/store"), spark_session(spark_choice.spark))
    folder = Store(tmp_path / "mounted" / "store")
    data = b"".join(line + b"\n" for line in _records("enterprise", 200))
    log = tmp_path / "flows.log"
    log.write_bytes(data)
    duck = Store(tmp_path / "duck")
    got = ingest_spark(remote, [str(log)], settings=spark_choice.spark, split_bytes=-(-len(data) // 4))
    want = ingest(duck, [str(log)])
    assert len(plans) == 1 and len(plans[0].parts) == 4
    _same_run(got, want)
    assert_same_store(folder, duck)
    assert not list(folder.staging_dir.iterdir())


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=60),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_the_driver_cuts_after_the_first_newline_at_or_past_each_cut_and_counts_exactly(
    lines: list[bytes], data: st.DataObject
) -> None:
    """The driver's pass (read in blocks of a few bytes here, so cuts and lines cross blocks):
    every boundary is just after the first newline at or past its cut, each range's newlines and
    hash are its own, and the whole hash is the checkpoint's, of everything up to the end."""
    text = b"".join(line + b"\n" for line in lines)
    starts = [0, *(i + 1 for i, byte in enumerate(text) if byte == 10)][:-1]
    start = data.draw(st.sampled_from(starts))  # a checkpoint: where a line starts
    step = data.draw(st.integers(1, len(text)))
    block = data.draw(st.integers(1, 64))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spark_split, "BLOCK_BYTES", block)
        digest, bounds, counts, hashes = spark_split._scan(io.BytesIO(text), start, len(text), step)
    want = [start]
    cut = start + step
    while cut < len(text):
        boundary = text.index(b"\n", cut) + 1
        if boundary > want[-1]:
            want.append(boundary)
        cut += step
    if want[-1] < len(text):
        want.append(len(text))
    assert bounds == want
    assert counts == [text[a:b].count(b"\n") for a, b in itertools.pairwise(bounds)]
    assert hashes == [xxhash.xxh3_128_hexdigest(text[a:b]) for a, b in itertools.pairwise(bounds)]
    assert digest == xxhash.xxh3_128_hexdigest(text)


@pytest.mark.spark
def test_a_byte_order_mark_is_passed_over_at_the_files_start_only_as_on_duckdb(
    tmp_path: Path, spark_choice: EngineChoice, plans: list[spark_split.SplitPlan]
) -> None:
    """The file starts with a byte order mark (passed over), and a range starts at a line that
    begins with one (not JSON: quarantined, as when the file is read whole)."""
    lines = [line.encode() for line in numbered_lines(60)]
    data = b"\xef\xbb\xbf" + b"".join(line + b"\n" for line in lines)
    split = -(-len(data) // 4)
    second = data.index(b"\n", split) + 1  # where the second range starts
    data = data[:second] + b"\xef\xbb\xbf" + data[second:]
    log = tmp_path / "flows.log"
    log.write_bytes(data)
    on_spark, on_duck, spark_store, duck_store = _both(tmp_path, spark_choice, split)
    got, want = on_spark(log), on_duck(log)
    assert plans[0].parts[1].start == second
    _same_run(got, want)
    assert got.total("quarantined") == 1 and got.total("rows") == 59
    assert_same_store(spark_store, duck_store)
