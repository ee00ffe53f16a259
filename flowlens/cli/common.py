"""Options and helpers shared by the command modules: where the store is, the config file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flowlens.config import Config, find_config, load_config
from flowlens.store import DEFAULT_STORE, Store
from flowlens.store.lifecycle import Lifecycle

STORE_HELP = (
    "Store folder. Default: $FLOWLENS_STORE, else 'store' in ./flowlens.yaml (or $FLOWLENS_CONFIG), "
    f"else {DEFAULT_STORE}."
)
StoreOpt = Annotated[Path | None, typer.Option("--store", "-s", help=STORE_HELP, show_default=False)]


def config() -> Config:
    """The config named by $FLOWLENS_CONFIG, else ./flowlens.yaml, else an empty one."""
    named = os.environ.get("FLOWLENS_CONFIG")
    if named:
        return load_config(Path(named))
    found = find_config(Path.cwd())
    return load_config(found) if found else Config()


def resolve_store(option: Path | None) -> Store:
    """--store, then $FLOWLENS_STORE, then the config file, then the default."""
    if option is not None:
        return Store(option)
    env = os.environ.get("FLOWLENS_STORE")
    if env:
        return Store(Path(env))
    cfg = config()
    if cfg.store is not None:
        return Store(cfg.store)
    return Store(Path(DEFAULT_STORE))


def err(message: str) -> None:
    """A line for people, on stderr."""
    typer.echo(message, err=True)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def lifecycle_of(cfg: Config) -> Lifecycle:
    """What ingest does to the store after each run, from ``retention:`` and ``compact_files:``."""
    default = Lifecycle()
    return Lifecycle(
        compact_files=default.compact_files if cfg.compact_files is None else cfg.compact_files,
        retention_days=cfg.retention_days,
    )


def human_bytes(n: float) -> str:
    """A size for people: 952.6 KB."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
