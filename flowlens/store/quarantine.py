"""The quarantine: every input line that did not become a row, with why and its raw bytes.

Files live at ``<store>/quarantine/<commit>-<n>.parquet`` (see :mod:`flowlens.store.layout`) and
are committed with the rows of the same ingest, so that lines read always equal rows stored plus
lines quarantined (plus lines skipped or ignored). :mod:`flowlens.ingest.accounting` fills them;
``flowlens quarantine`` lists them (:func:`read_quarantine`, :func:`render_quarantine`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowlens.store.connection import duckdb_connection
from flowlens.store.layout import Store

if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def quarantine_schema() -> pa.Schema:
    """The Arrow schema of quarantine files (pyarrow is loaded only when it is needed)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("ingest_id", pa.string()),
            pa.field("source_file", pa.string()),
            pa.field("source_line", pa.int64()),
            pa.field("format", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("text", pa.string()),
            pa.field("raw", pa.binary()),
            pa.field("raw_truncated", pa.bool_()),
        ]
    )


@dataclass(frozen=True)
class QuarantinedLine:
    """One quarantined line as ``flowlens quarantine`` shows it."""

    ingest_id: str
    source_file: str
    source_line: int
    reason: str
    text: str

    def as_dict(self) -> dict[str, object]:
        return {
            "ingest_id": self.ingest_id,
            "file": self.source_file,
            "line": self.source_line,
            "reason": self.reason,
            "text": self.text,
        }


def read_quarantine(store: Store, limit: int | None = None) -> list[QuarantinedLine]:
    """The store's quarantined lines, oldest ingest first, then by file and line; at most
    ``limit`` of them (None or 0: all)."""
    files = store.quarantine_files()
    if not files:
        return []
    con = duckdb_connection()
    try:
        con.register("q", con.read_parquet([str(p) for p in files]))
        sql = (
            "SELECT ingest_id, source_file, source_line, reason, text FROM q "
            "ORDER BY ingest_id, source_file, source_line"
        )
        rows = con.execute(
            sql + (" LIMIT $limit" if limit else ""), {"limit": limit} if limit else {}
        ).fetchall()
    finally:
        con.close()
    return [QuarantinedLine(*row) for row in rows]


#: Raw text longer than this is cut in the text listing (the JSON listing keeps all of it).
SHOWN_TEXT = 200


def render_quarantine(lines: Sequence[QuarantinedLine], fmt: str = "text") -> str:
    """The listing: ``text`` (file:line: reason, then the raw text, cut at :data:`SHOWN_TEXT`
    characters) or ``jsonl`` (one JSON object per line)."""
    if fmt == "jsonl":
        return "".join(json.dumps(line.as_dict(), sort_keys=True) + "\n" for line in lines)
    out = []
    for line in lines:
        shown = line.text if len(line.text) <= SHOWN_TEXT else line.text[:SHOWN_TEXT] + "..."
        out.append(f"{line.source_file}:{line.source_line}: {line.reason}\n    {shown!r}\n")
    return "".join(out)
