"""Run the flowlens command line with a fault point: SIGKILL itself at one step of its N-th commit.

    python -m tests.collect.helpers.harness POINT N -- collect goldmane --address ... --store ...

POINT is where the N-th commit dies:

* ``staged``: its files are written under ``.staging/``, nothing is decided (recovery discards them);
* ``decided``: its ``commit.json`` is written, nothing moved yet (recovery finishes the commit);
* ``moved``: its files are moved in, the manifest not yet replaced (recovery finishes it);
* ``answered``: (``collect serve``) committed, the senders not yet answered.

The library reads no environment and has no fault points of its own: this test-only script
wraps the store's commit functions before it runs the command line, in the same process.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
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

    if point == "staged":
        original = store_commit.StoreWriter.commit

        def commit(self: Any, stage: Path, manifest: dict) -> Any:
            if due():
                _die()
            return original(self, stage, manifest)

        store_commit.StoreWriter.commit = commit  # type: ignore[method-assign]
    elif point == "decided":
        original_apply = store_commit.apply_commit

        def apply_commit(store: Any, stage: Path, plan: dict) -> None:
            if due():
                _die()
            original_apply(store, stage, plan)

        store_commit.apply_commit = apply_commit
    elif point == "moved":
        original_write = store_commit.write_atomic

        def write_atomic(path: Path, data: bytes) -> None:
            if path.name == "manifest.json" and due():
                _die()
            original_write(path, data)

        store_commit.write_atomic = write_atomic
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
