"""Test-wide settings.

* Under CI, hypothesis draws the same examples on every run, so a submission's result does not
  depend on luck (locally it keeps exploring new examples).
* With pytest-xdist installed (the ``dev`` extra), the suite and folders of it run on every
  core: ``-n auto`` unless the command line says ``-n``, or names only test files or tests
  (``pytest tests/test_docs.py``, ``pytest tests/x.py::test_y``), which start faster in one
  process. ``--dist loadscope`` keeps each module on one worker, so that a module's expensive
  fixture (the container image, the wheel, the docs site) is built once. ``pytest -n 0`` runs in
  one process (so does ``--pdb``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from flowlens.engine import EngineChoice, SparkSettings
from flowlens.ingest import ingest
from flowlens.store import Store

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return  # no xdist, or this is one of its workers
    if getattr(config.option, "numprocesses", None) is not None:
        return  # the command line chose
    named = [arg.split("::")[0] for arg in config.args]
    if named and all(os.path.isfile(path) for path in named):
        return
    config.option.numprocesses = "auto"
    if config.option.dist == "no":
        config.option.dist = "loadscope"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of the checked-in sample cluster's Calico Enterprise logs, ingested for real."""
    sample = Path(__file__).resolve().parents[1] / "sample_logs" / "enterprise"
    if not sample.is_dir():
        pytest.skip("sample_logs/enterprise is not checked in")
    root = tmp_path_factory.mktemp("sample")
    ingest(Store(root), [str(sample)])
    return root


@pytest.fixture(scope="session")
def spark_choice() -> Iterator[EngineChoice]:
    """The Spark engine in local mode, two cores, one session for the whole test run (starting
    Spark takes seconds). Without pyspark the Spark tests skip, except under CI, where they fail."""
    if importlib.util.find_spec("pyspark") is None:
        if os.environ.get("CI"):
            pytest.fail(
                "pyspark is not installed: the dev extra installs flowlens[spark] for the Spark tests"
            )
        pytest.skip("pyspark is not installed (pip install -e '.[dev]'); the Spark tests need it")
    from flowlens.engine.spark import spark_session

    choice = EngineChoice(
        "spark",
        SparkSettings(
            "local[2]",
            (("spark.sql.shuffle.partitions", "2"), ("spark.default.parallelism", "2")),
        ),
    )
    session = spark_session(choice.spark)
    yield choice
    session.stop()
