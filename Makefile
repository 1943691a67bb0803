# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt bench install clean browser promtool screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/fraudstream demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/fraudstream
	$(BIN)/lint-imports

# Debian's Chromium for the dashboard's browser tests (installed with apt when missing).
browser:
	./scripts/install-chromium

# Debian's promtool, which the metrics tests check /metrics with (installed with apt when missing).
promtool:
	./scripts/install-promtool

test: lint browser promtool
	$(BIN)/pytest -q $(PYTEST_ARGS)

# The README's screenshots, taken again by the dashboard's browser tests.
screenshots: $(STAMP) browser
	FRAUDSTREAM_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/http_api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
