"""The rulebook page (docs/policy/rulebook.md) defines every rule the code and the tests cite.

A citation is ``rulebook`` followed by rule IDs (``rulebook K5``, ``rulebook K2, K3``,
``rulebook K9 vs K6``, ``rulebook C1-C11``), or a test named after its rule (``test_k13_...``).
A rule ID written anywhere else in the code or the tests is refused too, so that every citation
is checked; ``L4 port`` (the network layer) is the one exception.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULEBOOK = ROOT / "docs" / "policy" / "rulebook.md"
SCANNED = ("flowlens", "tests", "bench")

_ID = r"[A-Z]\d{1,2}"
#: A rule definition on the page: a list item that starts with the bold ID.
DEFINITION = re.compile(rf"^- \*\*({_ID})\*\* ", re.M)
SEPARATOR = re.compile(r"\s*[,/]\s*|\s+(?:and|or|vs)\s+")
RANGE = re.compile(r"\s*[-–]\s*")
_ITEM = rf"{_ID}(?:{RANGE.pattern}{_ID})?"
CITATION = re.compile(rf"(?i:rulebook)\s+({_ITEM}(?:(?:{SEPARATOR.pattern}){_ITEM})*)\b")
TEST_NAME = re.compile(r"\bdef test_([a-z]\d{1,2})_")
#: An ID with a prefix the page uses (hit formats F0-F2 or ISO weeks W48 are not rules).
BARE_ID = re.compile(r"\b[VKLCHSUD]\d{1,2}\b(?! port)")


def defined_rules(text: str) -> list[str]:
    return DEFINITION.findall(text)


def cited_rules(text: str) -> set[str]:
    """Every rule ID that ``text`` cites, ranges expanded."""
    ids: set[str] = set()
    for match in CITATION.finditer(text):
        for part in SEPARATOR.split(match.group(1)):
            bounds = RANGE.split(part)
            ids.update(_expand(*bounds) if len(bounds) == 2 else bounds)
    ids.update(name.upper() for name in TEST_NAME.findall(text))
    return ids


def uncited_ids(text: str) -> list[str]:
    """Rule IDs written outside a citation (so that no test would check them)."""
    spans = [m.span() for m in CITATION.finditer(text)]
    return [
        m.group(0)
        for m in BARE_ID.finditer(text)
        if not any(start <= m.start() < end for start, end in spans)
    ]


def _expand(first: str, last: str) -> list[str]:
    if first[0] != last[0] or int(first[1:]) >= int(last[1:]):
        raise ValueError(f"bad range of rules {first}-{last}")
    return [f"{first[0]}{n}" for n in range(int(first[1:]), int(last[1:]) + 1)]


def _sources() -> list[Path]:
    this = Path(__file__).resolve()
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py") if p.resolve() != this)


def test_every_rule_on_the_page_is_defined_once() -> None:
    rules = defined_rules(RULEBOOK.read_text(encoding="utf-8"))
    assert len(rules) == len(set(rules)), sorted(r for r in rules if rules.count(r) > 1)
    assert {"V1", "K1", "K15", "L1", "L4", "C1", "C13", "H1", "S1", "U1", "D1"} <= set(rules)


def test_every_rule_cited_in_the_code_and_the_tests_is_on_the_page() -> None:
    defined = set(defined_rules(RULEBOOK.read_text(encoding="utf-8")))
    missing = {}
    cited: set[str] = set()
    for path in _sources():
        ids = cited_rules(path.read_text(encoding="utf-8"))
        cited |= ids
        if ids - defined:
            missing[path.relative_to(ROOT).as_posix()] = sorted(ids - defined)
    assert missing == {}
    assert len(cited) > 40  # the scan does find the citations


def test_rule_ids_are_only_written_as_citations() -> None:
    offenders = {}
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        bare = uncited_ids(text)
        if bare or "§" in text:
            offenders[path.relative_to(ROOT).as_posix()] = bare + (["§"] if "§" in text else [])
    assert offenders == {}


def test_a_citation_of_a_rule_the_page_lacks_is_found() -> None:
    defined = set(defined_rules(RULEBOOK.read_text(encoding="utf-8")))
    bogus = "# the end-of-tier deny (rulebook C5, K99)\ndef test_c99_is_no_rule() -> None: ...\n"
    assert cited_rules(bogus) - defined == {"K99", "C99"}
    assert cited_rules("rulebook C10-C14") - defined == {"C14"}


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("(rulebook K5)", {"K5"}),
        ("Rulebook V1: both sides", {"V1"}),
        ("rulebook K2, K3 and L1", {"K2", "K3", "L1"}),
        ("rulebook K2/K3 policyTypes", {"K2", "K3"}),
        ("(rulebook K9 vs K6)", {"K6", "K9"}),
        ("rulebook K1-K3, L1–L2", {"K1", "K2", "K3", "L1", "L2"}),
        ("the verdict the rulebook gives, see C4", set()),
        ("def test_k13_a_named_port(", {"K13"}),
    ],
)
def test_citations_are_read_with_lists_and_ranges(text: str, ids: set[str]) -> None:
    assert cited_rules(text) == ids


def test_a_rule_id_outside_a_citation_is_refused_but_a_layer_4_port_is_not() -> None:
    assert uncited_ids("# K4: policies are a union\n") == ["K4"]
    assert uncited_ids("# rulebook K4: policies are a union\n") == []
    assert uncited_ids('"source L4 port"') == []
