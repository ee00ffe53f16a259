"""What each live collector has stored: ``flowlens status`` lists it from the manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flowlens.collect.batches import BatchLog
from flowlens.collect.buckets import BucketPosition
from flowlens.store import Store
from flowlens.store.collectors import collector_positions


@dataclass(frozen=True)
class CollectorStatus:
    """One collector's source and last position, as its last commit recorded them."""

    name: str
    kind: str
    source: str
    committed_at: str
    run: str
    position: str  # for people
    totals: dict[str, int]
    losses: tuple[tuple[int, int], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "committed_at": self.committed_at,
            "run": self.run,
            "position": self.position,
            "totals": dict(sorted(self.totals.items())),
            "losses": [{"from": _iso(a), "to": _iso(b), "seconds": b - a} for a, b in self.losses],
        }


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _describe(recorded: dict[str, Any]) -> tuple[str, tuple[tuple[int, int], ...]]:
    kind = recorded.get("kind")
    if kind == "goldmane":
        position = BucketPosition.from_json(recorded)
        if position.complete_before == 0:
            return "nothing yet", ()
        text = f"every bucket before {_iso(position.complete_before)} stored in full"
        if position.open:
            text += (
                f"; {position.open_flows():,} flow(s) of the bucket from {_iso(max(position.open))} stored"
            )
        return text, tuple(position.losses)
    if kind == "push":
        log = BatchLog.from_json(recorded.get("batches"))
        return f"{len(log):,} recent batch digest(s) remembered against retries", ()
    return "unknown kind of collector", ()


def describe_collectors(store: Store) -> list[CollectorStatus]:
    """Every collector that has committed to ``store``, by name."""
    found = []
    for name, recorded in sorted(collector_positions(store.read_manifest()).items()):
        text, losses = _describe(recorded)
        totals = recorded.get("totals", {})
        found.append(
            CollectorStatus(
                name=name,
                kind=str(recorded.get("kind", "?")),
                source=str(recorded.get("source", "?")),
                committed_at=str(recorded.get("committed_at", "")),
                run=str(recorded.get("run", "")),
                position=text,
                totals={str(k): int(v) for k, v in totals.items()} if isinstance(totals, dict) else {},
                losses=losses,
            )
        )
    return found


def render_collectors(collectors: list[CollectorStatus]) -> str:
    """The lines ``flowlens status`` prints for people after the store's own, one block per collector."""
    lines = []
    for c in collectors:
        lines.append(
            f"collector:    {c.name} ({c.kind}) from {c.source}, last commit {c.committed_at}: "
            f"{c.totals.get('rows', 0):,} rows, {c.totals.get('quarantined', 0):,} quarantined, "
            f"{c.totals.get('duplicates', 0):,} duplicates dropped"
        )
        lines.append(f"  position:   {c.position}")
        for start, end in c.losses:
            lines.append(
                f"  LOST:       {_iso(start)} .. {_iso(end)} ({end - start} s): Goldmane no longer held "
                "them when the collector got to them"
            )
    return "".join(line + "\n" for line in lines)
