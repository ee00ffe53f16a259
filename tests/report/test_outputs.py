"""Rendered reports: golden Markdown and JSON, escaping of untrusted names, schema, determinism."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from flowlens.report import generate, resolve_window
from flowlens.report.render import md_escape
from flowlens.store import Store
from tests.factories import write_store
from tests.report.helpers import PROFILE, row, shop_store, wep

GOLDEN = Path(__file__).parent / "golden"
SCHEMA = Path(__file__).resolve().parents[2] / "flowlens" / "report" / "schema.json"
NOW = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
UPDATE = os.environ.get("FLOWLENS_UPDATE_GOLDEN") == "1"


def _day(day: str = "2026-11-25"):
    return resolve_window(now=NOW, window="day", at=day)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; FLOWLENS_UPDATE_GOLDEN=1 rewrites it"


def test_the_shop_report_matches_the_golden_markdown_and_json(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    _check_golden("shop.md", (out.folder / "report.md").read_text(encoding="utf-8"))
    _check_golden("shop.json", (out.folder / "report.json").read_text(encoding="utf-8"))


def test_markdown_and_json_carry_the_same_headline_numbers(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    doc = json.loads((out.folder / "report.json").read_text())
    md = (out.folder / "report.md").read_text()
    html = (out.folder / "report.html").read_text()
    s = doc["summary"]
    assert f"**Score: {s['score']:.1f} / 100**" in md
    assert f">{s['score']:.1f}<" in html
    cov = f"{100 * s['ingress']['connection_coverage']:.1f}%"
    assert f"| coverage (connections) | {cov} |" in md
    assert f"<td>{cov}</td>" in html


def test_the_report_json_follows_its_documented_schema(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(json.loads((out.folder / "report.json").read_text()))


EVIL = "<script>alert(1)</script>"


def _evil_store(root: Path) -> None:
    rows = [
        row(
            wep("source", EVIL, "x|y-*", app=EVIL),
            wep("dest", "b", f"{EVIL}-*"),
            "src",
            [PROFILE.format(ns="b")],
        ),
        row(wep("source", EVIL, "x|y-*"), wep("dest", "b", f"{EVIL}-*"), "dst", [PROFILE.format(ns="b")]),
    ]
    write_store(root, rows)


def test_a_script_label_value_appears_escaped_in_the_html_and_its_svg(tmp_path: Path) -> None:
    _evil_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    html = (out.folder / "report.html").read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The namespace name is drawn in the coverage chart and the connectivity graph (matplotlib SVG text).
    svg_texts = re.findall(r"<text[^>]*>([^<]*)</text>", html)
    assert any("&lt;script&gt;" in t for t in svg_texts)
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "<script" not in index.lower()


def test_a_script_or_pipe_in_a_name_cannot_break_the_markdown(tmp_path: Path) -> None:
    _evil_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    md = (out.folder / "report.md").read_text()
    assert "<script" not in md
    assert "x\\|y-\\*" in md
    assert md_escape("a|b<c>*_`[x]") == "a\\|b&lt;c&gt;\\*\\_\\`\\[x\\]"


def test_the_same_input_gives_byte_identical_files(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    first = generate(Store(tmp_path / "store"), _day(), tmp_path / "one")
    second = generate(Store(tmp_path / "store"), _day(), tmp_path / "two")
    for name in ("report.html", "report.md", "report.json", "state.json"):
        assert (first.folder / name).read_bytes() == (second.folder / name).read_bytes(), name
    assert (tmp_path / "one" / "index.html").read_bytes() == (tmp_path / "two" / "index.html").read_bytes()


def test_the_html_is_self_contained(tmp_path: Path) -> None:
    shop_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports")
    html = (out.folder / "report.html").read_text()
    assert html.count("<svg") == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html
    assert "<link" not in html
    assert "dc:date" not in html  # no date in the SVG metadata
    for term in ("explicit", "profile", "protected", "exposed", "score", "default deny (flows)"):
        assert f"<dt>{term}</dt>" in html


@pytest.mark.parametrize("formats", [("json",), ("md", "json")])
def test_only_the_requested_formats_are_written(tmp_path: Path, formats: tuple[str, ...]) -> None:
    shop_store(tmp_path / "store")
    out = generate(Store(tmp_path / "store"), _day(), tmp_path / "reports", formats=formats)
    written = sorted(p.name for p in out.folder.iterdir())
    assert written == sorted([f"report.{f}" for f in formats] + ["state.json"])


def test_a_trend_of_runs_without_coverage_draws_axes_without_a_legend_or_a_warning() -> None:
    """Runs over windows without traffic have no score to draw; the chart is still drawn."""
    import warnings

    from flowlens.report.charts import trend_chart

    runs = [
        {"label": f"run {i}", "score": None, "ingress_coverage": None, "egress_coverage": None}
        for i in range(3)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = trend_chart(runs)
    assert "<svg" in svg
    assert "run 2" in svg
