"""The quarantine: every input line that did not become a row, with why and its raw bytes.

Files live at ``<store>/quarantine/<commit>-<n>.parquet`` (see :mod:`flowlens.store.layout`) and
are committed with the rows of the same ingest, so that lines read always equal rows stored plus
lines quarantined (plus lines skipped or ignored). :mod:`flowlens.ingest.accounting` fills them;
``flowlens quarantine`` reads them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

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
