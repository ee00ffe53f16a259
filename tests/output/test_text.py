"""flowlens.output.text: control characters made visible, formulas defused."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from flowlens.output.text import UNSAFE, defuse_formula, json_safe, visible, visible_lines


def test_escape_sequences_bidi_overrides_and_carriage_returns_become_visible() -> None:
    assert visible("pod\x1b]0;pwned\x07") == "pod\\x1b]0;pwned\\x07"
    assert visible("a\rb\nc\td") == "a\\rb\\nc\\td"
    assert visible("\x9b31m\x7f") == "\\x9b31m\\x7f"
    assert visible("evil\u202egpj.exe\u2066\u2028") == "evil\\u202egpj.exe\\u2066\\u2028"
    assert visible("\ud800") == "\\ud800"
    assert visible_lines("two\nlines\twith \x1b[2J") == "two\nlines\twith \\x1b[2J"


def test_ordinary_text_is_left_exactly_as_it_is() -> None:
    for text in ("shop/api-7d4f8c9b5-*", "a|b\\c", "ünïcödé 名前 🙂", "", "x' or 1=1 --"):
        assert visible(text) is text or visible(text) == text
        assert visible_lines(text) == text


@given(st.text())
def test_visible_text_holds_no_control_character(text: str) -> None:
    shown = visible(text)
    assert not any(c in UNSAFE or unicodedata.category(c) in ("Cc", "Cs") for c in shown)
    assert shown == text or any(c in UNSAFE or unicodedata.category(c) == "Cs" for c in text)
    # Only unsafe characters change: removing the escapes' text from both sides leaves the rest.
    assert all(c in shown for c in text if c not in UNSAFE and unicodedata.category(c) != "Cs")


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_json_stays_the_same_value_with_unsafe_characters_escaped(text: str) -> None:
    written = json_safe(json.dumps({"v": text}, ensure_ascii=False))
    assert json.loads(written) == {"v": text}
    assert not any(c in UNSAFE for c in written)


def test_cells_a_spreadsheet_would_run_get_a_quote_first() -> None:
    for formula in (
        "=1+1",
        '=HYPERLINK("http://x")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "--",
    ):
        assert defuse_formula(formula) == "'" + formula
    for value in ("-", "-5", "+1.5e3", "-0.25", ".5", "-inf", "nan", "1e-05", "shop/api", "", "a=b", "x@y"):
        assert defuse_formula(value) == value


def test_rendered_text_is_made_visible_and_json_keeps_its_values() -> None:
    from flowlens.output.text import safe_text

    text = "verdict: allow\nfrom shop/api\x1b[2J\u202e\n"
    assert safe_text(text, "text") == "verdict: allow\nfrom shop/api\\x1b[2J\\u202e\n"
    assert safe_text(text, "markdown") == safe_text(text, "table") == safe_text(text, "text")
    document = json.dumps({"from": "shop/api\x1b\u202e\x85"}, ensure_ascii=False)
    assert json.loads(safe_text(document, "json")) == {"from": "shop/api\x1b\u202e\x85"}
    assert "\u202e" not in safe_text(document, "jsonl") and "\x85" not in safe_text(document, "json")


def test_a_long_list_of_partitions_stays_one_short_line() -> None:
    from flowlens.output.text import few

    days = [f"date=2025-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    assert few(reversed(days)) == "336: date=2025-01-01 … date=2025-12-28"
    assert few(["b", "a", "a"]) == "a, b"
    assert few([]) == "none"
