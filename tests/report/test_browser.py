"""The HTML report in a real browser: headless Chromium renders it with no console messages and
no network requests of its own, and takes a screenshot."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flowlens.report import generate, resolve_window
from flowlens.store import Store
from tests.report.helpers import shop_store

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
IN_CI = os.environ.get("CI", "").lower() == "true"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
# Chromium's own background requests (time, updates, accounts) show up in the net log even with
# background networking off; they are not the page's.
BROWSER_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com)$")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI=true but Chromium is missing: apt-get install -y chromium")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return CHROMIUM


def _run(chromium: str, page: Path, work: Path, *extra: str) -> tuple[str, str, list[str]]:
    """Open ``page`` with a fresh profile; return (stdout, stderr, URLs the net log saw)."""
    profile = work / f"profile-{len(list(work.glob('profile-*')))}"
    netlog = profile.with_suffix(".netlog.json")
    # A fixed argument list, no shell.
    proc = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--log-net-log={netlog}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    urls = re.findall(r'"url":"([^"]*)"', netlog.read_text()) if netlog.exists() else []
    return proc.stdout, proc.stderr, urls


def _page_problems(stderr: str, urls: list[str]) -> list[str]:
    problems = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and not BROWSER_HOSTS.search(parts.hostname or ""):
            problems.append(f"network request: {url}")
    return problems


def test_the_checks_catch_a_console_error_and_a_network_fetch(chromium: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><p>x</p><script>console.error("boom")</script><img src="http://192.0.2.1/x.png">'
    )
    _, stderr, urls = _run(chromium, bad, tmp_path, "--dump-dom")
    problems = _page_problems(stderr, urls)
    assert any('"boom"' in p for p in problems)
    assert any("192.0.2.1" in p for p in problems)


def test_the_report_renders_in_chromium_without_errors_and_is_screenshotted(
    chromium: str, tmp_path: Path
) -> None:
    shop_store(tmp_path / "store")
    window = resolve_window(now=dt.datetime(2026, 11, 26, 3, tzinfo=dt.UTC), window="day", at="2026-11-25")
    out = generate(Store(tmp_path / "store"), window, tmp_path / "reports")
    page = out.folder / "report.html"

    dom, stderr, urls = _run(chromium, page, tmp_path, "--dump-dom")
    assert _page_problems(stderr, urls) == []
    assert "Segmentation coverage" in dom
    assert dom.count("<svg") == 3
    assert "backend/api-6c7d8e9f0-*" in dom

    shot = tmp_path / "report.png"
    _, stderr, urls = _run(chromium, page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert _page_problems(stderr, urls) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a blank page is a few kB
    target = os.environ.get("FLOWLENS_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / "report.png")
