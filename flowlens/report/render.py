"""Rendering one report dict (see :func:`flowlens.report.model.report_to_dict`) as HTML, Markdown, JSON.

HTML goes through Jinja2 with autoescape on; the only markup inserted unescaped is the SVG that
:mod:`flowlens.report.charts` produced (matplotlib escapes its text). Markdown escapes every value
it prints (``finalize``), so a namespace called ``a|b`` or ``<script>`` cannot break a table or
inject HTML into a wiki. JSON is sorted and indented. All three are byte-identical for the same
input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from flowlens.output.text import visible
from flowlens.report import charts

FORMATS = ("html", "md", "json")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def pct(value: float | None, digits: int = 1) -> str:
    """0.8333 -> '83.3%'; None -> '-'."""
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def num(value: int | float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def size(value: int | None) -> str:
    """Bytes, human readable (powers of 1000)."""
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(amount) < 1000 or unit == "TB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{value} B"  # pragma: no cover


def delta(value: float | None, points: bool = True) -> str:
    """A coverage change in percentage points (fractions), or a score change."""
    if value is None:
        return "-"
    # Adding 0.0 turns a rounded -0.0 into 0.0, so no change never reads "-0.0".
    shown = round(100 * value if points else value, 1) + 0.0
    return f"{shown:+.1f}" + (" pp" if points else "")


def port(value: int | None) -> str:
    return "*" if value is None else str(value)


def endpoint(namespace: str | None, name: str) -> str:
    """'ns/name' for namespaced endpoints, the bare name for hosts and networks (namespace '-')."""
    return name if namespace in (None, "", "-") else f"{namespace}/{name}"


def md_escape(value: Any) -> str:
    """Any value as Markdown text that renders literally (inside a table cell too)."""
    if value is None:
        return ""
    # Control characters from flow logs (escape sequences, \r, bidi overrides) shown as escapes.
    text = visible(str(value))
    text = text.replace("&", "&amp;")
    return _MD_SPECIAL.sub(
        lambda m: "&lt;" if m.group(1) == "<" else "&gt;" if m.group(1) == ">" else "\\" + m.group(1), text
    )


def _filters(env: Environment) -> None:
    env.filters.update(pct=pct, score=score, num=num, size=size, delta=delta, port=port)
    env.globals["endpoint"] = endpoint


_HTML = Environment(
    loader=PackageLoader("flowlens", "report/templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_MD = Environment(
    loader=PackageLoader("flowlens", "report/templates"),
    # Markdown, not HTML: every printed value goes through md_escape (finalize) instead.
    autoescape=False,  # noqa: S701
    finalize=md_escape,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_filters(_HTML)
_filters(_MD)


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_markdown(doc: Mapping[str, Any]) -> str:
    return _MD.get_template("report.md.j2").render(r=doc)


def render_html(doc: Mapping[str, Any]) -> str:
    svgs = {
        "coverage": Markup(charts.coverage_bars(doc["namespaces"])),  # noqa: S704 - matplotlib escapes its text
        "trend": Markup(charts.trend_chart(doc["trend"])),  # noqa: S704
        "graph": Markup(charts.connectivity_graph(doc["edges"])),  # noqa: S704
    }
    return _HTML.get_template("report.html.j2").render(r=doc, charts=svgs)


def render_index(
    entries: Sequence[Mapping[str, Any]], latest: str | None, files: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The reports folder's index: every run, newest first, and the trend over all of them."""
    ordered = sorted(entries, key=lambda h: (h["end"], h["start"], h["label"]))
    trend = Markup(charts.trend_chart(ordered)) if ordered else Markup("")  # noqa: S704
    return _HTML.get_template("index.html.j2").render(
        runs=list(reversed(ordered)), latest=latest, trend=trend, files=files or {}
    )


def render_format(doc: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return render_json(doc)
    if fmt == "md":
        return render_markdown(doc)
    if fmt == "html":
        return render_html(doc)
    raise ValueError(f"unknown format {fmt!r}")
