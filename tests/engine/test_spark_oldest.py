"""The oldest pyspark flowlens declares (``pyspark>=X`` in the spark extra) gives DuckDB's answers too.

The rest of the suite runs on the newest pyspark pip installs. Here a virtual environment of its own
(no system site packages) gets the flowlens checkout and exactly the oldest declared pyspark, and a
subprocess in it runs a few named queries and the coverage report on Spark (local[2]) against the
sample store; the answers must be DuckDB's, from this process. The environment is kept under the
temporary folder, keyed by the pyspark version and the dependencies, so a second run on one machine
skips the installation (in CI, on a clean machine, it costs the download and the install).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc
import pytest

from flowlens.engine import connect
from tests.engine.helpers import without_times
from tests.engine.test_spark import QUERIES as SPECS
from tests.engine.test_spark import _ordered, assert_same
from tests.helpers import run_cli

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
#: A few named queries that exercise what the Spark engine translates: list indexing and len(),
#: the flow_summary view grouped on the executors, hash() of label maps, parameters.
QUERIES = {
    "denied": {},
    "unexpected-allowed": {},
    "top-talkers": {},
    "suggest-edges": {"namespaces": ["production", "shop", "payments"]},
}
WINDOW = ["--since", "2026-11-24", "--until", "2026-11-26"]

SCRIPT = """
import json, sys
from pathlib import Path
import pyarrow as pa, pyarrow.ipc, pyspark
from flowlens.engine import EngineChoice, SparkSettings, open_engine
from flowlens.cli import main

store, out, queries = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
print(pyspark.__version__, file=(out / "version").open("w"))
# spark.driver.memory is static: given to a session flowlens starts, it holds (no "cannot change")
settings = SparkSettings("local[2]", (("spark.sql.shuffle.partitions", "2"), ("spark.driver.memory", "1g")))
with open_engine(store, EngineChoice("spark", settings), since="2026-11-24", until="2026-11-26") as engine:
    for name, params in queries.items():
        table = engine.run(name, params)
        with pa.OSFile(str(out / f"{name}.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
sys.argv = ["flowlens", "report", "--store", str(store), "--reports", str(out / "reports"),
            "--since", "2026-11-24", "--until", "2026-11-26", "--format", "json", "--engine", "spark"]
main()
"""


def _oldest_pyspark() -> str:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["spark"]
    (spec,) = [s for s in extra if s.startswith("pyspark")]
    found = re.fullmatch(r"pyspark>=(\d+)\.(\d+)(?:\.(\d+))?", spec)
    assert found, f"the spark extra should declare a lower bound for pyspark, not {spec!r}"
    return f"{found.group(1)}.{found.group(2)}.{found.group(3) or 0}"


def _environment(version: str) -> Path:
    """A virtual environment with the flowlens checkout (editable) and pyspark==``version``."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = Path(tempfile.gettempdir()) / f"flowlens-pyspark-{version}-{key}"
    python = venv / "bin" / "python"
    if (venv / "READY").is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(
        [*install, "-e", f"{REPO}[spark]", f"pyspark=={version}"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (venv / "READY").write_text(version)
    return python


def test_the_oldest_declared_pyspark_gives_duckdbs_answers(sample_store: Path, tmp_path: Path) -> None:
    version = _oldest_pyspark()
    python = _environment(version)
    out = tmp_path / "spark"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "FLOWLENS_ENGINE", "SPARK_HOME"}}
    env |= {"PYSPARK_PYTHON": str(python)}
    done = subprocess.run(
        [str(python), "-c", SCRIPT, str(sample_store), str(out), json.dumps(QUERIES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "version").read_text().strip() == version

    with connect(sample_store, since="2026-11-24", until="2026-11-26") as duck:
        for name, params in QUERIES.items():
            with pa.OSFile(str(out / f"{name}.arrow"), "rb") as source:
                got = pa.ipc.open_file(source).read_all()
            want = duck.run(name, params)
            assert want.num_rows > 0, name
            assert_same(got, want, ordered=_ordered(SPECS[name]))

    duck_reports = tmp_path / "duckdb"
    result = run_cli(
        "report", "--store", sample_store, "--reports", duck_reports, *WINDOW, "--format", "json"
    )
    assert result.code == 0, str(result)
    (spark_json,) = (out / "reports").rglob("report.json")
    (duck_json,) = duck_reports.rglob("report.json")
    assert without_times(json.loads(spark_json.read_text())) == without_times(
        json.loads(duck_json.read_text())
    )
