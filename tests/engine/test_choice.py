"""Choosing the engine: names, settings and the config key, without starting Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlens.config import load_config
from flowlens.engine import DuckDBEngine, EngineChoice, SparkSettings, open_engine
from flowlens.errors import UsageError


def test_duckdb_is_the_default_engine_and_needs_no_spark(tmp_path: Path) -> None:
    assert EngineChoice().name == "duckdb"
    with open_engine(tmp_path / "store") as engine:
        assert isinstance(engine, DuckDBEngine)


def test_spark_settings_are_read_from_key_value_pairs() -> None:
    settings = SparkSettings.parse("local[3]", ["spark.executor.memory = 4g", "a.b=c=d"])
    assert settings == SparkSettings("local[3]", (("spark.executor.memory", "4g"), ("a.b", "c=d")))
    for bad in ("no-equals", "=value"):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            SparkSettings.parse(None, [bad])


def test_the_config_file_names_an_engine_or_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flowlens.yaml"
    path.write_text("engine: spark\n")
    assert load_config(path).engine == "spark"
    path.write_text("engine: presto\n")
    with pytest.raises(UsageError, match="'engine' must be one of duckdb, spark"):
        load_config(path)
