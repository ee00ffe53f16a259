"""Run the flowlens command line with a fault point: SIGKILL itself at one step of its N-th commit.

    python -m tests.collect.helpers.harness POINT N -- collect goldmane --address ... --store ...

POINT is where the N-th commit dies:

* ``staged``: its files are written under ``.staging/``, nothing is decided (recovery discards them);
* ``decided``: its ``commit.json`` is written, nothing moved yet (recovery finishes the commit);
* ``moved``: its files are moved in, the manifest not yet replaced (recovery finishes it);
* ``answered``: (``collect serve``) committed, the senders not yet answered.

The library reads no environment: this test-only script sets the store's test-only
``FAULT_HOOK`` (:mod:`flowlens.store.commit`, called at each step of a commit) or wraps the
receiver before it runs the command line, in the same process.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from flowlens.collect import receiver as receiver_module
from flowlens.store import commit as store_commit


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str, nth: int) -> None:
    count = {"n": 0}

    def due() -> bool:
        count["n"] += 1
        return count["n"] == nth

    if point in ("staged", "decided", "moved"):
        # The store calls its test-only FAULT_HOOK at each step of a commit ("moved" after each
        # file moved in); "staged" comes once per commit, so it counts the commits.
        commits = {"n": 0}

        def hook(step: str) -> None:
            if step == "staged":
                commits["n"] += 1
            if step == point and commits["n"] == nth:
                _die()

        store_commit.FAULT_HOOK = hook
    elif point == "answered":
        original_finish = receiver_module.Receiver._finish

        def finish(self: Any, group: list, result: Any, error: Any) -> None:
            if result is not None and due():
                _die()
            original_finish(self, group, result, error)

        receiver_module.Receiver._finish = finish  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown fault point {point!r}")


if __name__ == "__main__":
    point, nth, sep, *args = sys.argv[1:]
    assert sep == "--"
    arm(point, int(nth))
    from flowlens.cli import main

    sys.argv = ["flowlens", *args]
    main()
