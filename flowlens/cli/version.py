"""CLI command ``flowlens version``: flowlens' version and those of the engines it runs with.

The versions come from :func:`flowlens.runtime_versions`. Text for people (one per line, name
first), ``--json`` for scripts.
"""

from __future__ import annotations

import json

import typer

from flowlens.cli.common import JsonOpt


def register(app: typer.Typer) -> None:
    """Add this module's command to ``app``."""

    @app.command("version")
    def version_cmd(as_json: JsonOpt = False) -> None:
        """Print the versions of flowlens, Python, DuckDB and pyarrow (one per line, name first)."""
        from flowlens import runtime_versions

        versions = runtime_versions()
        if as_json:
            typer.echo(json.dumps(versions, sort_keys=True))
        else:
            for name, value in versions.items():
                typer.echo(f"{name} {value}")
