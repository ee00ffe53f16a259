"""What the manifest records of each data file (its facts), and how a file is checked against it.

A data file's facts are its size, its row count and a fingerprint of its columns (both from the
Parquet footer) and an XXH3-64 of its bytes. Hashing runs at about 5 GB/s on one core, so a commit takes the facts of its new files
by reading them back once they are written (from the page cache) for a few milliseconds per
100 MB, and ``flowlens verify`` re-reads every file to compare. XXH3 is not a cryptographic
hash: it finds damage (a truncated, rewritten or bit-flipped file), not a forgery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xxhash

CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileFacts:
    """A data file's size in bytes, row count, XXH3-64 (hex) of its bytes and the fingerprint of
    its columns (:func:`parquet_footer`)."""

    bytes: int
    rows: int
    xxh3_64: str
    columns: str = ""


def hash_file(path: Path) -> tuple[int, str]:
    """The size and the XXH3-64 (hex) of the bytes of ``path``."""
    digest = xxhash.xxh3_64()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def parquet_footer(path: Path) -> tuple[int, str]:
    """The row count a Parquet file's footer gives, and an XXH3-64 (hex) of its columns' names and
    types: files with the same fingerprint can be read as one table without matching columns by
    name. Raises ``OSError`` or ``ValueError`` (pyarrow's ``ArrowInvalid``) when the file is not
    readable Parquet."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    columns = "\n".join(f"{field.name}:{field.type}" for field in schema)
    return int(meta.num_rows), xxhash.xxh3_64_hexdigest(columns.encode())


def file_facts(path: Path) -> FileFacts:
    """The :class:`FileFacts` of the Parquet file ``path``."""
    size, digest = hash_file(path)
    rows, columns = parquet_footer(path)
    return FileFacts(bytes=size, rows=rows, xxh3_64=digest, columns=columns)
