# Two entry points: `make quickstart` (install everything, run the main job) and `make test`.
# The CPU build of torch is installed first and pinned, so no later requirement can pull a CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# Elsewhere than our machines, point pip at PyTorch's CPU wheel index, e.g. TORCH_PIP_ARGS="--index-url URL".
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python

.PHONY: install install-test quickstart test lint clean

$(VENV)/.torch-installed:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH)"
	touch $@

install: $(VENV)/.torch-installed
	$(PY) -m pip install --quiet -e .

install-test: $(VENV)/.torch-installed
	$(PY) -m pip install --quiet -e ".[test,flower,hf]"
	# the example plugin (examples/pftlab-example-plugin): its entry points are what tests/test_example_plugin.py checks
	$(PY) -m pip install --quiet --no-deps -e examples/pftlab-example-plugin

quickstart: install
	$(VENV)/bin/pftlab run configs/quickstart.toml

test: install-test
	$(PY) -m pytest

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs
