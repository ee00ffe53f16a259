"""``python -m flowlens``."""

from flowlens.cli import main

main()
