"""Test-wide settings: under CI, hypothesis draws the same examples on every run, so a
submission's result does not depend on luck (locally it keeps exploring new examples)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
