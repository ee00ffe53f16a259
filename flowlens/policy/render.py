"""Rendering what-if replays and explanations as text: the output of ``simulate`` and ``explain``.

Owns :func:`write_simulation` (``table``, ``markdown``, ``json``, ``jsonl``) over a
:class:`~flowlens.policy.simulate.SimulationResult`, with :func:`change_groups` (the rows grouped
by change and workload pair, as the table and markdown show them), and :func:`write_explanation`
(``text``, ``json``) over an :class:`~flowlens.policy.evaluate.Explanation`.

The writers hand the output to a ``write`` callable in bounded pieces (at most
:data:`PIECE_ROWS` rows or groups each), so that a replay of millions of flow keys is never held
as one string; the table can be cut after ``max_rows`` groups (for a terminal), the rest counted
in the returned :class:`~flowlens.output.Written`. :func:`render_simulation` joins
the same pieces into the whole output; :func:`render_explanation` returns the explanation of one
connection (small) as one string, which :func:`write_explanation` writes. Output ends with a
newline. Nothing here prints.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from flowlens.errors import UsageError
from flowlens.output.writers import Written
from flowlens.policy.evaluate import Decision, Explanation
from flowlens.policy.simulate import SimulationResult, SimulationRow

SIMULATION_FORMATS = ("table", "json", "jsonl", "markdown")
EXPLANATION_FORMATS = ("text", "json")

#: Rows (or change groups) in one piece handed to ``write``: few enough to keep memory flat,
#: enough to keep the number of writes small.
PIECE_ROWS = 1000

#: Where output goes, one piece of text at a time (``sys.stdout.write``, a file's ``write``).
Write = Callable[[str], object]


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
    """``result`` as ``table``, ``markdown``, ``json`` (totals, notes, rows) or ``jsonl`` (rows),
    the whole output as one string (:func:`write_simulation` writes it in pieces)."""
    text = io.StringIO()
    write_simulation(result, fmt, text.write)
    return text.getvalue()


def write_simulation(
    result: SimulationResult, fmt: str, write: Write, *, max_rows: int | None = None
) -> Written:
    """Write ``result`` in ``fmt`` to ``write`` in pieces of at most :data:`PIECE_ROWS` rows.

    ``max_rows`` cuts the ``table`` format after that many change groups (the totals per change
    are still written); :class:`~flowlens.output.Written` counts the groups of the table and
    markdown formats and the rows of the others. Raises :class:`UsageError` for an unknown format.
    """
    writers: dict[str, Callable[[SimulationResult, Write], Written]] = {
        "table": lambda r, w: _write_table(r, w, max_rows),
        "markdown": _write_markdown,
        "json": _write_json,
        "jsonl": _write_jsonl,
    }
    writer = writers.get(fmt)
    if writer is None:
        raise UsageError(f"unknown format {fmt!r}; use {', '.join(SIMULATION_FORMATS)}")
    return writer(result, write)


def _pieces(lines: Iterable[str]) -> Iterator[str]:
    """``lines`` (each newline-terminated) joined :data:`PIECE_ROWS` at a time."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= PIECE_ROWS:
            yield "".join(batch)
            batch.clear()
    if batch:
        yield "".join(batch)


def change_groups(result: SimulationResult) -> tuple[ChangeGroup, ...]:
    """Rows grouped by change and workload pair, in the result's order."""
    return tuple(_iter_groups(result))


def _iter_groups(result: SimulationResult) -> Iterator[ChangeGroup]:
    """:func:`change_groups` one at a time. When the rows of each group are contiguous (as
    :func:`~flowlens.policy.simulate.simulate` mostly sorts them) only one group is summed at a
    time; otherwise every group is summed first."""
    if _contiguous(result.rows):
        for key, rows in itertools.groupby(result.rows, key=_group_key):
            group = _Group()
            for row in rows:
                group.add(row)
            yield group.done(*key)
        return
    groups: dict[tuple[str, str, str], _Group] = {}
    for row in result.rows:
        key = _group_key(row)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group()
        g.add(row)
    for key, g in groups.items():
        yield g.done(*key)


def _group_key(row: SimulationRow) -> tuple[str, str, str]:
    return (row.change, row.source, row.dest)


def _contiguous(rows: Sequence[SimulationRow]) -> bool:
    """Whether the rows of each change and workload pair follow each other. (The result sorts
    by namespace and name, and a pair's text also depends on the endpoint types, so it may not.)"""
    seen: set[tuple[str, str, str]] = set()
    last: tuple[str, str, str] | None = None
    for row in rows:
        key = _group_key(row)
        if key != last:
            if key in seen:
                return False
            seen.add(key)
            last = key
    return True


class _Group:
    """A group being summed (see :class:`ChangeGroup`)."""

    def __init__(self) -> None:
        self.ports: set[str] = set()
        self.keys = 0
        self.records = 0
        self.num_flows = 0
        self.bytes = 0
        self.decided_by: dict[str, int] = {}

    def add(self, row: SimulationRow) -> None:
        port = "-" if row.dest_port is None else str(row.dest_port)
        self.ports.add(f"{row.proto or '?'}/{port}")
        self.keys += 1
        self.records += row.records
        self.num_flows += row.num_flows
        self.bytes += row.bytes
        hit = f"{row.reporter}: {_last_hit(row.simulated_trace)}"
        self.decided_by[hit] = self.decided_by.get(hit, 0) + row.records

    def done(self, change: str, source: str, dest: str) -> ChangeGroup:
        ports = sorted(
            self.ports,
            key=lambda p: (p.split("/")[0], int(p.split("/")[1]) if p.split("/")[1].isdigit() else -1),
        )
        decided = sorted(self.decided_by.items(), key=lambda kv: (-kv[1], kv[0]))
        return ChangeGroup(
            change=change,
            source=source,
            dest=dest,
            ports=", ".join(ports),
            keys=self.keys,
            records=self.records,
            num_flows=self.num_flows,
            bytes=self.bytes,
            decided_by="; ".join(k for k, _ in decided),
        )


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


def _write_table(result: SimulationResult, write: Write, max_rows: int | None) -> Written:
    """A fixed-width table of :func:`change_groups` (the first ``max_rows``), then the totals per change.

    Two passes over the groups: the first sizes the columns and counts, the second writes, so
    that the groups are not all held at once (see :func:`_iter_groups`)."""
    widths = [len(h) for h in _HEADERS]
    groups = 0
    for g in _iter_groups(result):
        if max_rows is None or groups < max_rows:
            widths = [max(w, len(c)) for w, c in zip(widths, _cells(g), strict=True)]
        groups += 1
    shown = groups if max_rows is None else min(groups, max_rows)

    def line(r: Sequence[str]) -> str:
        parts = [r[i].rjust(widths[i]) if i in _NUMERIC else r[i].ljust(widths[i]) for i in range(len(r))]
        return "  ".join(parts).rstrip() + "\n"

    write(line(_HEADERS))
    for piece in _pieces(line(_cells(g)) for g in itertools.islice(_iter_groups(result), shown)):
        write(piece)
    tail = [] if groups else ["(no flows in the store for this window)"]
    write("\n".join([*tail, "", *_totals_lines(result)]) + "\n")
    return Written(rows=groups, shown=shown)


def _write_markdown(result: SimulationResult, write: Write) -> Written:
    """A Markdown table of :func:`change_groups`, then the totals per change as a list."""
    write("| " + " | ".join(_HEADERS) + " |\n")
    write("|" + "|".join("---:" if i in _NUMERIC else "---" for i in range(len(_HEADERS))) + "|\n")
    groups = 0

    def rows() -> Iterator[str]:
        nonlocal groups
        for g in _iter_groups(result):
            groups += 1
            yield "| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(g)) + " |\n"

    for piece in _pieces(rows()):
        write(piece)
    write("\n".join(["", *(f"- {line}" for line in _totals_lines(result))]) + "\n")
    return Written(rows=groups, shown=groups)


def _write_json(result: SimulationResult, write: Write) -> Written:
    """One JSON document: totals per change, the run's notes and every row.

    The same text as ``json.dumps(doc, indent=2)`` of the whole document: the head (totals and
    notes) is dumped with an empty row list, then each row is dumped on its own and indented to
    its place in the list."""
    head = json.dumps({"totals": result.totals, "notes": sorted(set(result.notes)), "rows": []}, indent=2)
    if not result.rows:
        write(head + "\n")
        return Written(rows=0, shown=0)
    assert head.endswith("[]\n}"), head[-10:]
    write(head[: -len("]\n}")] + "\n")
    last = len(result.rows) - 1
    rows = (
        "    " + json.dumps(r.as_dict(), indent=2).replace("\n", "\n    ") + ("\n" if i == last else ",\n")
        for i, r in enumerate(result.rows)
    )
    for piece in _pieces(rows):
        write(piece)
    write("  ]\n}\n")
    return Written(rows=len(result.rows), shown=len(result.rows))


def _write_jsonl(result: SimulationResult, write: Write) -> Written:
    """One JSON object per row."""
    for piece in _pieces(json.dumps(r.as_dict(), sort_keys=False) + "\n" for r in result.rows):
        write(piece)
    return Written(rows=len(result.rows), shown=len(result.rows))


# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# explain


def render_explanation(expl: Explanation, fmt: str) -> str:
    """``expl`` as ``text`` (the walk of both sides in sentences) or ``json``."""
    if fmt == "text":
        return _explanation_text(expl)
    if fmt == "json":
        return _explanation_json(expl)
    raise UsageError(f"unknown format {fmt!r}; use {', '.join(EXPLANATION_FORMATS)}")


def write_explanation(expl: Explanation, fmt: str, write: Write) -> Written:
    """Write :func:`render_explanation` to ``write`` (one connection: one piece)."""
    write(render_explanation(expl, fmt))
    return Written(rows=1, shown=1)


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
