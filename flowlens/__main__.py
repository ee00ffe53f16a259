"""``python -m flowlens``."""

from flowlens.cli import console

console()
