"""Flow logs of numbered records (EXAMPLE_C with ``bytes_in`` = its number, 50 per 5 minutes), so
that a test can say exactly which records a store holds."""

from __future__ import annotations

import json
from pathlib import Path

from flowlens.store import Store
from tests.ingest.conftest import rows_of
from tests.ingest.helpers import EXAMPLE_C


def numbered_lines(n: int, start: int = 0) -> list[str]:
    """Records ``start`` to ``start + n - 1``, one line each, without line ends."""
    base = json.loads(EXAMPLE_C)
    out = []
    for i in range(start, start + n):
        doc = dict(base)
        doc["start_time"] = 1675468688 + 300 * (i // 50)
        doc["end_time"] = doc["start_time"] + 300
        doc["bytes_in"] = i
        out.append(json.dumps(doc))
    return out


def write_lines(path: Path, lines: list[str], *, partial: str = "") -> Path:
    """``lines`` into ``path``, each ending in a newline, then ``partial`` (an unfinished line)."""
    path.write_text("".join(line + "\n" for line in lines) + partial)
    return path


def stored_numbers(store: Store) -> list[int]:
    """The numbers of the records ``store`` holds, sorted, repeats included."""
    return [r["bytes_in"] for r in rows_of(store, "SELECT bytes_in FROM f ORDER BY bytes_in")]
