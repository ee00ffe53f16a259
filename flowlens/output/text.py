"""Untrusted text made safe to show: control characters made visible, spreadsheet formulas defused.

Names, labels, DNS names and policy names come from flow logs and manifests, which whatever runs
in the cluster can write. Shown raw, an escape sequence in one of them is obeyed by the terminal
(a window title, a cleared screen, a ``\\r`` that writes over the line before it), a Unicode
bidirectional override reorders what is read, and a CSV cell that begins with ``=`` is run as a
formula by a spreadsheet. Owns:

* :data:`UNSAFE` and :func:`visible` — every control character (U+0000-U+001F, DEL, U+0080-U+009F), the Unicode line
  and paragraph separators, the bidirectional-text controls and lone surrogates, written as the
  escape a Python string literal would use (``\\x1b``, ``\\r``, ``\\u202e``); :func:`visible_lines`
  keeps line feeds and tabs, for messages of several lines;
* :data:`JSON_ESCAPES` — those of them that JSON writers leave raw, as JSON ``\\uXXXX`` escapes
  (the value a JSON reader gets is unchanged);
* :func:`few` — a list of names (partitions, dates) in a message of one line, however long it is;
* :func:`defuse_formula` — a CSV cell a spreadsheet would take for a formula, with a ``'`` first.

The same tables drive the SQL that writes large results (:mod:`flowlens.output.sql`), so that a
value is escaped the same way whichever path writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The bidirectional-text controls (ALM, LRM, RLM, LRE..RLO, LRI..PDI) and the line and
# paragraph separators: invisible characters that change what a line shows or where it ends.
_FORMAT_CODES = (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))

#: Every character :func:`visible` escapes: controls U+0000-U+001F, DEL, controls U+0080-U+009F, the format codes above.
UNSAFE: tuple[str, ...] = tuple(
    chr(code) for code in (*range(0x00, 0x20), *range(0x7F, 0xA0), *_FORMAT_CODES)
)

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: Each unsafe character and the text :func:`visible` writes for it.
ESCAPES: dict[str, str] = {char: _escape(char) for char in UNSAFE}

#: The unsafe characters a JSON writer leaves raw (it escapes only the controls U+0000-U+001F), as JSON escapes.
JSON_ESCAPES: dict[str, str] = {char: f"\\u{ord(char):04x}" for char in UNSAFE if ord(char) >= 0x20}

# Lone surrogates cannot be written as UTF-8 at all; they are escaped too (Python text only:
# Arrow and DuckDB strings are valid UTF-8 and never hold one).
_UNSAFE_RE = re.compile("[" + "".join(re.escape(c) for c in UNSAFE) + "\ud800-\udfff]")
_UNSAFE_IN_LINES_RE = re.compile(
    "[" + "".join(re.escape(c) for c in UNSAFE if c not in "\n\t") + "\ud800-\udfff]"
)
_JSON_RE = re.compile("[" + "".join(re.escape(c) for c in JSON_ESCAPES) + "]")


def _replace(match: re.Match[str]) -> str:
    char = match.group(0)
    return ESCAPES.get(char) or f"\\u{ord(char):04x}"


def visible(text: str) -> str:
    """``text`` with every unsafe character written as an escape (``\\x1b``, ``\\n``, ``\\u202e``).

    Text without one is returned as it is. Backslashes are left alone: the result is for people
    to read, not to parse back (the raw value is in the json, jsonl and parquet output).
    """
    if _UNSAFE_RE.search(text) is None:
        return text
    return _UNSAFE_RE.sub(_replace, text)


def visible_lines(text: str) -> str:
    """Like :func:`visible`, but line feeds and tabs stay: for messages of several lines."""
    if _UNSAFE_IN_LINES_RE.search(text) is None:
        return text
    return _UNSAFE_IN_LINES_RE.sub(_replace, text)


def json_safe(text: str) -> str:
    """JSON text with the unsafe characters a JSON writer leaves raw written as ``\\uXXXX``.

    Only valid for the output of a JSON writer that escapes the controls U+0000-U+001F (such characters then
    stand only inside strings, where the escape means the same character).
    """
    if _JSON_RE.search(text) is None:
        return text
    return _JSON_RE.sub(lambda m: JSON_ESCAPES[m.group(0)], text)


def safe_text(text: str, fmt: str) -> str:
    """Rendered output in ``fmt`` made safe to show: JSON (``json``, ``jsonl``) through
    :func:`json_safe` (the values a reader gets are unchanged), any other text through
    :func:`visible_lines`."""
    return json_safe(text) if fmt in ("json", "jsonl") else visible_lines(text)


#: Items :func:`few` lists one by one; more are counted.
FEW = 5


def few(items: Iterable[str], limit: int = FEW) -> str:
    """Sorted items for a message that stays one short line however many there are.

    Up to ``limit`` are listed (``"a, b, c"``); more are counted with the first and last
    (``"522: 2025-11-01 … 2026-11-05"``); none is ``"none"``.
    """
    ordered = sorted(set(items))
    if not ordered:
        return "none"
    if len(ordered) <= limit:
        return ", ".join(ordered)
    return f"{len(ordered):,}: {ordered[0]} … {ordered[-1]}"


#: The characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a
#: formula, or that it drops before reading one (tab, carriage return).
FORMULA_START = "=+-@\t\r"

#: A cell that is a plain number, or Calico's ``-`` ("none"): a spreadsheet reads it as a value.
#: ASCII digits only (Python's ``\\d`` would match other scripts' digits; the SQL must agree).
NUMBER_PATTERN = r"[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?|[-+]?(inf|nan)|-"
_NUMBER_RE = re.compile(NUMBER_PATTERN)


def defuse_formula(cell: str) -> str:
    """A CSV cell a spreadsheet would treat as a formula, with ``'`` before it; others unchanged.

    A cell is a formula when it begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return and is not a plain number (``-5``, ``+1.5e3``) or a lone ``-``.
    """
    if cell and cell[0] in FORMULA_START and _NUMBER_RE.fullmatch(cell) is None:
        return "'" + cell
    return cell
