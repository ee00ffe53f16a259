"""When the sample's traffic happens: the daily shape of each schedule (``peak``, ``flat``,
``office``, ``nightly``, ``rare``) per 5-minute slot, and each node's flush second."""

from __future__ import annotations

import math

import numpy as np

from flowlens.sample.model import ClusterModel
from flowlens.sample.records import INTERVAL


def _cycle(schedule: str, minute_of_day: int) -> float:
    hour = minute_of_day / 60.0
    if schedule == "flat":
        return 1.0
    if schedule == "nightly":
        return 1.0 if 60 <= minute_of_day < 180 else 0.0
    if schedule == "office":
        return 1.0 if 480 <= minute_of_day < 1080 else 0.0
    # peak at 14:00 UTC, a quiet night that never quite stops
    if 6.0 <= hour <= 22.0:
        return 0.06 + 0.94 * math.sin(math.pi * (hour - 6.0) / 16.0) ** 1.5
    return 0.06


def node_offsets(model: ClusterModel) -> dict[str, int]:
    """Each node's Felix flushes at its own second within the 5 minutes."""
    return {n.name: (37 + 53 * i) % INTERVAL for i, n in enumerate(model.nodes)}


SLOTS_PER_DAY = 86400 // INTERVAL
#: how often a 'rare' connection happens: the share of intervals it is active in
RARE_SHARE = 0.03


def cycle_table(schedule: str) -> np.ndarray:
    """The traffic factor of a schedule for each 5-minute slot of the day (``rare``: 1, the
    simulation draws when such a connection is active)."""
    if schedule == "rare":
        return np.ones(SLOTS_PER_DAY)
    return np.array([_cycle(schedule, m) for m in range(0, 1440, INTERVAL // 60)])
