"""Block YAML with comments, for manifests people read and review.

PyYAML cannot write comments, and the evidence of each rule belongs in a comment right above it,
so this module writes block YAML itself. Scalars are quoted by PyYAML's own emitter, so that a
string that looks like a number, a boolean or a selector (``!has(x)``) is never read back as
anything else; every comment is cleaned of control characters, so text from logs (names, labels)
cannot break out of its comment line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

# Anything a YAML reader refuses or reads as a line break: control characters (U+0000-U+001F, U+007F-U+009F), the
# Unicode line and paragraph separators, surrogates, the byte-order mark and non-characters.
_CONTROL = re.compile(r"[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class Commented:
    """A list item with comment lines written above it."""

    value: Any
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """One YAML document with comment lines written after its ``---``."""

    body: Mapping[str, Any]
    comments: tuple[str, ...] = ()


def clean_comment(text: str) -> str:
    """One safe comment line: control characters (newlines included) become '?'."""
    return _CONTROL.sub("?", text)


def scalar(value: Any) -> str:
    """A scalar as YAML text that reads back as the same value and type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else f"{int(value)}.0"
    return _string(str(value))


@lru_cache(maxsize=65536)
def _string(value: str) -> str:
    # Names, labels and selectors repeat endlessly in one output: quote each distinct one once.
    if _NOT_PLAIN_ASCII.search(value):
        # Control characters, line breaks and non-ASCII: a double-quoted scalar on one line,
        # with every such character escaped.
        text = yaml.safe_dump(value, default_style='"', width=1 << 30, allow_unicode=False)
        return text.rstrip("\n").removesuffix("\n...")
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=False)
    text = text.rstrip("\n")
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _empty(value: Any) -> str | None:
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, list | tuple) and not value:
        return "[]"
    return None


def _comment_lines(comments: Sequence[str], indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}# {clean_comment(c)}".rstrip() for c in comments]


def _mapping(obj: Mapping[str, Any], indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for key, item in obj.items():
        value = item
        while isinstance(value, Commented):
            lines.extend(_comment_lines(value.comments, indent))
            value = value.value
        k = scalar(key)
        empty = _empty(value)
        if empty is not None:
            lines.append(f"{pad}{k}: {empty}")
        elif isinstance(value, Mapping):
            lines.append(f"{pad}{k}:")
            lines.extend(_mapping(value, indent + 2))
        elif isinstance(value, list | tuple):
            lines.append(f"{pad}{k}:")
            lines.extend(_sequence(value, indent + 2))
        else:
            lines.append(f"{pad}{k}: {scalar(value)}")
    return lines


def _sequence(items: Sequence[Any], indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for item in items:
        value = item
        while isinstance(value, Commented):
            lines.extend(_comment_lines(value.comments, indent))
            value = value.value
        empty = _empty(value)
        if empty is not None:
            lines.append(f"{pad}- {empty}")
        elif isinstance(value, Mapping):
            inner = _mapping(value, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines.extend(inner[1:])
        elif isinstance(value, list | tuple):
            inner = _sequence(value, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines.extend(inner[1:])
        else:
            lines.append(f"{pad}- {scalar(value)}")
    return lines


def dump_documents(documents: Sequence[Document], header: Sequence[str] = ()) -> str:
    """A multi-document YAML stream; ``header`` comment lines come first."""
    lines = _comment_lines(header, 0)
    for doc in documents:
        lines.append("---")
        lines.extend(_comment_lines(doc.comments, 0))
        lines.extend(_mapping(doc.body, 0))
    return "\n".join(lines) + "\n"


def plain(value: Any) -> Any:
    """The value without :class:`Commented` wrappers (what a YAML reader gets back)."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value  # the common leaves, without the abstract-class checks below
    if kind is dict:
        return {k: plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    if isinstance(value, Commented):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
