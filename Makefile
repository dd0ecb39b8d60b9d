# The two commands in the README: `make demo` and `make test`.
# Both create the virtual environment themselves (only python3 is needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stayfresh-installed

.PHONY: demo test lint bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the real OAuth server the tests use (npm package oidc-provider); without
# node the OIDC tests are skipped locally and fail in CI (CI=true)
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests against oidc-provider will be skipped (they fail in CI)"; fi

demo: $(STAMP)
	$(PY) -m stayfresh.demo

test: $(STAMP) tests/oidc/node_modules/.package-lock.json
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src
	$(PY) -m mypy

bench: $(STAMP) tests/oidc/node_modules/.package-lock.json
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/bench_tokens.py --write
	$(PY) benchmarks/bench_work.py --write

bench-quick: $(STAMP) tests/oidc/node_modules/.package-lock.json
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/bench_tokens.py --quick
	$(PY) benchmarks/bench_work.py --quick

clean:
	rm -rf $(VENV) tests/oidc/node_modules .pytest_cache .mypy_cache .ruff_cache
