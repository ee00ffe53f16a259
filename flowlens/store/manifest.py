"""The manifest: ``<store>/manifest.json``, what a store has ingested.

It holds, under ``version`` :data:`MANIFEST_VERSION`:

* ``sources``: one *lineage* per content a source has had (a ``flows.log`` and its rotated,
  gzipped copies), each with its checkpoints of bytes and lines consumed and a hash of those
  bytes. :mod:`flowlens.ingest.checkpoints` owns what a lineage holds and how a file is matched
  to one; that is how an ingest reads each line once.
* ``ingests``: the summary of each of the last 500 ingests (counts, partitions, time).

The manifest is untrusted input like any file: it is read as JSON and checked for its version.
It is only ever replaced whole, by a commit (:mod:`flowlens.store.commit`), so that it always
describes exactly the committed files. The next steps keep that rule: a manifest that lists
each committed file with its rows and checksum (for verify/repair, compaction and pruning) is
written by the same commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flowlens.errors import StoreError

MANIFEST_VERSION = 1


def empty_manifest() -> dict[str, Any]:
    """The manifest of a store that has ingested nothing."""
    return {"version": MANIFEST_VERSION, "sources": [], "ingests": []}


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``, or an empty one when there is none yet."""
    if not path.is_file():
        return empty_manifest()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"the store manifest {path} cannot be read ({exc}); restore it from a backup or start a new store"
        ) from exc
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise StoreError(f"{path} is not a flowlens manifest of version {MANIFEST_VERSION}")
    return data
