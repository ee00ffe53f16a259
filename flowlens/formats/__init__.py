"""Input formats: one module per format, and :func:`detect` to tell them apart.

=============== ==========================================================================
``enterprise``  Calico Enterprise/Cloud ``flows.log`` (Felix), also bare ES documents
``elasticsearch`` ES search hits ``{"_id": ..., "_source": {...}}``, one per line, or a
                  whole ``_search`` response ``{"hits": {"hits": [...]}}``
``goldmane``    Calico open-source Goldmane emitter NDJSON
``whisker``     Calico open-source Whisker ``/flows`` response, event stream or lines
=============== ==========================================================================
"""

from __future__ import annotations

import json
import re

from flowlens.errors import InputError
from flowlens.formats import enterprise, goldmane, whisker
from flowlens.formats.base import Format

FORMATS: dict[str, Format] = {
    f.name: f for f in (enterprise.ENTERPRISE, enterprise.ELASTICSEARCH, goldmane.GOLDMANE, whisker.WHISKER)
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown format {name!r}; choose one of: {', '.join(FORMAT_NAMES)}") from None


#: A UTF-8 byte order mark, which some tools write at the start of a file (PowerShell's
#: ``Out-File``, Windows editors): at a source's start it is not part of its first record.
UTF8_BOM = b"\xef\xbb\xbf"


# A _search response's nesting, "hits": {... "hits": [...: in no flow record, nor in a search hit
# on its own; a response need not carry "took" or "_shards" (a tool may keep only what it needs)
_SEARCH_RESPONSE = re.compile(r'"hits"\s*:\s*\{[^\[\]]*?"hits"\s*:\s*\[')


def search_response_head(head: str) -> bool:
    """Whether a document that starts with ``head`` (its first 4 KiB or more) is an
    Elasticsearch ``_search`` response (or the first of several: the pages of a scroll)."""
    return head.lstrip().startswith("{") and _SEARCH_RESPONSE.search(head[:4096]) is not None


_OTHER_ENCODINGS = (  # (UTF-32 first: its little-endian mark begins with UTF-16's)
    (b"\xff\xfe\x00\x00", "UTF-32", "utf-32"),
    (b"\x00\x00\xfe\xff", "UTF-32", "utf-32"),
    (b"\xff\xfe", "UTF-16", "utf-16"),
    (b"\xfe\xff", "UTF-16", "utf-16"),
)


def other_encoding(head: bytes) -> str | None:
    """Why a file of JSON in UTF-16 or UTF-32 with a byte order mark (what Windows PowerShell's
    ``>`` and ``Out-File`` write) is not read, with how to convert it; None for any other file
    (bytes that merely start like such a mark are lines like any others)."""
    for mark, name, codec in _OTHER_ENCODINGS:
        if head.startswith(mark):
            sample = head[:256]
            width = 4 if name == "UTF-32" else 2
            try:
                text = sample[: len(sample) // width * width].decode(codec)
            except UnicodeDecodeError:
                return None
            if text.lstrip()[:1] not in ("{", "[", "d", "e", "i", ":"):  # JSON, or an event stream
                return None
            return (
                f"{name} text (it starts with a {name} byte order mark); flowlens reads UTF-8: convert "
                f"it first (iconv -f {name} -t UTF-8 FILE > FILE.utf8, or Out-File -Encoding utf8)"
            )
    return None


_ITEMS = re.compile(r'"items"\s*:\s*\[')
# A list response's key, its list null when the page is empty (Whisker's list of no flows)
ITEMS_KEY = re.compile(r'"items"\s*:\s*(\[|null)')


def _items_format(text: str) -> str | None:
    """The format of the first item of a list response's ``items`` (None when the head does
    not hold it whole, or it is no record flowlens knows)."""
    found = _ITEMS.search(text[:4096])
    return _array_format(text[found.end() - 1 :]) if found else None


def _array_format(text: str) -> str | None:
    """The format of a JSON array of records (``jq -s .``, ``jq .hits.hits``, ``jq .items``), from
    its first element (which the head must hold whole)."""
    first = len(text) - len(text[1:].lstrip())  # (``text`` starts with its "[")
    try:
        record, _ = json.JSONDecoder().raw_decode(text, first)
    except (ValueError, RecursionError):
        return None
    return _record_format(record) if isinstance(record, dict) else None


def _record_format(record: dict[str, object]) -> str | None:
    """The format one parsed record (or a Goldmane ``List`` response) is in, if any."""
    if _goldmane_document(record):
        return "goldmane"
    if whisker.looks_like(record):
        return "whisker"
    return enterprise.looks_like(record)


def _goldmane_document(record: dict[str, object]) -> bool:
    """A Goldmane record, or a ``List`` response of its gRPC API (``{"meta", "flows"}``)."""
    flows = record.get("flows")
    if isinstance(flows, list) and flows and isinstance(flows[0], dict):
        return goldmane.looks_like(flows[0])
    return goldmane.looks_like(record)


def detect(head: bytes) -> str | None:
    """The format of a file from its first bytes (up to 64 KiB), or None when none fits.

    The first line that parses as a JSON object decides; a Whisker list response (one JSON
    document, possibly pretty-printed) and event stream are recognised by their shape. A byte
    order mark at the start is passed over.
    """
    text = head.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("data:"):
        return "whisker"
    if stripped.startswith("{") and ITEMS_KEY.search(text[:4096]):
        # A list response: told by its first item (Whisker's, or Enterprise flow-log records
        # listed by an API, e.g. {"total_hits", "after_key", "items"}); when the head does not
        # hold that item whole, Whisker's by its shape
        found = _items_format(stripped)
        if found is not None:
            return found
        if '"total"' in text or "\n" in stripped[:2]:
            return "whisker"
    if stripped.startswith("["):
        return _array_format(stripped)
    first = stripped.split("\n", 1)[0]
    if stripped.startswith("{") and '"hits"' in text[:4096] and ('"took"' in first or first.strip() == "{"):
        return "elasticsearch"
    if search_response_head(first):
        return "elasticsearch"
    if first.strip() == "{":
        # pretty-printed: a capture of Goldmane's gRPC API or its stream tool
        try:
            record, _ = json.JSONDecoder().raw_decode(stripped)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict) and _goldmane_document(record):
            return "goldmane"
    for line in text.splitlines()[:50]:
        line = line.strip()
        if not line:
            continue
        if line.startswith("data:"):
            return "whisker"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        if "items" in record and isinstance(record["items"], list):
            return "whisker"
        found = _record_format(record)
        if found:
            return found
    return None


__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "ITEMS_KEY",
    "Format",
    "detect",
    "get_format",
    "other_encoding",
    "search_response_head",
]
