"""Regenerate the documentation written from code: ``python -m flowlens.cli.gendocs``.

Today that is ``docs/exit-codes.md``, from the exit-code table in :mod:`flowlens.errors` (the
same table ``flowlens --help`` prints). ``--check`` writes nothing and exits 1 when a page is out
of date, for scripts and CI; the test suite checks the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from flowlens.errors import exit_codes_markdown

#: Each generated page, relative to the docs folder, and the function that writes its text.
PAGES: dict[str, Callable[[], str]] = {"exit-codes.md": exit_codes_markdown}


def stale_pages(docs: Path) -> list[Path]:
    """The generated pages under ``docs`` whose text differs from what the code generates."""
    stale = []
    for name, generate in PAGES.items():
        path = docs / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != generate():
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowlens.cli.gendocs", description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="the docs folder (default: docs)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    if not args.docs.is_dir():
        print(f"gendocs: no docs folder at {args.docs}; run it from the repository's top", file=sys.stderr)
        return 2
    stale = stale_pages(args.docs)
    for path in stale:
        if args.check:
            print(f"gendocs: {path} is out of date; run python -m flowlens.cli.gendocs", file=sys.stderr)
        else:
            path.write_text(PAGES[path.name](), encoding="utf-8")
            print(f"gendocs: wrote {path}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
