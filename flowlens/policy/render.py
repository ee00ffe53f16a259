"""Rendering what-if replays and explanations as text: the output of ``simulate`` and ``explain``.

Owns :func:`render_simulation` (``table``, ``markdown``, ``json``, ``jsonl``) over a
:class:`~flowlens.policy.simulate.SimulationResult`, with :func:`change_groups` (the rows grouped
by change and workload pair, as the table and markdown show them), and :func:`render_explanation`
(``text``, ``json``) over an :class:`~flowlens.policy.evaluate.Explanation`. Every function
returns the whole output, newline-terminated; nothing here prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flowlens.errors import UsageError
from flowlens.policy.evaluate import Decision, Explanation
from flowlens.policy.simulate import SimulationResult

SIMULATION_FORMATS = ("table", "json", "jsonl", "markdown")
EXPLANATION_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ChangeGroup:
    """The replayed keys of one change and workload pair, summed; ``ports`` and ``decided_by``
    (the deciding policy and rule per reporter, most records first) as displayed."""

    change: str
    source: str
    dest: str
    ports: str
    keys: int
    records: int
    num_flows: int
    bytes: int
    decided_by: str


# --------------------------------------------------------------------------------------------
# simulate


def render_simulation(result: SimulationResult, fmt: str) -> str:
    """``result`` as ``table``, ``markdown``, ``json`` (totals, notes, rows) or ``jsonl`` (rows)."""
    renderers: dict[str, Callable[[SimulationResult], str]] = {
        "table": render_table,
        "markdown": render_markdown,
        "json": render_json,
        "jsonl": render_jsonl,
    }
    renderer = renderers.get(fmt)
    if renderer is None:
        raise UsageError(f"unknown format {fmt!r}; use {', '.join(SIMULATION_FORMATS)}")
    return renderer(result)


def change_groups(result: SimulationResult) -> tuple[ChangeGroup, ...]:
    """Rows grouped by change and workload pair, in the result's order."""
    groups: dict[tuple[str, str, str], _Group] = {}
    for row in result.rows:
        key = (row.change, row.source, row.dest)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group()
        port = "-" if row.dest_port is None else str(row.dest_port)
        g.ports.add(f"{row.proto or '?'}/{port}")
        g.keys += 1
        g.records += row.records
        g.num_flows += row.num_flows
        g.bytes += row.bytes
        hit = f"{row.reporter}: {_last_hit(row.simulated_trace)}"
        g.decided_by[hit] = g.decided_by.get(hit, 0) + row.records
    out = []
    for (change, source, dest), g in groups.items():
        ports = sorted(
            g.ports,
            key=lambda p: (p.split("/")[0], int(p.split("/")[1]) if p.split("/")[1].isdigit() else -1),
        )
        decided = sorted(g.decided_by.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(
            ChangeGroup(
                change=change,
                source=source,
                dest=dest,
                ports=", ".join(ports),
                keys=g.keys,
                records=g.records,
                num_flows=g.num_flows,
                bytes=g.bytes,
                decided_by="; ".join(k for k, _ in decided),
            )
        )
    return tuple(out)


class _Group:
    """A group being summed (see :class:`ChangeGroup`)."""

    def __init__(self) -> None:
        self.ports: set[str] = set()
        self.keys = 0
        self.records = 0
        self.num_flows = 0
        self.bytes = 0
        self.decided_by: dict[str, int] = {}


def _last_hit(trace: Sequence[str]) -> str:
    if not trace:
        return "-"
    # "N|tier|name|action|rule" without the index: the deciding policy and rule.
    return trace[-1].split("|", 1)[1]


_HEADERS = (
    "CHANGE",
    "SOURCE",
    "DEST",
    "PORTS",
    "KEYS",
    "RECORDS",
    "FLOWS",
    "BYTES",
    "DECIDED BY (simulated)",
)
_NUMERIC = (4, 5, 6, 7)  # columns aligned right


def _cells(g: ChangeGroup) -> list[str]:
    values: tuple[str | int, ...] = (
        g.change,
        g.source,
        g.dest,
        g.ports,
        g.keys,
        g.records,
        g.num_flows,
        g.bytes,
        g.decided_by,
    )
    return [f"{v:,}" if isinstance(v, int) else v for v in values]


def _totals_lines(result: SimulationResult) -> list[str]:
    lines = []
    for change, t in result.totals.items():
        lines.append(
            f"{change}: {t['keys']:,} keys, {t['records']:,} records, {t['num_flows']:,} flows, {t['bytes']:,} bytes"
        )
    return lines


def render_table(result: SimulationResult) -> str:
    """A fixed-width table of :func:`change_groups`, then the totals per change."""
    groups = change_groups(result)
    cells = [list(_HEADERS)] + [_cells(g) for g in groups]
    widths = [max(len(r[i]) for r in cells) for i in range(len(_HEADERS))]
    lines = []
    for r in cells:
        parts = [r[i].rjust(widths[i]) if i in _NUMERIC else r[i].ljust(widths[i]) for i in range(len(r))]
        lines.append("  ".join(parts).rstrip())
    if not groups:
        lines.append("(no flows in the store for this window)")
    lines.append("")
    lines.extend(_totals_lines(result))
    return "\n".join(lines) + "\n"


def render_markdown(result: SimulationResult) -> str:
    """A Markdown table of :func:`change_groups`, then the totals per change as a list."""
    groups = change_groups(result)
    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join("---:" if i in _NUMERIC else "---" for i in range(len(_HEADERS))) + "|",
    ]
    for g in groups:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(g)) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in _totals_lines(result))
    return "\n".join(lines) + "\n"


def render_json(result: SimulationResult) -> str:
    """One JSON document: totals per change, the run's notes and every row."""
    doc = {
        "totals": result.totals,
        "notes": sorted(set(result.notes)),
        "rows": [r.as_dict() for r in result.rows],
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def render_jsonl(result: SimulationResult) -> str:
    """One JSON object per row."""
    return "".join(json.dumps(r.as_dict(), sort_keys=False) + "\n" for r in result.rows)


# --------------------------------------------------------------------------------------------
# explain


def render_explanation(expl: Explanation, fmt: str) -> str:
    """``expl`` as ``text`` (the walk of both sides in sentences) or ``json``."""
    if fmt == "text":
        return _explanation_text(expl)
    if fmt == "json":
        return _explanation_json(expl)
    raise UsageError(f"unknown format {fmt!r}; use {', '.join(EXPLANATION_FORMATS)}")


def _explanation_text(expl: Explanation) -> str:
    conn = expl.connection
    port = "?" if expl.port is None else expl.port
    lines = [
        f"Connection {expl.source.display} -> {expl.dest.display} {expl.proto}/{port}: "
        f"{'ALLOWED' if conn.action == 'allow' else 'DENIED'}",
        "",
        "Egress (at the source):",
        *(f"  {s}" for s in expl.egress_steps),
        f"  Verdict: {conn.egress.action}" + ("" if conn.egress.evaluated else " (not evaluated)"),
        f"  Trace: {', '.join(conn.egress.enforced_hits) or '-'}",
        "",
        "Ingress (at the destination):",
        *(f"  {s}" for s in expl.ingress_steps),
        f"  Verdict: {conn.ingress.action}" + ("" if conn.ingress.evaluated else " (not evaluated)"),
        f"  Trace: {', '.join(conn.ingress.enforced_hits) or '-'}",
    ]
    if (
        conn.pending_action != conn.action
        or conn.egress.pending_hits != conn.egress.enforced_hits
        or (conn.ingress.pending_hits != conn.ingress.enforced_hits)
    ):
        lines += [
            "",
            f"With staged policies enforced: {'ALLOWED' if conn.pending_action == 'allow' else 'DENIED'}",
            f"  egress pending trace: {', '.join(conn.egress.pending_hits) or '-'}",
            f"  ingress pending trace: {', '.join(conn.ingress.pending_hits) or '-'}",
        ]
    if conn.notes:
        lines += ["", "Notes:", *(f"  - {n}" for n in conn.notes)]
    lines.append(
        "The connection is allowed only if both sides allow it (sides that are not Calico endpoints are not evaluated)."
    )
    return "\n".join(lines) + "\n"


def _side(decision: Decision, steps: Sequence[str]) -> dict[str, object]:
    return {
        "action": decision.action,
        "evaluated": decision.evaluated,
        "trace": list(decision.enforced_hits),
        "pending_action": decision.pending_action,
        "pending_trace": list(decision.pending_hits),
        "steps": list(steps),
        "notes": list(decision.notes),
    }


def _explanation_json(expl: Explanation) -> str:
    conn = expl.connection
    doc = {
        "source": expl.source.display,
        "dest": expl.dest.display,
        "proto": expl.proto,
        "dest_port": expl.port,
        "action": conn.action,
        "pending_action": conn.pending_action,
        "egress": _side(conn.egress, expl.egress_steps),
        "ingress": _side(conn.ingress, expl.ingress_steps),
    }
    return json.dumps(doc, indent=2) + "\n"
