# flowlens developer commands. `make check` is the quality gate: format, lint, types, tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install dev demo test check fmt lint type bench proto dist image clean docs-gen

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/flowlens demo

test: dev
	$(BIN)/pytest

fmt: dev
	$(BIN)/ruff format flowlens tests bench

lint: dev
	$(BIN)/ruff check flowlens tests bench tools

type: dev
	$(BIN)/mypy

check: dev
	$(BIN)/ruff format --check flowlens tests bench tools
	$(BIN)/ruff check flowlens tests bench tools
	$(BIN)/mypy
	$(BIN)/pytest

# the documentation written from code (docs/exit-codes.md from flowlens/errors.py)
docs-gen: install
	$(BIN)/python -m flowlens.cli.gendocs

bench: install
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_query.py
	$(BIN)/python bench/bench_simulate.py
	$(BIN)/python bench/bench_suggest.py
	$(BIN)/python bench/bench_report.py
	$(BIN)/python bench/bench_demo_sample.py
	$(BIN)/python bench/bench_collect.py

# regenerate the Goldmane gRPC modules in flowlens/collect/proto/ (pinned grpcio-tools, dev extra)
proto: dev
	$(BIN)/python tools/generate_proto.py

# the release files (wheel and sdist) in dist/, checked as PyPI would
dist: dev
	rm -rf dist/flowlens-*
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/flowlens-*

# the container image as an OCI archive in dist/image/ (root; Debian's mmdebstrap and umoci)
image:
	deploy/image/build --out dist/image

clean:
	rm -rf .flowlens reports/*/ build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
