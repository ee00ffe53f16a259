"""Fixtures shared by the suggest tests: the sample cluster's logs, generated once per session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flowlens.sample import DEFAULT_MODEL, SampleOptions, load_model, render_inventory, write_sample

SAMPLE_START = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def sample_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six hours of the sample cluster's logs (every format) and its inventory."""
    root = tmp_path_factory.mktemp("sample-logs")
    model = load_model(DEFAULT_MODEL)
    write_sample(model, root / "logs", SampleOptions(start=SAMPLE_START, days=0.25))
    (root / "inventory.yaml").write_text(render_inventory(model), encoding="utf-8")
    return root / "logs", root / "inventory.yaml"
