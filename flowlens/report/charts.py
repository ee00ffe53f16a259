"""Report charts: matplotlib figures rendered to SVG text for inlining in the HTML report.

Deterministic on purpose (golden files, diffable reports): a fixed ``svg.hashsalt``, no date in
the metadata, text kept as SVG ``<text>`` (``svg.fonttype: none``), which matplotlib escapes, and
math text parsing off, so a label like ``$x$`` or ``<script>`` is drawn literally and never
becomes markup. No pyplot: figures are built directly, so no global state or GUI backend.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

# Typed loosely: matplotlib types rc keys as a Literal union.
RC: Any = {
    "svg.hashsalt": "flowlens",
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
EXPLICIT = "#2e7d32"
PROFILE = "#ef6c00"
DENIED = "#c62828"
INGRESS = "#1565c0"
EGRESS = "#6a1b9a"
SCORE = "#212121"
MAX_BARS = 60
MAX_NODES = 40
MAX_EDGES = 120
MAX_LABEL = 40

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(fig: Figure, title: str) -> str:
    buf = io.StringIO()
    with rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Title": title})
    text = _PROLOGUE.sub("", buf.getvalue(), count=1)
    # Scale to the page: keep the aspect ratio from the viewBox, drop the fixed size.
    text = re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart" role="img"', text, count=1
    )
    return text.strip() + "\n"


def _figure(width: float, height: float) -> Figure:
    with rc_context(RC):
        return Figure(figsize=(width, height), dpi=72)


def coverage_bars(namespaces: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars: ingress and egress connection coverage (%) per namespace."""
    rows = list(namespaces)[:MAX_BARS]
    with rc_context(RC):
        fig = _figure(7.5, max(1.6, 0.3 * len(rows) + 1.0))
        ax = fig.add_subplot()
        if not rows:
            ax.text(0.5, 0.5, "no namespaces with traffic", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return _svg(fig, "Coverage per namespace")
        ys = list(range(len(rows)))
        for offset, key, colour in ((-0.2, "ingress", INGRESS), (0.2, "egress", EGRESS)):
            values = [row[key]["connection_coverage"] for row in rows]
            ax.barh(
                [y + offset for y in ys],
                [100 * v if v is not None else 0 for v in values],
                height=0.38,
                color=colour,
                label=f"{key} coverage",
            )
            for y, v in zip(ys, values, strict=True):
                text = "-" if v is None else f"{100 * v:.0f}%"
                ax.text(101, y + offset, text, va="center", fontsize=7)
        ax.set_yticks(ys, [_short(str(row["namespace"])) for row in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, 110)
        ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"])
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        fig.tight_layout()
        return _svg(fig, "Coverage per namespace")


def trend_chart(trend: Sequence[Mapping[str, Any]]) -> str:
    """Score and ingress/egress coverage over every run so far."""
    with rc_context(RC):
        fig = _figure(7.5, 2.8)
        ax = fig.add_subplot()
        xs = list(range(len(trend)))
        series = (
            ("score", lambda h: h["score"], SCORE),
            (
                "ingress coverage",
                lambda h: None if h["ingress_coverage"] is None else 100 * h["ingress_coverage"],
                INGRESS,
            ),
            (
                "egress coverage",
                lambda h: None if h["egress_coverage"] is None else 100 * h["egress_coverage"],
                EGRESS,
            ),
        )
        for name, get, colour in series:
            points = [(x, float(v)) for x, h in zip(xs, trend, strict=True) if (v := get(h)) is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=colour, label=name)
        ax.set_ylim(0, 105)
        ax.set_ylabel("%")
        step = max(1, math.ceil(len(xs) / 12))
        ax.set_xticks(
            xs[::step], [_short(str(h["label"]), 24) for h in trend][::step], rotation=20, ha="right"
        )
        if len(xs) == 1:
            ax.set_xlim(-1, 1)
        if ax.get_legend_handles_labels()[0]:  # (runs without any coverage to draw: no legend)
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        return _svg(fig, "Trend")


def connectivity_graph(edges: Sequence[Mapping[str, Any]]) -> str:
    """Namespaces on a circle; an arrow per connected pair (colour: how it was decided)."""

    def total(e: Mapping[str, Any]) -> int:
        return int(e["allowed_connections"]) + int(e["denied_connections"])

    between = [e for e in edges if e["source"] != e["dest"]]
    weight: dict[str, int] = {}
    for e in between:
        for node in (e["source"], e["dest"]):
            weight[node] = weight.get(node, 0) + total(e)
    nodes = sorted(sorted(weight, key=lambda n: (-weight[n], n))[:MAX_NODES])
    shown = set(nodes)
    candidates = [e for e in between if e["source"] in shown and e["dest"] in shown]
    # Drawing thousands of arrows is slow and unreadable: keep the largest edges.
    kept = sorted(candidates, key=lambda e: (-total(e), e["source"], e["dest"]))[:MAX_EDGES]
    hidden = len(between) - len(kept)
    position = {
        n: (
            math.cos(2 * math.pi * i / max(1, len(nodes)) + math.pi / 2),
            math.sin(2 * math.pi * i / max(1, len(nodes)) + math.pi / 2),
        )
        for i, n in enumerate(nodes)
    }
    with rc_context(RC):
        fig = _figure(7.5, 6.5)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_aspect("equal")
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.35, 1.35)
        if not nodes:
            ax.text(0, 0, "no traffic between namespaces", ha="center", va="center")
            return _svg(fig, "Namespace connectivity")
        biggest = max((total(e) for e in kept), default=1) or 1
        for e in sorted(kept, key=lambda e: (e["source"], e["dest"])):
            if e["profile_connections"] > 0:
                colour, style = PROFILE, "-"
            elif e["allowed_connections"] > 0:
                colour, style = EXPLICIT, "-"
            else:
                colour, style = DENIED, "--"
            width = 0.8 + 3.2 * math.log1p(total(e)) / math.log1p(biggest)
            # Shorten the arrow here rather than with shrinkA/shrinkB, whose path splitting is
            # most of the drawing time.
            (x0, y0), (x1, y1) = position[e["source"]], position[e["dest"]]
            dx, dy = x1 - x0, y1 - y0
            gap = 0.07 / max(math.hypot(dx, dy), 1e-9)
            ax.add_patch(
                FancyArrowPatch(
                    (x0 + gap * dx, y0 + gap * dy),
                    (x1 - gap * dx, y1 - gap * dy),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    connectionstyle="arc3,rad=0.12",
                    shrinkA=0,
                    shrinkB=0,
                    linewidth=width,
                    linestyle=style,
                    color=colour,
                    alpha=0.8,
                )
            )
        for n in nodes:
            x, y = position[n]
            ax.plot([x], [y], marker="o", markersize=9, color="#455a64")
            ax.text(
                1.14 * x,
                1.14 * y,
                _short(n, 28),
                ha="left" if x > 0.2 else "right" if x < -0.2 else "center",
                va="bottom" if y > 0.2 else "top" if y < -0.2 else "center",
                fontsize=8,
            )
        for i, (label, colour, style) in enumerate(
            (
                ("explicit policy", EXPLICIT, "-"),
                ("allowed by profile", PROFILE, "-"),
                ("denied only", DENIED, "--"),
            )
        ):
            ax.plot([-1.55, -1.4], [-1.25 + 0.1 * i] * 2, color=colour, linestyle=style, linewidth=2)
            ax.text(-1.37, -1.25 + 0.1 * i, label, va="center", fontsize=7)
        if hidden:
            ax.text(1.55, -1.3, f"{len(kept)} largest of {len(between)} edges shown", ha="right", fontsize=7)
        fig.tight_layout()
        return _svg(fig, "Namespace connectivity")
