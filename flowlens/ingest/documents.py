"""Whole-document inputs: a Whisker ``/flows`` response or an Elasticsearch ``_search`` response
(or several, one after another: the pages of an export saved into one file), or a capture of
Goldmane's gRPC API (pretty-printed or in the proto3 JSON mapping), one record per line.

:func:`is_document` tells such an input from one record per line by its first bytes;
:func:`document_items` turns it into one line per record (line N = record N), each the record's
minified JSON. DuckDB splits the document (a response of four million empty items: seconds,
never millions of Python objects); a document DuckDB cannot read is walked item by item in Python
(:meth:`json.JSONDecoder.raw_decode`) to tell a document that ends early (:class:`Incomplete`: it
waits for the rest instead of being read in part) from one that is not JSON (one line, which the
checks quarantine). An item nested too deeply for Python's decoder still becomes a line of its
own (its raw text, found by :func:`value_end`), which the checks then quarantine.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from flowlens.formats import ITEMS_KEY, UTF8_BOM, goldmane, search_response_head
from flowlens.formats.goldmane_protojson import is_protojson, to_emitter, uses_json_names
from flowlens.ingest.accounting import FileSummary
from flowlens.store import duckdb_connection

if TYPE_CHECKING:
    import duckdb

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# One encoder for every item (json.dumps with separators makes a new one per call, which cost
# more than decoding and encoding the item together).
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class Incomplete(ValueError):
    """The document ends before its closing bracket (a file still being written)."""


# The end of a page of a document whose pages follow one another: a closing brace, white space,
# the opening brace of the next page (inside a string the same bytes are no end).
PAGE_END = re.compile(r"\}[ \t\r\n]*\{")
PAGE_END_BYTES = re.compile(PAGE_END.pattern.encode())
# An array whose first element is an object: a list of records (a line "[1, 2]" is not)
_RECORD_ARRAY = re.compile(rb"\[\s*\{")
_ITEMS_KEY = re.compile(ITEMS_KEY.pattern.encode())  # (for the bytes of a head)


def is_document(head: bytes, fmt: str) -> bool:
    """A whole JSON document rather than one record per line: a Whisker ``/flows`` list response,
    an Elasticsearch ``_search`` response (possibly pretty-printed, or several: scroll pages), a
    Goldmane capture, or a JSON array of records of any format."""
    head = head.removeprefix(UTF8_BOM)
    text = head.lstrip()
    if _RECORD_ARRAY.match(text):
        return True  # a JSON array of records (`jq -s .`, `jq .hits.hits`, `jq .items`)
    if text[:1] != b"{":
        return False
    if fmt in ("whisker", "enterprise"):
        # A list response (Whisker's, or Enterprise records listed by an API, e.g.
        # {"total_hits", "after_key", "items": [...]}). A first line that is a whole object is a
        # record, read line by line whatever its values hold (a Service named "items"), unless
        # it is a response itself, on one line.
        first = text.split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except (ValueError, RecursionError):  # pretty-printed, cut by the head, or a bad line
            return _ITEMS_KEY.search(head[:4096]) is not None
        # ("items": null is an empty page: Whisker's list of no flows)
        return (
            isinstance(record, dict)
            and "items" in record
            and (record["items"] is None or isinstance(record["items"], list))
        )
    if fmt == "goldmane":
        # A pretty-printed capture (grpcurl, Goldmane's stream tool), a List response, or records
        # in the proto3 JSON mapping (read whole, each made an emitter record)
        first = text.split(b"\n", 1)[0].strip()
        if first == b"{":
            return True
        try:
            record = json.loads(first)
        except (ValueError, RecursionError):  # (not JSON, or nested too deeply: one record per line)
            return False
        if not isinstance(record, dict):
            return False
        if isinstance(record.get("flows"), list) or uses_json_names(record):
            return True
        # Proto field names with enums by name or integers as strings (MessageToJson with
        # preserving_proto_field_name): only when the mapping makes the first record valid, so
        # that an emitter file whose first line is merely bad is still read line by line.
        return is_protojson(record) and goldmane.diagnose(to_emitter(record)) is None
    if fmt == "elasticsearch":
        first = text.split(b"\n", 1)[0]
        return (
            b'"hits"' in head[:4096]
            and (first.strip() == b"{" or b'"took"' in first or b'"_shards"' in first)
        ) or search_response_head(first.decode("utf-8", errors="replace"))
    return False


def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]  # (matches the empty string)


def value_end(text: str, pos: int) -> int:
    """The index just after the JSON value (or what looks like one) starting at ``pos``, found by
    brackets and strings alone, without recursion: how a value too deep to decode is cut out."""
    depth = 0
    i = pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth <= 0:
                return i + 1
        elif depth == 0 and c in ",":
            return i
        i += 1
    return n


def _expect(text: str, pos: int, char: str) -> int:
    pos = _skip_ws(text, pos)
    if pos >= len(text):
        raise Incomplete("the document ends early")
    if text[pos] != char:
        raise ValueError(f"expected {char!r} at character {pos}")
    return pos + 1


def _decode(text: str, pos: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        if _skip_ws(text, exc.pos) >= len(text) or exc.msg.startswith("Unterminated string"):
            raise Incomplete("the document ends early") from None
        raise


def _array_lines(text: str, pos: int, out: list[bytes]) -> int:
    """Append a line per element of the array at ``pos`` (as one ``bytes`` of lines); the index
    after the array."""
    pos = _expect(text, pos, "[")
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "]":
        return pos + 1
    lines = bytearray()
    decode, encode, skip, size = _decode, _ENCODER.encode, _skip_ws, len(text)
    while True:
        pos = skip(text, pos)
        try:
            item, end = decode(text, pos)
            lines += encode(item).encode()
        except RecursionError:
            end = value_end(text, pos)
            lines += text[pos:end].replace("\n", " ").replace("\r", " ").encode("utf-8", "surrogatepass")
        lines += b"\n"
        pos = skip(text, end)
        if pos >= size:
            raise Incomplete("the document ends early")
        if text[pos] == "]":
            out.append(bytes(lines))
            return pos + 1
        if text[pos] != ",":
            raise ValueError(f"expected ',' or ']' at character {pos}")
        pos += 1


def _object_fields(text: str, pos: int, want: dict[str, Any]) -> int:
    """Walk the object at ``pos``; for each key in ``want``, call it with the value's position
    (it returns the index after the value, whatever the value is); decode and drop the other
    values."""
    pos = _expect(text, pos, "{")
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "}":
        return pos + 1
    while True:
        key, pos = _decode(text, _skip_ws(text, pos))
        pos = _expect(text, pos, ":")
        pos = _skip_ws(text, pos)
        handler = want.get(key) if isinstance(key, str) else None
        if handler is not None and pos < len(text):
            pos = handler(pos)
        else:
            _, pos = _decode(text, pos)
        pos = _skip_ws(text, pos)
        if pos >= len(text):
            raise Incomplete("the document ends early")
        if text[pos] == "}":
            return pos + 1
        if text[pos] != ",":
            raise ValueError(f"expected ',' or '}}' at character {pos}")
        pos += 1


def _page(text: str, pos: int) -> tuple[list[bytes] | None, int]:
    """The record lines of the response at ``pos`` (its ``items``, else its ``hits.hits``; None
    when it has neither list; none when the list is null, as Whisker writes an empty page), and
    the index after it."""
    found: dict[str, list[bytes]] = {}

    def record_list(key: str) -> Callable[[int], int]:
        def read(at: int) -> int:
            if text[at] != "[":
                value, end = _decode(text, at)
                if value is None:  # (an empty page: Whisker's "items": null)
                    found[key] = []
                return end
            found[key] = []
            return _array_lines(text, at, found[key])

        return read

    def hits(at: int) -> int:
        if text[at] != "{":
            _, end = _decode(text, at)
            return end
        return _object_fields(text, at, {"hits": record_list("hits")})

    end = _object_fields(text, pos, {"items": record_list("items"), "hits": hits})
    return found.get("items", found.get("hits")), end


def _records(text: str) -> list[bytes] | None:
    """The record lines of a response, or of each of a sequence of responses (the pages of a
    scroll or ``search_after`` export saved one after another), in order; None when a response
    has no record list. A JSON array is a list of records itself (a response's list cut out)."""
    lines: list[bytes] = []
    pos = _skip_ws(text, 0)
    while True:
        if text[pos : pos + 1] == "[":
            end = _array_lines(text, pos, lines)
        else:
            page, end = _page(text, pos)
            if page is None:
                return None
            lines += page
        pos = _skip_ws(text, end)
        if pos == len(text):
            return lines


# The record list of a response: a Whisker response's items, else an Elasticsearch hits.hits;
# or the document itself, when it is an array of records.
_KINDS_SQL = "SELECT json_type($doc, ['$.items', '$.hits.hits', '$'])"  # (the document parsed once)
_ITEMS_SQL = "SELECT unnest(json_extract($doc, '{path}[*]')) AS item"


@contextlib.contextmanager
def _connection(con: duckdb.DuckDBPyConnection | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """``con``, or a connection of its own, closed afterwards, when there is none."""
    if con is not None:
        yield con
        return
    with contextlib.closing(duckdb_connection(threads=1)) as own:
        yield own


def _records_by_duckdb(text: str, con: duckdb.DuckDBPyConnection | None = None) -> bytes | None:
    """The record lines of a response, split by DuckDB (on ``con``, else a connection of its
    own); None when it has no record list. DuckDB's error when the document is not JSON."""
    with _connection(con) as con:
        if _only_hits(text):
            column = con.sql(_ITEMS_SQL.format(path="$.hits.hits"), params={"doc": text}).to_arrow_table()
            if column.num_rows:  # (nothing when hits.hits is no list: then told as below)
                return _item_lines(column.column(0))
        ((kinds,),) = con.sql(_KINDS_SQL, params={"doc": text}).fetchall()
        items, hits, whole = kinds
        path = (
            "$"
            if whole == "ARRAY"
            else "$.items"
            if items == "ARRAY"
            else "$.hits.hits"
            if hits == "ARRAY"
            else None
        )
        if path is None:
            return b"" if items == "NULL" else None  # ("items": null: an empty page)
        column = con.sql(_ITEMS_SQL.format(path=path), params={"doc": text}).to_arrow_table().column(0)
    return _item_lines(column)


def _only_hits(text: str) -> bool:
    """Whether the records of a response, if it has any, can only be its ``hits.hits``: it is an
    object without an ``items`` key (a key spelled with escapes would hold a ``\\u``). Its
    records are then cut out without first asking DuckDB where they are, which parses a page
    once instead of twice (a 16 MB page of 5,000 hits: 76 ms to split instead of 152 ms)."""
    escapes = "\\" in text and "\\u" in text  # (one character is found far faster than two)
    return _opens_object(text) and not escapes and '"items"' not in text


def _opens_object(text: str) -> bool:
    """Whether the first character after white space is ``{`` (without copying the text)."""
    start = _skip_ws(text, 0)
    return text[start : start + 1] == "{"


def _item_lines(column: pa.ChunkedArray) -> bytes:
    """The items DuckDB cut out of a document, one per line."""
    if len(column) == 0:
        return b""
    array = column.combine_chunks().cast(pa.large_string())
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(array) + 1, offset=array.offset * 8)
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return np.insert(data, offsets[1:] - offsets[0], 10).tobytes()  # a newline after each item


def _pages_by_duckdb(text: str, con: duckdb.DuckDBPyConnection | None) -> bytes | None:
    """The record lines of responses one after another (an export's pages), each page split by
    DuckDB; None when a page has no record list or does not parse (the walk then says why). A
    page ends where :data:`PAGE_END` matches; one that does not parse there (a false end inside
    a string) goes on to the next. A 62 MB export of ten 2,000-hit pages is split in 0.55 s;
    before, DuckDB failed on the whole text (0.7 s) and the walk then took 0.57 s."""
    import duckdb

    found: list[bytes] = []
    start = 0
    with _connection(con) as con:  # (one connection for every page)
        for end in [m.start() + 1 for m in PAGE_END.finditer(text)] + [len(text)]:
            try:
                page = _records_by_duckdb(text[start:end], con)
            except duckdb.Error:
                continue
            if page is None:
                return None
            found.append(page)
            start = end
    return b"".join(found) if start == len(text) else None


def _goldmane_lines(text: str) -> bytes:
    """The records of a Goldmane capture, one emitter line each: a sequence of JSON values, each
    a record (a ``Flow``, or a ``FlowResult`` of a stream) or a ``List`` response (its
    ``flows``), in the emitter's shape or the proto3 JSON mapping (:func:`to_emitter`)."""
    lines = bytearray()
    pos = _skip_ws(text, 0)
    while pos < len(text):
        value, end = _decode(text, pos)
        for item in value if isinstance(value, list) else [value]:  # (an array of records)
            flows = item.get("flows") if isinstance(item, dict) else None
            for record in flows if isinstance(flows, list) else [item]:
                lines += _ENCODER.encode(to_emitter(record)).encode()
                lines += b"\n"
        pos = _skip_ws(text, end)
    return bytes(lines)


def _one_line(data: bytes) -> bytes:
    """A document that cannot be read, as one line (for the checks to quarantine)."""
    return data.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n"


def document_items(
    data: bytes,
    fs: FileSummary,
    fmt: str,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    one_value: bool = False,
) -> bytes:
    """The records of a whole-document response, one per line (line N = record N). A document
    that is not valid JSON becomes one line (quarantined by the checks), with a warning; one
    that ends early raises :class:`Incomplete`. A byte order mark at its start is passed over.
    A ``goldmane`` document is a capture of its gRPC API (:func:`_goldmane_lines`). ``con``: the
    DuckDB connection to split it on (a page of many: one connection for all); ``one_value``:
    ``data`` is known to be one value (a page :mod:`flowlens.ingest.pages` found), so it is not
    looked through for the ends of pages."""
    import duckdb

    try:
        text = data.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        fs.warnings.append(f"not a complete JSON document: not UTF-8 at byte {exc.start}")
        return _one_line(data)
    if fmt != "goldmane":
        try:
            # (pages one after another are split page by page: as one text DuckDB only fails on
            # them, which cost 0.7 s for 60 MB)
            paged = not one_value and _opens_object(text) and PAGE_END.search(text) is not None
            found = _pages_by_duckdb(text, con) if paged else _records_by_duckdb(text, con)
        except duckdb.Error:
            found = None  # not JSON as DuckDB reads it: the walk below says why
        if found is not None:
            return found
    try:
        lines = _goldmane_lines(text) if fmt == "goldmane" else _records(text)
    except Incomplete:
        raise
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        fs.warnings.append(f"not a complete JSON document: {reason}")
        return _one_line(data)
    if lines is None:
        fs.warnings.append('a response without an "items" or "hits.hits" list')
        return _one_line(data)
    return lines if isinstance(lines, bytes) else b"".join(lines)
