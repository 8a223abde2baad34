# MedSynth Studio. `make run` serves the app; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# requirements.txt and nothing else: the production configuration's smoke test starts from it.
PROD_VENV := .venv-production
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000

ifneq (,$(wildcard .env))
include .env
export
endif

# The local demo model is needed only when no provider is configured.
ifeq ($(strip $(OPENAI_API_KEY)$(LLM_BASE_URL)),)
RUN_DEPS := $(VENV)/.installed-app $(VENV)/.installed-llm
else
RUN_DEPS := $(VENV)/.installed-app
endif

.PHONY: run test lint typecheck bench benchmark benchmark-code-search benchmark-near-duplicates benchmark-dashboards loadtest smoke-production clean

run: $(RUN_DEPS)
	HOST=$(HOST) PORT=$(PORT) $(PY) scripts/run.py

test: $(VENV)/.installed-dev $(VENV)/.installed-llm chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy generation review medsynth_site

benchmark: $(VENV)/.installed-dev
	$(PY) scripts/bench/export.py --pairs 10000 --every-format-at 10000 --tracemalloc $(BENCHMARK_ARGS)

# The batch form's code autocomplete over the whole catalogue: p50/p95 of 200 searches
# (SQLite in a temporary directory, or the DATABASE_URL database, left as it was).
benchmark-code-search: $(VENV)/.installed-app
	$(PY) scripts/benchmark_code_search.py $(BENCHMARK_ARGS)

# Index 50,000 synthetic pairs for near-duplicates, then time one lookup.
benchmark-near-duplicates: $(VENV)/.installed-dev
	$(PY) scripts/bench_near_duplicates.py $(BENCHMARK_ARGS)

# 50,000 cases seeded with bulk_create, then p50/p95 of every dashboard page and CSV.
# Fewer: make benchmark-dashboards BENCHMARK_ARGS="--cases 5000 --repeat 5"
benchmark-dashboards: $(VENV)/.installed-dev
	$(PY) scripts/benchmark_dashboards.py $(BENCHMARK_ARGS)

# Simulated reviewers against gunicorn on loopback: PostgreSQL (50 users) and SQLite (10 users),
# 60 s each. A short run: make loadtest LOADTEST_ARGS="--duration 10 --postgres-users 5 --sqlite-users 5"
loadtest: $(VENV)/.installed-dev
	$(PY) loadtest/run.py $(LOADTEST_ARGS)

# CI: migrate, gunicorn, a worker and beat from $(PROD_VENV) against PostgreSQL + Redis
# (SMOKE_POSTGRES_URL, SMOKE_REDIS_URL); a small batch against a local test server must finish.
smoke-production: $(VENV)/.installed-dev $(PROD_VENV)/.installed
	$(PY) scripts/smoke_run.py --production --venv $(PROD_VENV)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Rebuilt from scratch whenever requirements.txt changes, so nothing a previous version (or the
# test tools) brought in can hide a missing dependency; pip takes the wheels from its cache.
$(PROD_VENV)/.installed: requirements.txt
	rm -rf $(PROD_VENV)
	$(PYTHON) -m venv $(PROD_VENV)
	$(PROD_VENV)/bin/python -m pip --disable-pip-version-check -q install -r requirements.txt
	touch $@

$(VENV)/.installed-app: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	touch $(VENV)/.installed-app $@

# Building llama-cpp-python compiles llama.cpp: about 4 minutes on 2 cores, once.
$(VENV)/.installed-llm: requirements-local-llm.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-local-llm.txt
	touch $@

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) $(PROD_VENV) var

# Throughput and scale (docs/PERFORMANCE.md): pipeline utilization at caps 12/26/48 through real
# Celery workers on PostgreSQL + Redis, our CPU per LLM call, planning 10,000 cases, review screens
# at 1,000 / 10,000 cases, export. About 10 minutes on 2 cores; a try-out: make bench BENCH_ARGS=--quick
bench: $(VENV)/.installed-dev
	$(PY) scripts/bench/run.py $(BENCH_ARGS)
