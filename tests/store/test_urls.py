"""Stores and sources as URLs: a ``file://`` URL is the folder it names, on every command; any
other scheme is refused with what to do."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from flowlens.errors import UsageError
from flowlens.store import Store
from flowlens.store.urls import local_path, url_scheme
from tests.helpers import run_cli
from tests.ingest import helpers

SEGMENT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\x00"), min_size=1, max_size=12
)


@given(st.lists(SEGMENT, min_size=1, max_size=5))
@example(["."])  # file:///. is the root folder (pathlib alone would make it "file:")
def test_a_file_url_is_the_absolute_path_it_names_however_it_is_quoted(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    assert local_path("file://" + quote(path)) == path
    assert local_path("file:" + quote(path)) == path
    assert Store.at("file://" + quote(path)).root == Path(path)
    folded = Path("file://" + quote(path))  # pathlib folds the slashes, and drops "." segments:
    if url_scheme(str(folded)) is not None:  # "file:///." is Path("file:"), no URL any more
        assert Store(folded).root == Path(path)


@given(st.lists(SEGMENT, min_size=1, max_size=5))
def test_a_plain_path_is_left_as_it_is(parts: list[str]) -> None:
    path = "/".join(parts)
    if url_scheme(path) is None:
        assert local_path(path) == path


@pytest.mark.parametrize(
    "url", ["s3a://bucket/flows", "hdfs://nn:8020/x", "gs://b/x", "abfss://c@a.dfs.core.windows.net/x"]
)
def test_a_remote_store_or_source_is_refused_with_what_to_do(url: str) -> None:
    with pytest.raises(UsageError, match="--engine spark, or mount it"):
        Store(Path(url))  # (a Path has lost the URL's //: not a Hadoop URL any more)
    store = Store.at(url)  # a Hadoop URL: kept, but only the Spark engine opens it
    assert store.location == url.rstrip("/")
    with pytest.raises(UsageError, match="--engine spark, or mount it"):
        store.read_manifest()
    with pytest.raises(UsageError, match="the source"):
        local_path(url, "the source")


@pytest.mark.parametrize(
    "command", [["verify"], ["compact"], ["repair"], ["quarantine"], ["ingest", "x.log"]]
)
def test_commands_of_local_stores_refuse_a_hadoop_url_before_touching_anything(
    command: list[str], tmp_path: Path
) -> None:
    url = f"hdfs://nn:8020{tmp_path}/store"
    result = run_cli(*command, "--store", url, cwd=tmp_path)
    assert result.code == 2, str(result)
    assert "mount it" in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "store").exists()  # the URL's path was not made a local folder


def test_a_hadoop_url_keeps_its_authority_and_path() -> None:
    store = Store.at("hdfs://nn:8020/data/store/")
    assert store.root == Path("/data/store")
    assert store.location == "hdfs://nn:8020/data/store"
    assert store.files.uri(store.manifest_path) == "hdfs://nn:8020/data/store/manifest.json"
    with pytest.raises(UsageError, match=r"no \?query"):
        Store.at("s3a://bucket/x?versionId=1")


@pytest.mark.parametrize(
    ("url", "problem"),
    [("file://otherhost/x", "another host"), ("file:///x?y=1", r"no \?query"), ("file:///x#y", "fragment")],
)
def test_a_file_url_of_another_host_or_with_a_query_is_refused(url: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        local_path(url)


def test_a_relative_path_that_only_looks_like_a_scheme_is_a_path() -> None:
    assert local_path("file:x") == "file:x"
    assert local_path("C:/logs") == "C:/logs"  # a drive letter is not a scheme


def test_ingest_status_and_query_take_the_store_and_sources_as_file_urls(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "flows.log"
    log.parent.mkdir()
    log.write_text(helpers.EXAMPLE_C + "\n" + helpers.EXAMPLE_D + "\n")
    store = f"file://{tmp_path}/store"
    ingested = run_cli("ingest", f"file://{log}", "--store", store, "--json")
    assert ingested.code == 0, ingested
    assert json.loads(ingested.stdout)["rows"] == 2
    assert (tmp_path / "store" / "manifest.json").is_file()
    status = run_cli("status", "--store", store, "--json")
    assert status.code == 0 and json.loads(status.stdout)["rows"] == 2
    refused = run_cli("status", "--store", "s3a://bucket/store")
    assert refused.code == 2 and "--engine spark, or mount it" in refused.stderr
    assert "s3a://bucket/store" in refused.stderr
