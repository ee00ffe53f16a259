"""CLI commands: demo (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("version")
    def version_cmd() -> None:
        """Print the flowlens version."""
        from flowlens import __version__

        typer.echo(__version__)
