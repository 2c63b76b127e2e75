# The two commands of the README: `make run` and `make test`. Everything else is set up on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit lint bench package clean help

help:
	@echo "make run      start Azurite and the app on http://localhost:7071 (creates everything it needs)"
	@echo "make test     install what the tests need, lint (ruff, mypy) and run the whole suite"
	@echo "make test-unit  run only the tests of pure code (tests/unit/), in seconds, without Azurite"
	@echo "make lint     ruff (lint) and mypy (strict on handlers/core), as make test runs them first"
	@echo "make bench    run the benchmarks and print the table"
	@echo "make package  build dist/app.zip for az functionapp deployment source config-zip"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: $(STAMP) node_modules/.installed
	$(BIN)/hookops run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Two pytest-xdist workers, a test file each at a time (a file's module fixtures, such as `bench --quick` or
# checkov's venv, run once), in the order tests/conftest.py gives (the longest files first); each worker has its
# own session Azurite on free ports. PYTEST_WORKERS=0 runs in one process, as a targeted run may want.
PYTEST_WORKERS ?= 2
test: lint $(STAMP) node_modules/.installed
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: $(STAMP) node_modules/.installed
	$(BIN)/python -m bench

package: $(STAMP)
	$(BIN)/python -m hookops.package

clean:
	rm -rf $(VENV) .venv-* node_modules .azurite dist .pytest_cache
