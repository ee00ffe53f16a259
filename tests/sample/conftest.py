"""Shared, cached generations of the sample cluster (small spans keep the tests fast)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from flowlens.sample import SampleOptions, iter_lines, load_model
from flowlens.sample.model import ClusterModel

START = dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def model() -> ClusterModel:
    return load_model()


def lines_of(model: ClusterModel, fmt: str, days: float = 1.0, **kw: Any) -> list[tuple[str, str]]:
    return list(iter_lines(model, SampleOptions(start=START, days=days, formats=(fmt,), **kw), fmt))


@pytest.fixture(scope="session")
def enterprise_docs(model: ClusterModel) -> list[tuple[str, dict[str, Any]]]:
    """One day of flows.log lines, as (file, parsed document)."""
    return [(rel, json.loads(line)) for rel, line in lines_of(model, "enterprise")]


@pytest.fixture(scope="session")
def enterprise_lines(model: ClusterModel) -> list[tuple[str, str]]:
    return lines_of(model, "enterprise", days=0.25)
