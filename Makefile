# MedSynth Studio. `make run` serves the app; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
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

.PHONY: run test lint typecheck benchmark clean

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
	$(PY) scripts/benchmark_export.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

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
	rm -rf $(VENV) var
