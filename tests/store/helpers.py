"""Flow logs and readers for the store's tests: logs of known valid and bad lines over two days,
and what a reader (the query engine) sees of a store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from flowlens.engine import connect
from flowlens.ingest import ingest
from flowlens.store import Store
from tests.ingest import helpers as records

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400
# 2023-02-03 23:00 UTC: records start in one day's last hour and run into the next day.
T0 = 1675465200


def restored_from_backup(tmp_path: Path, lines: list[str], first: int) -> tuple[Store, Path]:
    """A store fed ``lines[:first]`` then all of ``lines`` (one log, two ingests), whose manifest
    is then put back as it was after the first ingest, as a restore from an older backup does."""
    store = Store(tmp_path / "store")
    log = write_log(tmp_path / "flows.log", lines[:first])
    ingest(store, [str(log)])
    backup = store.manifest_path.read_bytes()
    write_log(log, lines)
    ingest(store, [str(log)])
    store.manifest_path.write_bytes(backup)
    return store, log


def log_lines(
    n: int, *, start: int = 0, bad_every: int = 0, denied_every: int = 7, noise: bool = False
) -> list[str]:
    """``n`` lines of Enterprise records, three every 5 minutes from T0 + 5 min * ``start // 3``:
    ``bytes_in`` numbers them; every ``bad_every``-th line (when not 0) is not JSON; every
    ``denied_every``-th record is denied; ``noise``: a random pod name each (data that does not
    compress)."""
    base = json.loads(records.EXAMPLE_C)
    lines = []
    for i in range(start, start + n):
        if bad_every and i % bad_every == bad_every - 1:
            lines.append('{"start_time": 1675465200, "end_time": ')
            continue
        doc = dict(base)
        doc["start_time"] = T0 + 300 * (i // 3)
        doc["end_time"] = doc["start_time"] + 300
        doc["bytes_in"] = i
        if noise:
            doc["source_name"] = os.urandom(12).hex()
        if denied_every and i % denied_every == 0:
            doc["action"] = "deny"
            doc["policies"] = {
                "all_policies": ["0|default|kube-system/default.deny-all|deny|-1"],
                "enforced_policies": ["0|default|kube-system/default.deny-all|deny|-1"],
                "pending_policies": ["0|default|kube-system/default.deny-all|deny|-1"],
            }
        lines.append(json.dumps(doc))
    return lines


def write_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def valid(lines: list[str]) -> list[int]:
    """The ``bytes_in`` of the valid lines, sorted."""
    out = []
    for line in lines:
        try:
            out.append(json.loads(line)["bytes_in"])
        except ValueError:
            continue
    return sorted(out)


def seen(store: Store) -> list[int]:
    """What a reader sees: the ``bytes_in`` of every row of the store, sorted (duplicates kept)."""
    with connect(store) as engine:
        table = engine.sql("SELECT bytes_in FROM flows ORDER BY bytes_in")
    return [int(v) for v in table["bytes_in"].to_pylist()] if table.num_rows else []


def quarantined(store: Store) -> Counter[tuple[str, int]]:
    """(file name, line) of each quarantined line, counted."""
    import duckdb

    files = store.quarantine_files()
    if not files:
        return Counter()
    rows = duckdb.sql(
        "SELECT source_file, source_line FROM read_parquet($files)", params={"files": [str(f) for f in files]}
    ).fetchall()
    return Counter((Path(f).name, int(n)) for f, n in rows)


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run ``code`` in a fresh interpreter with flowlens importable (a real process: a test may
    kill it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, env=env, timeout=timeout, check=False
    )
