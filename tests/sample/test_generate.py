"""Generation: deterministic, streamed, exact record budgets, rotation, and the checked-in sample."""

from __future__ import annotations

import datetime as dt
import gzip
import inspect
import json
from pathlib import Path

import pytest

from flowlens.errors import UsageError
from flowlens.sample import SampleOptions, iter_chunks, iter_lines, write_sample
from flowlens.sample.model import ClusterModel
from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
SAMPLE_ARGS = [
    "--format", "all", "--days", "2", "--start", "2026-11-24T00:00:00Z",
    "--seed", "1", "--rotate-mb", "0.5", "--gzip",
]  # fmt: skip


def _text(model: ClusterModel, days: float, seed: int) -> str:
    opts = SampleOptions(start=START, days=days, seed=seed)
    return "".join(text for _, text in iter_chunks(model, opts))


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not(model: ClusterModel) -> None:
    a = _text(model, days=0.1, seed=7)
    assert a == _text(model, days=0.1, seed=7)
    assert a != _text(model, days=0.1, seed=8)


def test_the_output_is_streamed_by_generators(model: ClusterModel) -> None:
    opts = SampleOptions(start=START, days=1000)
    assert inspect.isgenerator(iter_lines(model, opts))
    first = next(iter_lines(model, opts))  # a thousand days are not computed up front
    assert first[0].endswith("flows.log") and json.loads(first[1])["start_time"] >= START.timestamp()
    assert inspect.isgenerator(iter_chunks(model, opts, "goldmane"))


def test_a_shorter_run_gives_the_first_intervals_of_a_longer_one(model: ClusterModel) -> None:
    # intervals are simulated in chunks (numpy), always whole: the length of a run changes nothing
    # before its end, also across a chunk boundary (CHUNK intervals)
    from flowlens.sample.traffic import CHUNK

    short = list(iter_chunks(model, SampleOptions(start=START, days=0.1)))
    long = list(iter_chunks(model, SampleOptions(start=START, days=(CHUNK + 20) * 300 / 86400)))
    assert long[: len(short)] == short
    longer = list(iter_chunks(model, SampleOptions(start=START, days=(2 * CHUNK + 5) * 300 / 86400)))
    assert longer[: len(long)] == long


def test_records_without_days_give_exactly_that_many_records(model: ClusterModel) -> None:
    opts = SampleOptions(start=START, days=None, records=1234)
    assert sum(1 for _ in iter_lines(model, opts)) == 1234


def test_records_over_days_are_filled_up_with_internet_scans(model: ClusterModel) -> None:
    opts = SampleOptions(start=START, days=0.05, records=3000)
    docs = [json.loads(line) for _, line in iter_lines(model, opts)]
    assert len(docs) == 3000
    assert max(d["end_time"] for d in docs) <= START.timestamp() + 0.05 * 86400 + 600
    scans = [d for d in docs if d["source_name_aggr"] == "pub" and d["action"] == "deny"]
    assert len(scans) > 2000
    keys = [(d["start_time"], d["source_ip"], d["dest_ip"], d["dest_port"]) for d in scans]
    assert len(keys) == len(set(keys))  # Felix never writes one key twice in an interval


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="time zone"):
        SampleOptions(start=dt.datetime(2026, 11, 24))
    with pytest.raises(UsageError, match="unknown format"):
        SampleOptions(start=START, formats=("csv",))


def test_flows_log_is_rotated_into_numbered_gzip_files_newest_first(
    model: ClusterModel, tmp_path: Path
) -> None:
    opts = SampleOptions(start=START, days=0.5, rotate_bytes=256 * 1024)
    summary = write_sample(model, tmp_path, opts)
    node = tmp_path / "enterprise" / "worker-1"
    rotated = sorted(node.glob("flows.log.*.gz"), key=lambda p: int(p.name.split(".")[2]))
    assert len(rotated) >= 3
    assert [p.name for p in rotated] == [f"flows.log.{i}.gz" for i in range(1, len(rotated) + 1)]
    for p in rotated:
        raw = p.read_bytes()
        assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0: deterministic bytes
        assert len(gzip.decompress(raw)) <= 256 * 1024
    # oldest first: .N.gz ... .1.gz, then the live file, is the whole stream in time order
    text = "".join(gzip.decompress(p.read_bytes()).decode() for p in reversed(rotated))
    text += (node / "flows.log").read_text()
    expected = "".join(t for rel, t in iter_chunks(model, opts) if rel == "worker-1/flows.log")
    assert text == expected
    assert sum(n for fmt, _, n in summary.files if fmt == "enterprise") == summary.records


def test_files_of_an_earlier_run_do_not_survive_a_new_one(model: ClusterModel, tmp_path: Path) -> None:
    write_sample(model, tmp_path, SampleOptions(start=START, days=0.5, rotate_bytes=64 * 1024))
    mine = tmp_path / "enterprise" / "notes.txt"
    mine.write_text("keep me")
    assert (tmp_path / "enterprise" / "worker-1" / "flows.log.5.gz").exists()
    write_sample(model, tmp_path, SampleOptions(start=START, days=0.004, rotate_bytes=64 * 1024))
    assert list((tmp_path / "enterprise").rglob("*.gz")) == []
    assert mine.read_text() == "keep me"


def _content(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def test_the_checked_in_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    # (sample_logs is written with --gzip-level 9; the content is compared, so level 1 will do)
    result = run_cli("sample", "--out", str(tmp_path), *SAMPLE_ARGS)
    assert result.code == 0, result
    sample = REPO / "sample_logs"
    for fmt in ("enterprise", "elasticsearch", "goldmane", "whisker"):
        want = sorted(p.relative_to(tmp_path) for p in (tmp_path / fmt).rglob("*") if p.is_file())
        have = sorted(p.relative_to(sample) for p in (sample / fmt).rglob("*") if p.is_file())
        assert have == want, (
            f"{fmt}: files differ; regenerate with: flowlens sample --out sample_logs "
            + " ".join([*SAMPLE_ARGS, "--gzip-level", "9"])
        )
        for rel in want:
            assert _content(sample / rel) == _content(tmp_path / rel), (
                f"{rel} differs: regenerate sample_logs"
            )
    assert (sample / "inventory.yaml").read_text() == (tmp_path / "inventory.yaml").read_text()
    total = sum(p.stat().st_size for p in sample.rglob("*") if p.is_file() and not p.is_symlink())
    assert total < 9 * 1024 * 1024


def test_the_sample_command_defaults_to_ending_now_and_prints_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = run_cli("sample", "--out", str(out), "--days", "0.05")
    assert result.code == 0, result
    assert result.stdout.strip() == str(out)
    lines = (out / "enterprise" / "worker-1" / "flows.log").read_text().splitlines()
    last = max(json.loads(line)["end_time"] for line in lines)
    now = dt.datetime.now(dt.UTC).timestamp()
    assert now - 900 < last < now + 600
    assert (out / "inventory.yaml").is_file() and (out / "policies" / "30-production.yaml").is_file()


def test_records_without_days_end_now_not_in_the_future(tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = run_cli("sample", "--out", str(out), "--records", "20000")
    now = dt.datetime.now(dt.UTC).timestamp()
    assert result.code == 0, result
    assert "flowlens sample: 20000 Felix records" in result.stderr
    ends = [
        json.loads(line)["end_time"]
        for log in (out / "enterprise").glob("*/flows.log")
        for line in log.read_text().splitlines()
    ]
    assert ends and max(ends) <= now and now - 900 < max(ends)


def test_a_bad_start_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("sample", "--out", str(tmp_path), "--start", "yesterday")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith("flowlens: error: --start 'yesterday' is not an ISO date")


@pytest.mark.parametrize("layout", ["sample", "full"])
def test_dropping_the_record_cache_does_not_change_a_byte(model: ClusterModel, layout: str) -> None:
    from flowlens.sample.generate import _Enterprise, _Goldmane, _Whisker
    from flowlens.sample.layouts import get_layout
    from flowlens.sample.records import declared_decisions
    from flowlens.sample.traffic import TrafficModel

    def render(key_cache: int) -> str:
        traffic = TrafficModel(model, declared_decisions(model), key_cache=key_cache)
        producers = [_Enterprise(get_layout(layout), model.cluster), _Goldmane(), _Whisker(None, 1)]
        out = []
        for iv in traffic.simulate(int(START.timestamp()), 5, 150):
            for p in producers:
                out += [text for _, text, _ in p.feed(iv)]
        out += [text for p in producers for _, text, _ in p.finish()]
        return "".join(t if isinstance(t, str) else b"".join(t).decode() for t in out)

    assert render(key_cache=16) == render(key_cache=1_000_000)


def test_flows_log_parts_survive_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from flowlens.sample import logfiles

    flushes = [([bytes([65 + i % 26]) * (i * 37 % 5000) for i in range(j, j + n)], 0) for j, n in
               ((0, 3), (3, 700), (703, 1500), (2203, 1))]  # fmt: skip
    flushes = [(parts, sum(map(len, parts))) for parts, _ in flushes]
    want = b"".join(b"".join(parts) for parts, _ in flushes)
    real = os.writev

    def short(fd: int, parts: list[bytes]) -> int:  # writes a third, as a full disk or a signal may
        data = b"".join(parts)
        return real(fd, [data[: len(data) // 3]])

    for writev in (real, short):
        monkeypatch.setattr(os, "writev", writev)
        path = tmp_path / "out"
        with open(path, "wb", buffering=0) as fh:
            logfiles._write_parts(fh.fileno(), flushes)
        assert path.read_bytes() == want
