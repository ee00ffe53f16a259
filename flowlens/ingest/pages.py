"""Documents larger than the in-memory limit, read one page at a time.

A whole JSON document (a Whisker or Elasticsearch response, a Goldmane capture) is read into
memory and split into its records at once (:mod:`flowlens.ingest.documents`), up to
``--max-document-bytes``. An export of many pages saved one after another (``_search`` with
``scroll`` or ``search_after``, page after page of Whisker's ``/flows``, a long capture of
Goldmane's stream) grows far beyond that: such a source is read here a page at a time, so that
memory holds one page, whatever the size of the file. Only a single page larger than the limit
is refused.

Pages are found without parsing: a page ends where a ``}`` is followed (after white space) by
the ``{`` of the next one (:data:`~flowlens.ingest.documents.PAGE_END`). Inside a string the
same bytes would mark a false end; a page cut there does not parse to its end
(:class:`~flowlens.ingest.documents.Incomplete`) and is joined with what follows. Each page is
then split into records like a whole document, and its records continue the numbering of the
pages before (record N = line N).

The bytes consumed end at the last whole page: a page still being written waits for the next
run, which resumes after the pages read (the source's checkpoint), as a file of lines resumes
after its last whole line.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flowlens.formats import UTF8_BOM
from flowlens.ingest.accounting import FileSummary
from flowlens.ingest.checkpoints import ContentHash
from flowlens.ingest.documents import PAGE_END_BYTES, Incomplete, document_items
from flowlens.store import duckdb_connection

_WHITE = b" \t\r\n"
_BLANK = re.compile(rb"[ \t\r\n]*")  # (fullmatch: no copy of a page, as strip() makes)
# The records of pages are handed on (and the pages hashed) this many bytes of pages at a time:
# a Goldmane capture holds one small object per flow.
GROUP_BYTES = 4 * 1024 * 1024


class Paged:
    """A document source to read a page at a time (see :func:`read_pages`)."""


PAGED = Paged()


def is_paged(head: bytes) -> bool:
    """Whether a document source whose first bytes are ``head`` can be read a page at a time:
    it is a sequence of JSON objects (a top-level array is one value, read whole)."""
    return head.removeprefix(UTF8_BOM).lstrip()[:1] == b"{"


@dataclass
class PagedRead:
    """What reading a paged document found: bytes consumed (the end of its last whole page),
    records (lines) up to there, the bytes of a page not complete yet, and whether a page larger
    than the limit stopped it."""

    consumed: int
    lines: int
    waiting: int = 0
    too_large: bool = False


def _candidates(blocks: Iterator[bytes], limit: int) -> Iterator[tuple[bytes, bool]]:
    """Pieces of a document ending at each page end (the ``}`` of
    :data:`~flowlens.ingest.documents.PAGE_END`), and the rest at its end (``True`` beside it).
    A piece is never longer than ``limit`` plus a block: past it without an end, the bytes so far
    are handed out as they are (the caller refuses them)."""
    pending = bytearray()
    scan_from = 0  # where a page end is looked for next in ``pending``
    for block in blocks:
        pending += block
        start = 0
        for match in PAGE_END_BYTES.finditer(pending, scan_from):
            end = match.start() + 1
            yield bytes(memoryview(pending)[start:end]), False  # (one copy, not two)
            start = end
        del pending[:start]
        # (a "}" and white space at the end may still become an end with the next block)
        last = len(pending)
        while last and pending[last - 1] in _WHITE:
            last -= 1
        scan_from = max(0, last - 1)
        if len(pending) > limit:
            yield bytes(pending), False
            return
    yield bytes(pending), True


def read_pages(
    blocks: Iterator[bytes],
    *,
    skip: int,
    start_lines: int,
    hasher: ContentHash,
    limit: int,
    fmt_name: str,
    fs: FileSummary,
    process: Callable[[bytes, int], int],
    progress: Callable[[int], None] | None = None,
) -> PagedRead:
    """Read the pages of a document from ``blocks`` (its bytes from the first on), the first
    ``skip`` bytes (pages read before) hashed only; the records of its pages go to ``process``
    (lines, the number of the line before them -> lines taken) some MB at a time. A page that does
    not parse to its end at the end of the source waits; one larger than ``limit`` stops the read
    (``too_large``). ``progress`` is told the bytes consumed as the records are handed on."""
    read = PagedRead(consumed=skip, lines=start_lines)
    records = bytearray()  # record lines of whole pages, not handed to ``process`` yet
    pages = bytearray()  # the bytes of those pages, not hashed yet
    taken = start_lines  # lines handed to ``process``

    def hand_over() -> None:
        # (some MB at a time: a capture of one small object per flow handed on, and hashed, an
        # object at a time spent more on that than on its records)
        nonlocal taken
        if records:
            taken += process(bytes(records), taken)
            records.clear()
        if pages:
            hasher.update(bytes(pages))
            pages.clear()
        if progress is not None:
            progress(read.consumed)

    text = b""
    # (one DuckDB connection for every page: making one costs some 15 ms)
    with contextlib.closing(duckdb_connection(threads=1)) as con:
        for piece, at_end in _candidates(_skipped(blocks, skip, hasher), limit):
            text += piece
            if len(text) > limit:
                read.too_large = True
                break
            if _BLANK.fullmatch(text):
                lines = b""
            else:
                try:
                    lines = document_items(text, fs, fmt_name, con, one_value=True)
                except Incomplete:
                    if at_end:
                        read.waiting = len(text)
                        break
                    continue  # a false end inside a string: the page goes on
            records += lines
            pages += text
            read.consumed += len(text)
            text = b""
            if len(pages) >= GROUP_BYTES:
                hand_over()
    hand_over()
    read.lines = taken
    return read


def _skipped(blocks: Iterator[bytes], skip: int, hasher: ContentHash) -> Iterator[bytes]:
    """``blocks`` after their first ``skip`` bytes, which are hashed."""
    for block in blocks:
        if skip >= len(block):
            hasher.update(block)
            skip -= len(block)
            continue
        if skip:
            hasher.update(block[:skip])
            block = block[skip:]
            skip = 0
        yield block
