"""CLI commands: ingest (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("schema")
    def schema_cmd() -> None:
        """Print the canonical flow schema: every column, its type and meaning."""
        from flowlens.schema import describe

        for name, type_, doc in describe():
            typer.echo(f"{name}\t{type_}\t{doc}")
