"""CLI command ``flowlens version``: flowlens' version and those of the engines it runs with.

A bug report needs more than flowlens' own number: DuckDB parses and queries, pyarrow writes the
store, and both change behaviour between releases. Text for people, ``--json`` for scripts.
"""

from __future__ import annotations

import json
import platform
from typing import Annotated

import typer


def runtime_versions() -> dict[str, str]:
    """flowlens, Python, DuckDB and pyarrow versions, as this process has them loaded."""
    import duckdb
    import pyarrow

    from flowlens import __version__

    return {
        "flowlens": __version__,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
    }


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""

    @app.command("version")
    def version_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
    ) -> None:
        """Print the versions of flowlens, Python, DuckDB and pyarrow (one per line, name first)."""
        versions = runtime_versions()
        if as_json:
            typer.echo(json.dumps(versions, sort_keys=True))
        else:
            for name, value in versions.items():
                typer.echo(f"{name} {value}")
