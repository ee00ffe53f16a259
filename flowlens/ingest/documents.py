"""Whole-document inputs: a Whisker ``/flows`` response or an Elasticsearch ``_search`` response,
one record per line.

:func:`is_document` tells such an input from one record per line by its first bytes;
:func:`document_items` turns it into one line per record (line N = record N), read item by item
(:meth:`json.JSONDecoder.raw_decode`), so that the parsed document is never held whole: a
response of millions of empty items costs memory for one item at a time, not for millions of
Python objects. An item nested too deeply for the decoder still becomes a line of its own (its
raw text, found by :func:`value_end`), which the checks then quarantine with its reason. A
document that ends before it is complete is reported as such (:class:`Incomplete`): it waits for
the rest instead of being read in part.
"""

from __future__ import annotations

import json
from typing import Any

from flowlens.ingest.accounting import FileSummary

_WS = " \t\n\r"
_DECODER = json.JSONDecoder()


class Incomplete(ValueError):
    """The document ends before its closing bracket (a file still being written)."""


def is_document(head: bytes, fmt: str) -> bool:
    """A whole JSON response rather than one record per line: a Whisker ``/flows`` list response
    or an Elasticsearch ``_search`` response (possibly pretty-printed)."""
    text = head.lstrip()
    if text[:1] != b"{":
        return False
    if fmt == "whisker":
        return b'"items"' in head[:4096]
    if fmt == "elasticsearch":
        first = text.split(b"\n", 1)[0]
        return b'"hits"' in head[:4096] and (
            first.strip() == b"{" or b'"took"' in first or b'"_shards"' in first
        )
    return False


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


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
    """Append a line per element of the array at ``pos``; the index after the array."""
    pos = _expect(text, pos, "[")
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "]":
        return pos + 1
    while True:
        pos = _skip_ws(text, pos)
        try:
            item, end = _decode(text, pos)
            out.append(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        except RecursionError:
            end = value_end(text, pos)
            raw = text[pos:end].replace("\n", " ").replace("\r", " ")
            out.append(raw.encode("utf-8", "surrogatepass") + b"\n")
        pos = _skip_ws(text, end)
        if pos >= len(text):
            raise Incomplete("the document ends early")
        if text[pos] == "]":
            return pos + 1
        if text[pos] != ",":
            raise ValueError(f"expected ',' or ']' at character {pos}")
        pos += 1


def _object_fields(text: str, pos: int, want: dict[str, Any]) -> int:
    """Walk the object at ``pos``; for each key in ``want``, call it with the value's position
    (it returns the index after the value); decode and drop the other values."""
    pos = _expect(text, pos, "{")
    pos = _skip_ws(text, pos)
    if pos < len(text) and text[pos] == "}":
        return pos + 1
    while True:
        key, pos = _decode(text, _skip_ws(text, pos))
        pos = _expect(text, pos, ":")
        pos = _skip_ws(text, pos)
        handler = want.get(key) if isinstance(key, str) else None
        if handler is not None and pos < len(text) and text[pos] in "[{":
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


def _records(text: str) -> list[bytes] | None:
    """The record lines of a response (its ``items``, else its ``hits.hits``), or None when it
    has neither list."""
    found: dict[str, list[bytes]] = {}

    def items(pos: int) -> int:
        if text[pos] != "[":
            _, end = _decode(text, pos)
            return end
        found["items"] = []
        return _array_lines(text, pos, found["items"])

    def hits_list(pos: int) -> int:
        if text[pos] != "[":
            _, end = _decode(text, pos)
            return end
        found["hits"] = []
        return _array_lines(text, pos, found["hits"])

    def hits(pos: int) -> int:
        if text[pos] != "{":
            _, end = _decode(text, pos)
            return end
        return _object_fields(text, pos, {"hits": hits_list})

    end = _object_fields(text, _skip_ws(text, 0), {"items": items, "hits": hits})
    if _skip_ws(text, end) != len(text):
        raise ValueError(f"extra data after the document at character {end}")
    return found.get("items", found.get("hits"))


def document_items(data: bytes, fs: FileSummary) -> bytes:
    """The records of a whole-document response, one per line (line N = record N). A document
    that is not valid JSON becomes one line (quarantined by the checks), with a warning; one
    that ends early raises :class:`Incomplete`."""
    try:
        text = data.decode("utf-8")
        lines = _records(text)
    except Incomplete:
        raise
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        fs.warnings.append(f"not a complete JSON document: {reason}")
        return data.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n"
    if lines is None:
        fs.warnings.append('a response without an "items" or "hits.hits" list')
        return data.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n"
    return b"".join(lines)
