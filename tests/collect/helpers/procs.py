"""A flowlens collector in a subprocess of the test: started (optionally under the fault-point
harness), its JSON log lines read as they come, stopped with SIGTERM or killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


class Collector:
    def __init__(self, args: list[str], fault: tuple[str, int] | None = None) -> None:
        prefix = (
            [sys.executable, "-m", "tests.collect.helpers.harness", fault[0], str(fault[1]), "--"]
            if fault
            else [
                sys.executable,
                "-m",
                "flowlens",
            ]
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*prefix, *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.events: list[dict[str, Any]] = []
        self.text: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.text.append(line)
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def event(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """The first log event called ``name`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if e.get("event") == name:
                    return e
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {name!r} event; stderr:\n" + "\n".join(self.text[-30:]))

    def count(self, name: str) -> int:
        return sum(1 for e in list(self.events) if e.get("event") == name)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._reader.join(5)

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def goldmane_args(
    address: str, pki: Any, store: Path, *, commit_every: float, commit_flows: int
) -> list[str]:
    """``flowlens collect goldmane`` against a test Goldmane (certificates of ``pki``)."""
    return [
        "collect",
        "goldmane",
        "--address",
        address,
        "--ca",
        str(pki.ca),
        "--cert",
        str(pki.client_cert),
        "--key",
        str(pki.client_key),
        "--server-name",
        "localhost",
        "--store",
        str(store),
        "--listen",
        "127.0.0.1:0",
        "--commit-every",
        str(commit_every),
        "--commit-flows",
        str(commit_flows),
    ]
