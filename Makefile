# labqueue workbook. A fresh clone needs only Python 3.11+ and make (or an active conda env):
#   make loadtest   set up, run the load test on an embedded Redis, write graphs
#   make test       set up, lint, type-check, run the whole test suite (before pushing; CI)
#   make test-fast  the suite without the slow tests, for the edit-test loop
# Every target sets up first (a venv in .venv, or the active conda env), so no step is missed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# An active conda env (not base) is used as it is; otherwise a venv in .venv.
ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
  PY := $(CONDA_PREFIX)/bin/python
  STAMP := $(CONDA_PREFIX)/.labqueue-setup-stamp
else
  PY := .venv/bin/python
  STAMP := .venv/.setup-stamp
endif
BASE_PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
  command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  2>/dev/null && { echo $$p; break; }; done)

.PHONY: help setup test test-fast test-floor lint format store loadtest bench notebooks lab clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv (or use the active conda env) and install everything

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  if [ -z "$(BASE_PYTHON)" ]; then echo "labqueue needs Python 3.11 or newer on PATH (python3.11, python3.12, ...), or an active conda env: conda env create -f environment.yml && conda activate labqueue" >&2; exit 1; fi; \
	  echo "==> creating .venv with $(BASE_PYTHON)"; $(BASE_PYTHON) -m venv .venv; fi
	@echo "==> installing labqueue and its dependencies (a minute or two the first time)"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	@touch $(STAMP)
	@echo "==> setup done"

test: setup  ## lint, type-check, then the whole test suite (before you push; CI runs it)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup  ## the suite without the tests marked slow (~3 min on 2 cores): while editing
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# The lowest redis-py and fakeredis that pyproject.toml allows, in a venv of their own.
FLOOR := .venv-floor

test-floor: setup  ## the wire and contract tests on the floor versions of redis-py and fakeredis
	@test -x $(FLOOR)/bin/python || $(PY) -m venv $(FLOOR)
	$(PY) .ci/floors.py > $(FLOOR)/floors.txt
	$(FLOOR)/bin/python -m pip install --quiet --disable-pip-version-check -e . -r $(FLOOR)/floors.txt
	@$(FLOOR)/bin/python -c 'import fakeredis, redis; print(f"==> redis-py {redis.__version__}, fakeredis {fakeredis.__version__}")'
	$(FLOOR)/bin/python -m pytest -p no:cacheprovider tests/test_wire.py tests/test_core_contract.py $(PYTEST_ARGS)

lint: setup  ## ruff check, format check, mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup  ## ruff format and fix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

store: setup  ## the toy store in the foreground: Redis, fake mail and ERP, gunicorn, workers; Ctrl-C stops all (STORE_ARGS=--help)
	$(PY) -m labqueue.demo up $(STORE_ARGS)

loadtest: setup  ## sync vs deferred checkout under Locust, graphs in results/latest (QUICK=1: ~2.5 min; LOADTEST_ARGS=--help)
	$(PY) -m loadtests $(if $(filter-out 0,$(QUICK)),--quick) $(LOADTEST_ARGS)

bench: setup  ## labqueue vs the Redis ceiling, huey, RQ and Dramatiq (BENCH_ARGS=--quick): results/bench/
	$(PY) -m bench.run $(BENCH_ARGS)

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))

notebooks: setup  ## run every notebook top to bottom from its .py pair, save it with outputs
	@for py in $(NOTEBOOKS); do \
	  nb=$${py%.py}.ipynb; start=$$(date +%s); \
	  $(PY) -m jupytext --quiet --to ipynb --update $$py || exit 1; \
	  $(PY) -m jupyter nbconvert --log-level ERROR --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=300 --ExecutePreprocessor.record_timing=False $$nb \
	    || exit 1; \
	  echo "==> $$nb ran in $$(( $$(date +%s) - start )) s"; \
	done

lab: setup  ## JupyterLab on notebooks/ (View > Presentation Mode for the talk)
	$(PY) -m jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

clean:  ## remove the venv and caches (results are kept)
	rm -rf .venv .venv-floor .pytest_cache .ruff_cache .mypy_cache build *.egg-info
