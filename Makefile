# nexus_sse: `make run` serves the demo site, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The newest Python >= 3.12 on this machine (Django 6.x), else python3 (which gets Django 5.2).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON ?= $(shell for c in $(PYENV_ROOT)/versions/3.13.*/bin/python3.13 $(PYENV_ROOT)/versions/3.12.*/bin/python3.12 \
             $$(command -v python3.13) $$(command -v python3.12); do \
             [ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$c; exit; }; \
           done; command -v python3)
# The compatibility environment: Python 3.11 with Django 5.2 LTS.
PYTHON_COMPAT ?= $(shell for c in $(PYENV_ROOT)/versions/3.11.*/bin/python3.11 $$(command -v python3.11) $$(command -v python3); do \
             [ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null && { echo $$c; exit; }; \
           done)

VENV := .venv
VENV_COMPAT := .venv-django52
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run test test-main test-compat system-deps venv bench bench-quick fuzz lint clean

help:
	@echo "make run    - install, migrate, sync demo workflows, serve http://$(HOST):$(PORT) (daphne)"
	@echo "make test   - lint, then install what the tests need and run the suite (Django 6.x and Django 5.2)"
	@echo "make lint   - ruff check, ruff format --check, mypy (part of make test)"
	@echo "make test-fast - the in-process and unit tests only, on Django 6.x (< 1 min; no servers)"
	@echo "make bench  - run the benchmark suite (< 15 min; results in benchmarks/results/, table in README)"
	@echo "make bench-quick - executions/s and time to first event only (< 2 min)"
	@echo "make fuzz   - fuzz the API from its OpenAPI schema with schemathesis (no 500s allowed)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

$(VENV_COMPAT)/.installed: pyproject.toml
	@[ -n "$(PYTHON_COMPAT)" ] || { echo "no Python 3.11 found for the Django 5.2 environment"; exit 1; }
	$(PYTHON_COMPAT) -m venv $(VENV_COMPAT)
	$(VENV_COMPAT)/bin/pip install -q --upgrade pip
	$(VENV_COMPAT)/bin/pip install -q -e '.[dev]' 'Django>=5.2,<5.3'
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py nexus_sse_sync
	$(VENV)/bin/python manage.py runserver $(HOST):$(PORT)

test: system-deps lint test-main test-compat

# Debian's Chromium (browser tests; Playwright cannot download its own browser here) and nginx (the
# deployment test). Needs root; without them those tests skip (and fail under CI=true, which must run them).
# Redis and PostgreSQL are expected to be running already (they are on this machine kind and on CI).
SYSTEM_PACKAGES := chromium nginx
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  command -v $$p >/dev/null 2>&1 || [ -x /usr/sbin/$$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; } \
	  || echo "warning: could not install$$missing; the tests needing them will skip (or fail under CI)"; fi

test-main: $(VENV)/.installed
	$(VENV)/bin/python -c 'import django, sys; print("== Python", sys.version.split()[0], "Django", django.get_version())'
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The Django 5.2 suite runs on PostgreSQL (127.0.0.1:5432, user postgres; PGHOST/PGUSER override), the
# Django 6 suite on SQLite. Without PostgreSQL the 5.2 suite falls back to SQLite, except under CI=true.
PG_CHECK := import os, psycopg; psycopg.connect(host=os.environ.get("PGHOST", "127.0.0.1"), user=os.environ.get("PGUSER", "postgres"), dbname="postgres", connect_timeout=3).close()
test-compat: $(VENV_COMPAT)/.installed
	$(VENV_COMPAT)/bin/python -c 'import django, sys; print("== Python", sys.version.split()[0], "Django", django.get_version())'
	@if $(VENV_COMPAT)/bin/python -c '$(PG_CHECK)' 2>/dev/null; then \
	  echo "== on PostgreSQL"; NEXUS_DB=postgres $(VENV_COMPAT)/bin/python -m pytest $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then echo "PostgreSQL is not reachable at 127.0.0.1:5432: CI must test on it"; exit 1; \
	else echo "warning: PostgreSQL not reachable: the Django 5.2 suite runs on SQLite (start PostgreSQL to cover it)"; \
	  $(VENV_COMPAT)/bin/python -m pytest $(PYTEST_ARGS); fi

# The benchmark suite (benchmarks/run.py; < 15 minutes, venvs for sse-starlette and kailash-nexus included):
# writes benchmarks/results/latest.{md,json} and the README's table. bench-quick: < 2 minutes, quick.{md,json}.
# BENCH_ARGS passes options (e.g. BENCH_ARGS='--only nexus_sse --repeats 1').
BENCH_ARGS ?=
bench: export NEXUS_BENCH_STARTED := $(shell date +%s)
bench:
	$(MAKE) --no-print-directory $(VENV)/.installed
	$(VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

bench-quick: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/run.py --quick $(BENCH_ARGS)

FUZZ_PORT ?= 8091
fuzz: $(VENV)/.installed
	$(VENV)/bin/pip install -q schemathesis
	rm -f /tmp/nexus-fuzz.sqlite3*
	export DJANGO_SETTINGS_MODULE=tests.settings NEXUS_TEST_SERVER=1 NEXUS_TEST_DB_FILE=/tmp/nexus-fuzz.sqlite3; \
	$(VENV)/bin/python manage.py migrate -v0 && \
	{ $(VENV)/bin/uvicorn project.asgi:application --port $(FUZZ_PORT) --lifespan off --log-level warning & \
	  pid=$$!; trap "kill $$pid" EXIT; \
	  $(VENV)/bin/schemathesis run http://127.0.0.1:$(FUZZ_PORT)/api/schema/ --wait-for-schema 30 \
	    --checks not_a_server_error --max-time $${FUZZ_SECONDS:-90}; }

# The gates: ruff's rule set and formatter (pyproject.toml [tool.ruff]), mypy with the Django and DRF
# stubs over nexus_sse/ ([tool.mypy]). Part of `make test`.
LINT_PATHS := nexus_sse tests project benchmarks manage.py
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# The in-process and unit tests only (no server, command or Redis: the `live` marker, tests/conftest.py).
.PHONY: test-fast
test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -m "not live" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VENV_COMPAT) .test-db.sqlite3* db.sqlite3*
