"""Selector matching speed: compiled closures against a tree-walking evaluator, in the same run.

Usage: .venv/bin/python bench/bench_selector.py [--matches N]

Prints matches per second for a set of realistic policy selectors (the kind Felix builds for
Kubernetes and Calico policies) over endpoint label sets, for:
  * baseline: a plain recursive evaluator that dispatches on the node type (what a straightforward
    AST walk costs);
  * flowlens: ``Selector.matches`` (each node compiled once into a closure);
and the ratio between them, plus the cost of ``parse_selector`` uncached and cached.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping

from flowlens.policy.selector import (
    All,
    And,
    Contains,
    EndsWith,
    Eq,
    Global,
    Has,
    In,
    Ne,
    Not,
    NotIn,
    Or,
    Selector,
    StartsWith,
    parse_selector,
)

SELECTORS = [
    "projectcalico.org/orchestrator == 'k8s' && app == 'web'",
    "(projectcalico.org/namespace == 'shop') && (projectcalico.org/orchestrator == 'k8s' && app in {'api', 'web'})",
    "has(pcns.team) && pcns.env != 'dev' || global()",
    "tier not in {'db', 'cache'} && !has(legacy)",
    "app starts with 'pay' && version ends with '-stable' || role contains 'edge'",
    "projectcalico.org/serviceaccount in {'frontend', 'checkout'} && pcsa.projectcalico.org/name != 'default'",
    "all()",
]


def walk(sel: Selector, labels: Mapping[str, str]) -> bool:
    if isinstance(sel, All | Global):
        return True
    if isinstance(sel, Has):
        return sel.label in labels
    if isinstance(sel, Not):
        return not walk(sel.operand, labels)
    if isinstance(sel, And):
        return all(walk(op, labels) for op in sel.operands)
    if isinstance(sel, Or):
        return any(walk(op, labels) for op in sel.operands)
    if isinstance(sel, Eq):
        return labels.get(sel.label) == sel.value
    if isinstance(sel, Ne):
        return labels.get(sel.label) != sel.value
    if isinstance(sel, In):
        return sel.label in labels and labels[sel.label] in sel.values
    if isinstance(sel, NotIn):
        return sel.label not in labels or labels[sel.label] not in sel.values
    value = labels.get(sel.label)  # type: ignore[attr-defined]
    if value is None:
        return False
    if isinstance(sel, Contains):
        return sel.value in value
    if isinstance(sel, StartsWith):
        return value.startswith(sel.value)
    if isinstance(sel, EndsWith):
        return value.endswith(sel.value)
    raise AssertionError(sel)


def label_sets(count: int) -> list[dict[str, str]]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        labels = {
            "projectcalico.org/orchestrator": "k8s",
            "projectcalico.org/namespace": rng.choice(["shop", "payments", "kube-system"]),
            "projectcalico.org/serviceaccount": rng.choice(["frontend", "checkout", "default"]),
            "app": rng.choice(["web", "api", "payments", "db"]),
            "pcns.env": rng.choice(["prod", "dev"]),
            "version": rng.choice(["1.2-stable", "2.0-rc"]),
        }
        if i % 3 == 0:
            labels["pcns.team"] = "core"
        if i % 5 == 0:
            labels["legacy"] = "true"
        out.append(labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--matches", type=int, default=1_000_000, help="selector evaluations per variant")
    args = parser.parse_args()

    selectors = [parse_selector(text) for text in SELECTORS]
    labels = label_sets(200)
    rounds = max(1, args.matches // (len(selectors) * len(labels)))
    total = rounds * len(selectors) * len(labels)

    # Both variants must agree before their speed means anything.
    for sel in selectors:
        for lab in labels:
            assert sel.matches(lab) == walk(sel, lab), (str(sel), lab)

    start = time.perf_counter()
    hits = 0
    for _ in range(rounds):
        for sel in selectors:
            for lab in labels:
                hits += walk(sel, lab)
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    compiled_hits = 0
    for _ in range(rounds):
        for sel in selectors:
            matches = sel.matches
            for lab in labels:
                compiled_hits += matches(lab)
    compiled = time.perf_counter() - start
    assert hits == compiled_hits

    parse_selector.cache_clear()
    start = time.perf_counter()
    parse_rounds = 200
    for _ in range(parse_rounds):
        parse_selector.cache_clear()
        for text in SELECTORS:
            parse_selector(text)
    uncached = (time.perf_counter() - start) / (parse_rounds * len(SELECTORS))
    start = time.perf_counter()
    for _ in range(parse_rounds * 50):
        for text in SELECTORS:
            parse_selector(text)
    cached = (time.perf_counter() - start) / (parse_rounds * 50 * len(SELECTORS))

    print(f"evaluations per variant: {total:,}")
    print(f"baseline tree walk:   {total / baseline:>12,.0f} matches/s  ({baseline:.2f} s)")
    print(f"flowlens compiled:    {total / compiled:>12,.0f} matches/s  ({compiled:.2f} s)")
    print(f"speed-up vs baseline: {baseline / compiled:.2f}x")
    print(
        f"parse_selector uncached: {uncached * 1e6:.1f} µs/selector; cached: {cached * 1e6:.2f} µs/selector"
    )


if __name__ == "__main__":
    main()
