"""Which workload pairs the proof's closure checks (:func:`pairs_to_check`): all of them while
they are few, else every observed pair and a fixed pseudo-random sample of the others, so the
same store always checks the same pairs (:mod:`flowlens.suggest.proof`)."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Collection, Iterable, Sequence

from flowlens.suggest.observed import Workload


def pairs_to_check(
    workloads: Sequence[Workload],
    targets: set[str],
    observed: Collection[tuple[object, object]],
    max_pairs: int,
) -> tuple[int, list[tuple[Workload, Workload]]]:
    """How many ordered pairs of ``workloads`` (sorted) have a side in ``targets``, and the pairs
    the closure checks: all of them when there are at most ``max_pairs``, else every ``observed``
    pair and then a fixed pseudo-random sample of the others (the smallest SHA-256 of the pair's
    text), so the same store always checks the same pairs; in pair order.

    The same pairs as sorting every pair by (not observed, digest, pair order) and keeping the
    first ``max_pairs``, without making or sorting every pair (a year has 100,000s of them).
    """
    n = len(workloads)
    inside = [w.namespace in targets for w in workloads]
    outside = inside.count(False)
    len_all = n * (n - 1) - outside * (outside - 1)
    if len_all <= max_pairs:
        return len_all, [
            (a, b)
            for i, a in enumerate(workloads)
            for j, b in enumerate(workloads)
            if i != j and (inside[i] or inside[j])
        ]
    index = {w: i for i, w in enumerate(workloads)}
    seen = {
        (index[a], index[b])
        for a, b in observed
        if isinstance(a, Workload) and isinstance(b, Workload) and a in index and b in index
    }
    seen = {(i, j) for i, j in seen if i != j and (inside[i] or inside[j])}
    text = [f"{w.namespace}|{w.selector}" for w in workloads]
    # Each workload's part of the key hashed once, not once per pair it is in.
    heads = [hashlib.sha256(f"{t}|".encode()) for t in text]
    tails = [t.encode() for t in text]

    def keyed(pairs: Iterable[tuple[int, int]]) -> list[tuple[bytes, int, int]]:
        out = []
        for i, j in pairs:
            h = heads[i].copy()
            h.update(tails[j])
            out.append((h.digest(), i, j))
        return out

    if len(seen) >= max_pairs:
        chosen = sorted(keyed(seen))[:max_pairs]
    else:
        others = (
            (i, j)
            for i in range(n)
            for j in range(n)
            if i != j and (inside[i] or inside[j]) and (i, j) not in seen
        )
        chosen = [(b"", i, j) for i, j in seen] + heapq.nsmallest(max_pairs - len(seen), keyed(others))
    return len_all, sorted((workloads[i], workloads[j]) for _, i, j in chosen)
