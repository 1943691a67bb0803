# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What the demo and the server need (.installed), and the test stack on top of it (.installed-test).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint fmt bench install clean browser promtool screenshots warmup

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The package's own modules are byte-compiled here too: an editable install leaves them to Python,
# which does not keep its compiled modules where PYTHONDONTWRITEBYTECODE is set, and then compiles
# them again at every start.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing fraudstream and the libraries it runs on into $(VENV) (about half a minute)"
	$(BIN)/python -m pip install --progress-bar off -e .
	$(BIN)/python -m compileall -q src/fraudstream
	$(BIN)/fraudstream warmup
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

# Compile the engine's kernels into the kernel cache (a no-op when they are there).
warmup: $(STAMP)
	$(BIN)/fraudstream warmup

demo: $(STAMP)
	$(BIN)/fraudstream demo

lint: $(TEST_STAMP)
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
screenshots: $(TEST_STAMP) browser
	FRAUDSTREAM_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e

fmt: $(TEST_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/http_api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
