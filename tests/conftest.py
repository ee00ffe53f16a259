"""Test-wide settings.

* Under CI, hypothesis draws the same examples on every run, so a submission's result does not
  depend on luck (locally it keeps exploring new examples).
* With pytest-xdist installed (the ``dev`` extra), the suite and folders of it run on every
  core: ``-n auto`` unless the command line says ``-n``, or names only test files or tests
  (``pytest tests/test_docs.py``, ``pytest tests/x.py::test_y``), which start faster in one
  process. ``--dist loadscope`` keeps each module on one worker, so that a module's expensive
  fixture (the container image, the wheel, the docs site) is built once. ``pytest -n 0`` runs in
  one process (so does ``--pdb``).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return  # no xdist, or this is one of its workers
    if getattr(config.option, "numprocesses", None) is not None:
        return  # the command line chose
    named = [arg.split("::")[0] for arg in config.args]
    if named and all(os.path.isfile(path) for path in named):
        return
    config.option.numprocesses = "auto"
    if config.option.dist == "no":
        config.option.dist = "loadscope"
