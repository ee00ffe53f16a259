"""Sources at Hadoop URLs, ingested on Spark: the same rows, quarantine, accounting and lineages
as the same files ingested from their folder, exactly once by content.

The sources are reached as ``viewfs://<table>/<mount>/...``: Hadoop's ViewFileSystem (in the
pyspark wheel) with a mount table that points the mount at a local folder whose path the URL does
not name, so only Hadoop can read them (the driver lists them and reads their first lines through
Hadoop's ``FileSystem`` API, the executors get their bytes from Spark's ``binaryFile`` source).
"""

from __future__ import annotations

import gzip
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowlens.engine import EngineChoice
from flowlens.engine.spark import spark_session
from flowlens.ingest import IngestSummary
from flowlens.store import Store
from flowlens.store.integrity import check
from tests.helpers import run_cli
from tests.ingest import helpers
from tests.ingest.helpers.numbered import numbered_lines, write_lines
from tests.ingest.test_spark import _corpus, _duck, _jsonl, _lineages, _spark, _table

pytestmark = pytest.mark.spark


def mount(spark_choice: EngineChoice, folder: Path) -> str:
    """A new ``viewfs://`` URL whose mount is ``folder`` (a path that names nothing here)."""
    table, point = f"flowlens{uuid.uuid4().hex[:8]}", f"/src-{uuid.uuid4().hex[:8]}"
    assert not Path(point).exists()
    spark = spark_session(spark_choice.spark)
    spark._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{table}.link.{point}", folder.as_uri())
    return f"viewfs://{table}{point}"


def _local(text: str, url: str, folder: Path) -> str:
    return text.replace(url, str(folder))


def _files(summary: IngestSummary, url: str = "", folder: Path | None = None) -> list[dict[str, Any]]:
    rows = summary.as_dict()["per_file"]
    if folder is not None:
        rows = [{**row, "path": _local(row["path"], url, folder)} for row in rows]
    return sorted(rows, key=lambda f: f["path"])


def test_every_format_at_a_url_is_stored_as_from_its_folder(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    corpus = _corpus(tmp_path / "corpus")
    url = mount(spark_choice, corpus)
    remote, local = Store(tmp_path / "remote"), Store(tmp_path / "local")
    got = _spark(remote, spark_choice, url)
    want = _duck(local, corpus)
    assert got.balanced and want.balanced
    assert got.total("rows") > 2000 and got.total("quarantined") >= 10
    assert all(row["path"].startswith(url) for row in got.as_dict()["per_file"])
    assert _files(got, url, corpus) == _files(want)
    assert got.partitions == want.partitions
    assert got.total("pending_bytes") == want.total("pending_bytes") > 0  # the cut gzip, the unfinished line
    assert sorted(_local(e, url, corpus) for e in got.errors) == sorted(want.errors)
    for kind in ("flows", "quarantine"):
        a, b = _table(remote, kind), _table(local, kind)
        assert a is not None and b is not None
        rows = [{**r, "source_file": _local(r["source_file"], url, corpus)} for r in a.to_pylist()]
        assert a.schema == b.schema
        assert sorted(rows, key=repr) == sorted(b.to_pylist(), key=repr), kind
    assert _lineages(remote) == _lineages(local)
    assert not check(remote).problems


def test_content_at_a_url_is_stored_once_under_any_name_and_place(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    logs = tmp_path / "logs"
    log = _jsonl(logs / "flows.log", [json.loads(helpers.EXAMPLE_C)] * 50)
    shutil.copy(log, logs / "copy of flows, date=1 %41.log")  # (a name a URL must quote)
    (logs / "flows.log.1.gz").write_bytes(gzip.compress(log.read_bytes()))
    url = mount(spark_choice, logs)
    store = Store(tmp_path / "store")
    first = _spark(store, spark_choice, url)
    assert (first.total("rows"), first.total("skipped")) == (50, 100) and first.balanced
    again = _spark(store, spark_choice, f"{url}/flows.log", f"{url}/flows.log.1.gz")
    assert (again.total("rows"), again.total("skipped")) == (0, 100)
    local = _spark(store, spark_choice, log)  # the same content at a local path
    assert (local.total("rows"), local.total("skipped")) == (0, 50)
    assert store.snapshot().rows("flows") == 50


def test_a_copy_at_a_url_that_diverges_is_read_by_the_driver_as_on_duckdb(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    lines = numbered_lines(100)
    edited = [*lines[:40], json.dumps({**json.loads(lines[40]), "bytes_in": 5_000}), *lines[41:80]]
    results = {}
    for engine in ("spark", "duckdb"):
        logs = tmp_path / engine
        logs.mkdir()
        original = write_lines(logs / "a.log", lines)
        copy = write_lines(logs / "b.log", edited)
        store = Store(tmp_path / f"{engine}-store")
        if engine == "spark":
            url = mount(spark_choice, logs)
            _spark(store, spark_choice, f"{url}/a.log")
            second = _spark(store, spark_choice, f"{url}/b.log")
        else:
            _duck(store, original)
            second = _duck(store, copy)
        assert second.balanced
        results[engine] = (
            second.total("rows"),
            second.total("already_stored"),
            store.snapshot().rows("flows"),
        )
    assert results["spark"] == results["duckdb"]
    assert results["spark"][0] == 1  # the edited record alone


def test_the_command_line_ingests_a_url_on_spark_and_refuses_it_on_duckdb(
    tmp_path: Path, spark_choice: EngineChoice
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_lines(logs / "flows.log", numbered_lines(20))
    url = mount(spark_choice, logs)
    store = tmp_path / "store"
    refused = run_cli("ingest", url, "--store", store)
    assert refused.code == 2 and "--engine spark" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    done = run_cli("ingest", url, "--store", store, "--engine", "spark", "--json")
    assert done.code == 0, str(done)
    assert json.loads(done.stdout)["rows"] == 20
    missing = run_cli("ingest", f"{url}/nothing.log", "--store", store, "--engine", "spark")
    assert missing.code != 0 and "no such file" in missing.stderr
    into_url = run_cli("ingest", f"{url}/flows.log", "--store", f"{url}/store", "--engine", "spark", "--json")
    assert into_url.code == 0, str(into_url)  # (a store at a URL: tests/ingest/test_spark_url_store.py)
    assert json.loads(into_url.stdout)["rows"] == 20
    assert Store(logs / "store").snapshot().rows("flows") == 20
