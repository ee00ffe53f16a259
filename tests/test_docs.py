"""The documentation: the MkDocs site builds strictly and offline, and the README's links resolve.

The site is built once per test session with the installed ``mkdocs`` (the ``dev`` extra), into a
temporary folder, as ``mkdocs build --strict`` would be run by hand.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from flowlens.engine import load_queries
from flowlens.schema import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

# Inline Markdown links and images: [text](target) and ![alt](target "title").
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = ("http://", "https://", "mailto:", "//")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The built site and everything mkdocs logged while building it."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about MkDocs 2.0
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--clean",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    return out, log


class _Loads(HTMLParser):
    """What a page loads by itself: scripts, stylesheets, images, frames (not the links a reader
    may follow)."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and values.get("src"):
            self.loads.append(values["src"] or "")
        if tag == "link" and values.get("href") and values.get("rel") != "canonical":
            self.loads.append(values["href"] or "")


def _readme_targets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [m.group(1) for m in _LINK.finditer(text)]


@pytest.mark.slow
def test_the_documentation_site_builds_in_strict_mode_without_a_warning(site: tuple[Path, str]) -> None:
    out, log = site
    assert "WARNING" not in log, log
    for page in (
        "index.html",
        "getting-started.html",
        "install.html",
        "architecture.html",
        "policy/index.html",
        "policy/rulebook.html",
        "policy/selectors.html",
    ):
        assert (out / page).is_file(), page
    assert (out / "report-screenshot.png").is_file()


@pytest.mark.slow
def test_the_built_pages_load_nothing_from_the_internet(site: tuple[Path, str]) -> None:
    out, _ = site
    pages = sorted(out.rglob("*.html"))
    assert len(pages) >= 20
    remote = []
    for page in pages:
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8"))
        remote += [f"{page.relative_to(out)}: {url}" for url in parser.loads if url.startswith(_EXTERNAL)]
    assert remote == []


@pytest.mark.slow
def test_the_architecture_diagram_uses_the_mermaid_served_with_the_site(site: tuple[Path, str]) -> None:
    # Material fetches Mermaid from a CDN unless a `mermaid` is already on the page.
    out, _ = site
    parser = _Loads()
    page = (out / "architecture.html").read_text(encoding="utf-8")
    parser.feed(page)
    assert 'class="mermaid"' in page
    assert "assets/javascripts/mermaid.min.js" in parser.loads
    assert (out / "assets/javascripts/mermaid.min.js").stat().st_size > 1_000_000


def test_every_relative_link_in_the_readme_resolves_to_a_file() -> None:
    targets = _readme_targets()
    local = [t for t in targets if not t.startswith(_EXTERNAL) and not t.startswith("#")]
    assert "docs/index.md" in local and "docs/report-screenshot.png" in local
    missing = [t for t in local if not (ROOT / t.split("#", 1)[0]).is_file()]
    assert missing == []


def test_the_readme_stays_an_introduction_of_at_most_250_lines() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_the_readme_keeps_the_two_commands_that_ci_and_newcomers_run() -> None:
    text = README.read_text(encoding="utf-8")
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/flowlens demo\n" in text
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest\n" in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/pytest" in ci


def test_the_schema_page_names_every_column() -> None:
    page = (DOCS / "schema.md").read_text(encoding="utf-8")
    assert [c.name for c in COLUMNS if f"`{c.name}`" not in page] == []


def test_the_queries_page_names_every_query_that_flowlens_queries_lists() -> None:
    page = (DOCS / "queries.md").read_text(encoding="utf-8")
    listed = [spec.name for spec in load_queries().values() if not spec.requires]
    assert len(listed) >= 7
    assert [name for name in listed if f"`{name}`" not in page] == []
