"""`flowlens demo`: the README's main-job command, end to end, in a folder without a sample (as
after `pip install`), and the sample it generates there."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from flowlens.cli.demo import _sample_folder
from flowlens.errors import UsageError
from flowlens.sample import write_bundled_sample
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_runs_every_capability_in_an_empty_folder_and_says_where_outputs_went(tmp_path):
    (tmp_path / "tmp").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    # a process of its own: the demo makes its temporary folder under $TMPDIR
    result = run_cli("demo", cwd=work, env={"TMPDIR": str(tmp_path / "tmp")}, process=True, timeout=600)
    assert result.code == 0, result.stderr[-3000:]
    err = result.stderr
    (generated,) = (tmp_path / "tmp").glob("flowlens-demo-*")
    assert "generated the sample cluster (38485 Calico Enterprise flow records, " in err
    assert f"into {generated} in " in err
    # every capability ran, in order
    for command in (
        "ingest",
        "status",
        "query denied",
        "query unexpected-allowed",
        "suggest",
        "simulate",
        "report",
    ):
        assert f"$ flowlens {command}" in err
    assert (
        err.index("$ flowlens ingest") < err.index("$ flowlens query denied") < err.index("$ flowlens report")
    )
    assert "0 quarantined" in err
    assert "no observed allowed connection becomes denied" in err
    assert "0 newly denied, 0 newly allowed" in err
    # the outputs are where the demo says they are: the store and reports in the current folder
    suggested = work / "reports" / "demo" / "suggested" / "production.yaml"
    assert suggested.is_file() and "kind: NetworkPolicy" in suggested.read_text()
    latest = work / "reports" / "latest"
    assert (latest / "report.html").is_file()
    report = json.loads((latest / "report.json").read_text())
    assert report["schema"] == "flowlens.report"
    assert report["summary"]["records"] == 38485
    assert 0 <= report["summary"]["score"] <= 100
    assert "reports/demo/suggested/" in err
    assert (work / ".flowlens" / "flows").is_dir()
    # stdout carries the query results: denied flows name the policy that denied them
    assert "knp:production/allow-frontend-to-backend" in result.stdout
    assert "default-allow" in result.stdout


def _lines_by_node(enterprise: Path) -> dict[str, list[bytes]]:
    nodes: dict[str, list[bytes]] = {}
    for path in sorted(enterprise.rglob("flows.log*")):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        nodes.setdefault(path.parent.name, []).extend(data.splitlines())
    return {node: sorted(lines) for node, lines in nodes.items()}


def test_the_generated_sample_is_the_bundled_sample_whatever_the_folder(tmp_path: Path) -> None:
    summary = write_bundled_sample(tmp_path / "sample")
    assert summary.records == 38485
    generated = tmp_path / "sample"
    bundled = ROOT / "sample_logs"
    assert _lines_by_node(generated / "enterprise") == _lines_by_node(bundled / "enterprise")
    assert (generated / "inventory.yaml").read_bytes() == (bundled / "inventory.yaml").read_bytes()
    assert (generated / "cluster.yaml").read_bytes() == (bundled / "cluster.yaml").read_bytes()
    policies = sorted(p.name for p in (bundled / "policies").iterdir())
    assert sorted(p.name for p in (generated / "policies").iterdir()) == policies
    for name in policies:
        assert (generated / "policies" / name).read_bytes() == (bundled / "policies" / name).read_bytes()


def test_without_sample_logs_the_demo_generates_into_a_new_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    first = _sample_folder(None)
    second = _sample_folder(None)
    assert first != second and first.parent == second.parent == tmp_path / "tmp"
    assert (first / "enterprise").is_dir() and (first / "inventory.yaml").is_file()


def test_a_checkout_demo_reads_sample_logs_and_a_given_sample_is_read_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sample_logs" / "enterprise").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert _sample_folder(None) == Path("sample_logs")
    assert _sample_folder(ROOT / "sample_logs") == ROOT / "sample_logs"


def test_a_new_or_empty_sample_folder_gets_the_generated_sample(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "sample"):
        assert _sample_folder(folder) == folder
        assert len(list((folder / "enterprise").rglob("flows.log"))) == 3


def test_a_folder_that_holds_something_else_is_refused_with_one_line_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(UsageError, match="not a sample folder"):
        _sample_folder(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    result = run_cli("demo", "--sample", tmp_path, cwd=tmp_path)
    assert result.code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"flowlens: error: --sample {tmp_path} is not a sample folder")


def test_the_demo_help_says_where_the_sample_comes_from() -> None:
    result = run_cli("demo", "--help")
    assert result.code == 0
    assert "temporary folder" in result.stdout
