# The two commands in the README: `make demo` and `make test`.
# Both create the virtual environment themselves (only python3 is needed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# most tests wait on sockets and subprocesses: two workers halve the wall time on two cores
PYTEST_WORKERS ?= 2
# the virtual environment exists and has pip
VENV_READY := $(VENV)/.stayfresh-venv
# stayfresh and its runtime dependencies (all `make demo` needs) ...
DEMO_STAMP := $(VENV)/.stayfresh-demo-installed
# ... or stayfresh with the whole dev toolset (`.[dev]`: pytest, ruff, mypy, peers)
STAMP := $(VENV)/.stayfresh-installed
# pip without chatter: errors only, no version check, no PATH warning
PIP_INSTALL := $(PY) -m pip --quiet --quiet --disable-pip-version-check --no-input install --no-warn-script-location

.PHONY: demo test test-quick lint bench bench-quick clean

# Debian's and Ubuntu's python3 lack ensurepip until python3-venv is installed
# (and installing it needs root): then the venv is made without pip, and pip's
# wheel is fetched from PyPI (checked against PyPI's sha256) and installs itself.
define BOOTSTRAP_PIP
import hashlib, json, os, subprocess, sys, tempfile, urllib.parse, urllib.request
index = "https://pypi.org/pypi/pip/json"
meta = json.load(urllib.request.urlopen(index, timeout=60))
wheel = next(u for u in meta["urls"] if u["packagetype"] == "bdist_wheel")
data = urllib.request.urlopen(urllib.parse.urljoin(index, wheel["url"]), timeout=300).read()
if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
    sys.exit(f"{wheel['url']}: sha256 mismatch")
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, wheel["filename"])
    with open(path, "wb") as f:
        f.write(data)
    subprocess.run([sys.executable, os.path.join(path, "pip"), "install", "--quiet",
                    "--disable-pip-version-check", "--no-warn-script-location", path], check=True)
endef
export BOOTSTRAP_PIP

$(VENV_READY):
	@if $(PY) -m pip --version >/dev/null 2>&1; then :; \
	elif $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
		$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }; \
	else \
		echo "$(PYTHON) has no ensurepip (Debian/Ubuntu: package python3-venv): fetching pip from PyPI"; \
		rm -rf $(VENV); \
		{ $(PYTHON) -m venv --without-pip $(VENV) && $(PY) -c "$$BOOTSTRAP_PIP"; } || { rm -rf $(VENV); \
			echo "could not fetch pip: install python3-venv (or pip) for $(PYTHON) and retry" >&2; exit 1; }; \
	fi
	@touch $@

$(DEMO_STAMP): pyproject.toml | $(VENV_READY)
	@echo "installing stayfresh into $(VENV) ..."
	@$(PIP_INSTALL) -e .
	@touch $@

$(STAMP): pyproject.toml | $(VENV_READY)
	@echo "installing stayfresh and its dev tools into $(VENV) ..."
	@$(PIP_INSTALL) -e '.[dev]'
	@touch $@ $(DEMO_STAMP)

# the real OAuth server the tests use (npm package oidc-provider); without
# node the OIDC tests are skipped locally and fail in CI (CI=true)
tests/oidc/node_modules/.package-lock.json: tests/oidc/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests against oidc-provider will be skipped (they fail in CI)"; fi

demo: $(DEMO_STAMP)
	@$(PY) -m stayfresh.demo

test: $(STAMP) tests/oidc/node_modules/.package-lock.json
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy
	@# pytest exits 5 when it collected no test: that is a failure, not a pass
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# unit and contract tests on SQLite in under a minute: no PostgreSQL, no oidc-provider
# (node), no multi-process or SIGKILL chaos (`make test` runs those too)
QUICK_MARKERS := not slow and not postgres and not oidc

test-quick: $(STAMP)
	@# pytest exits 5 when it collected no test: that is a failure, not a pass
	$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) -m "$(QUICK_MARKERS)" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-quick: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src
	$(PY) -m mypy

bench: $(STAMP) tests/oidc/node_modules/.package-lock.json
	$(PIP_INSTALL) -e '.[dev,bench]'
	$(PY) benchmarks/bench_tokens.py --write
	$(PY) benchmarks/bench_work.py --write
	$(PY) benchmarks/bench_cli.py --write

bench-quick: $(STAMP) tests/oidc/node_modules/.package-lock.json
	$(PIP_INSTALL) -e '.[dev,bench]'
	$(PY) benchmarks/bench_tokens.py --quick
	$(PY) benchmarks/bench_work.py --quick
	$(PY) benchmarks/bench_cli.py --calls 10

clean:
	rm -rf $(VENV) tests/oidc/node_modules .pytest_cache .mypy_cache .ruff_cache
