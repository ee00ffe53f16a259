"""simulate and explain output written in pieces (flowlens.policy.render.write_simulation).

The pieces must join into exactly the text the whole-string renderers wrote before output was
streamed (the oracles below are those renderers), stay bounded whatever the size of the replay,
and the table can be cut (on a terminal: tests/policy/test_cli_policy.py runs one).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.output import TERMINAL_ROWS
from flowlens.policy.render import (
    _HEADERS,
    _NUMERIC,
    PIECE_ROWS,
    SIMULATION_FORMATS,
    _cells,
    _totals_lines,
    change_groups,
    render_simulation,
    write_simulation,
)
from flowlens.policy.simulate import SimulationResult, SimulationRow

# --------------------------------------------------------------------------------------------
# the whole-string renderers output was written by before it was streamed


def _whole_table(result: SimulationResult) -> str:
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


def _whole_markdown(result: SimulationResult) -> str:
    lines = [
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join("---:" if i in _NUMERIC else "---" for i in range(len(_HEADERS))) + "|",
    ]
    for g in change_groups(result):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(g)) + " |")
    lines.append("")
    lines.extend(f"- {line}" for line in _totals_lines(result))
    return "\n".join(lines) + "\n"


def _whole(result: SimulationResult, fmt: str) -> str:
    if fmt == "table":
        return _whole_table(result)
    if fmt == "markdown":
        return _whole_markdown(result)
    if fmt == "json":
        doc = {
            "totals": result.totals,
            "notes": sorted(set(result.notes)),
            "rows": [r.as_dict() for r in result.rows],
        }
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"
    return "".join(json.dumps(r.as_dict(), sort_keys=False) + "\n" for r in result.rows)


# --------------------------------------------------------------------------------------------

CHANGES = ("newly-denied", "newly-allowed", "unchanged")
TRACES = ("0|default|knp:shop/lock-api|deny|-1", "1|__PROFILE__|pro:kns.shop|allow|0", "0|t|gnp:t.x|pass|3")
# Names from flow logs are untrusted: pipes, quotes, escapes, control and bidi characters.
NAMES = st.text(alphabet=st.sampled_from("ab-*|\\\"'\n\x1b\u202e\u00e9\u2028 {}[],:"), min_size=1, max_size=8)


@st.composite
def rows(draw: st.DrawFn, index: int = 0) -> SimulationRow:
    change = draw(st.sampled_from(CHANGES))
    action = "deny" if change == "newly-denied" else "allow"
    trace = tuple(draw(st.lists(st.sampled_from(TRACES), max_size=2)))
    return SimulationRow(
        reporter=draw(st.sampled_from(("src", "dst"))),
        source_type=draw(st.sampled_from(("wep", "net", None))),
        source_namespace=draw(st.one_of(st.none(), NAMES)),
        source_name="-",
        source_name_aggr=draw(st.one_of(st.none(), NAMES)),
        source_ip=draw(st.sampled_from((None, "10.0.0.1", "2001:db8::1"))),
        dest_type=draw(st.sampled_from(("wep", "hep", "net"))),
        dest_namespace=draw(NAMES),
        dest_name="-",
        dest_name_aggr=draw(NAMES),
        dest_ip=None,
        proto=draw(st.sampled_from(("tcp", "udp", "sctp", None))),
        dest_port=draw(st.one_of(st.none(), st.integers(0, 65535))),
        recorded_action=draw(st.sampled_from(("allow", "deny", "mixed"))),
        simulated_action=action,
        change=change,
        simulated_trace=trace,
        pending_action=action,
        pending_trace=trace,
        records=draw(st.integers(0, 10**12)),
        records_allowed=0,
        records_denied=0,
        num_flows=draw(st.integers(0, 10**6)),
        bytes=draw(st.integers(0, 10**15)),
        notes=tuple(draw(st.lists(NAMES, max_size=2))),
        undecided=draw(st.booleans()),
    )


results = st.builds(
    SimulationResult,
    rows=st.lists(rows(), max_size=30).map(tuple),
    notes=st.lists(NAMES, max_size=4).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(result=results, fmt=st.sampled_from(SIMULATION_FORMATS), grouped=st.booleans())
def test_the_pieces_join_into_exactly_the_whole_string_output_of_every_format(
    result: SimulationResult, fmt: str, grouped: bool
) -> None:
    if grouped:  # each change and pair's rows together, as simulate mostly sorts them
        rows = sorted(result.rows, key=lambda r: (r.change, r.source, r.dest))
        result = SimulationResult(rows=tuple(rows), notes=result.notes)
    pieces: list[str] = []
    written = write_simulation(result, fmt, pieces.append)
    assert "".join(pieces) == _whole(result, fmt) == render_simulation(result, fmt)
    assert written.cut == 0
    if fmt in ("json", "jsonl"):
        assert written.rows == len(result.rows)
        doc = json.loads("".join(pieces)) if fmt == "json" else None
        assert doc is None or doc["rows"] == [r.as_dict() for r in result.rows]
    else:
        assert written.rows == len(change_groups(result))


def _many(groups: int) -> SimulationResult:
    """``groups`` change groups of one row each (distinct destinations)."""
    trace = ("0|default|knp:shop/lock-api|deny|-1",)
    return SimulationResult(
        rows=tuple(
            SimulationRow(
                reporter="dst",
                source_type="wep",
                source_namespace="shop",
                source_name="-",
                source_name_aggr="web-*",
                source_ip=None,
                dest_type="wep",
                dest_namespace="shop",
                dest_name="-",
                dest_name_aggr=f"api-{i:05d}-*",
                dest_ip=None,
                proto="tcp",
                dest_port=80,
                recorded_action="allow",
                simulated_action="deny",
                change="newly-denied",
                simulated_trace=trace,
                pending_action="deny",
                pending_trace=trace,
                records=i + 1,
                records_allowed=i + 1,
                records_denied=0,
                num_flows=1,
                bytes=10,
            )
            for i in range(groups)
        ),
        notes=(),
    )


@pytest.mark.parametrize("fmt", SIMULATION_FORMATS)
def test_a_large_replay_is_written_in_pieces_of_at_most_piece_rows_rows(fmt: str) -> None:
    result = _many(2 * PIECE_ROWS + 500)
    pieces: list[str] = []
    write_simulation(result, fmt, pieces.append)
    rows_per_piece = [p.count('"reporter"') if fmt.startswith("json") else p.count("api-") for p in pieces]
    assert sum(rows_per_piece) == len(result.rows)
    assert max(rows_per_piece) == PIECE_ROWS
    assert len([n for n in rows_per_piece if n]) == 3


def test_a_cut_table_shows_the_first_groups_sized_to_them_then_the_totals() -> None:
    result = _many(TERMINAL_ROWS + 7)
    pieces: list[str] = []
    written = write_simulation(result, "table", pieces.append, max_rows=TERMINAL_ROWS)
    assert (written.rows, written.shown, written.cut) == (TERMINAL_ROWS + 7, TERMINAL_ROWS, 7)
    lines = "".join(pieces).splitlines()
    assert lines[1].split()[:3] == ["newly-denied", "shop/web-*", "shop/api-00000-*"]
    assert lines[TERMINAL_ROWS].split()[2] == f"shop/api-{TERMINAL_ROWS - 1:05d}-*"
    assert lines[TERMINAL_ROWS + 1 :] == ["", *_totals_lines(result)]
    # Cut at more groups than there are, the table is the whole one.
    assert render_simulation(result, "table") == _whole_table(result)
    whole: list[str] = []
    assert write_simulation(result, "table", whole.append, max_rows=10**6).cut == 0
    assert "".join(whole) == _whole_table(result)
