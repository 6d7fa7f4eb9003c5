# Frontdesk — `make run` starts the whole local stack, `make test` runs the full test suite.
# Both install whatever is missing first (venvs, the LiteLLM router), so a fresh clone needs nothing else.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STATE := .frontdesk
LITELLM_VENV := $(STATE)/litellm-venv
LITELLM_VERSION := 1.106.2
NPM_PREFIX := $(STATE)/npm
AXE_VERSION := 4.10.3
CHROMIUM := /usr/bin/chromium
DOCKER_COMPOSE := /usr/bin/docker-compose
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help install router browser-deps deploy-deps run test test-unit lint bench reliability replay-record services clean

help: ## show this help
	@echo "Frontdesk — control plane for AI agents"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Settings are FRONTDESK_* environment variables; README.md has the table."

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed router ## install the app venv and the LiteLLM router venv

$(LITELLM_VENV)/.installed:
	@mkdir -p $(STATE)
	@test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)'
	@touch $@

router: $(LITELLM_VENV)/.installed ## install the LiteLLM proxy into its own venv (.frontdesk/litellm-venv)

# The browser tests drive Debian's chromium (Playwright cannot download its own browser build here)
# and check pages with axe-core from the npm registry.
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium || { \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

$(NPM_PREFIX)/.axe-core-$(AXE_VERSION):
	@mkdir -p $(NPM_PREFIX)
	npm install --prefix $(NPM_PREFIX) --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION)
	@touch $@

browser-deps: $(CHROMIUM) $(NPM_PREFIX)/.axe-core-$(AXE_VERSION) ## install what the browser tests need: Debian's chromium and axe-core (.frontdesk/npm)

# tests/unit/test_deploy_files.py renders docker-compose.yml with Debian's docker-compose (no Docker
# engine needed; --no-install-recommends keeps docker.io out).
$(DOCKER_COMPOSE):
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose || { \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-compose; }

deploy-deps: $(DOCKER_COMPOSE) ## install what the deployment-file tests need: Debian's docker-compose (renders docker-compose.yml, no engine)

run: install ## start Temporal, the demo model, LiteLLM, a worker and the API + UI (with the sample catalog) on 127.0.0.1:8000
	$(BIN)/frontdesk dev

services: ## make sure PostgreSQL (needed by the database tests) is running
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

test: install services browser-deps deploy-deps ## run the full test suite (real Temporal, real LiteLLM, SQLite and PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: $(BIN)/.installed deploy-deps ## run the unit tests only (no services needed)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: $(BIN)/.installed ## ruff over the code, tests, benchmarks and the reliability suite; mypy over orchestrator/, workers/ and reliability/
	$(BIN)/ruff check orchestrator workers tests bench reliability
	$(BIN)/mypy
	$(BIN)/mypy reliability

# BENCH_ARGS=--quick: bench.compare at small sizes (about 2 minutes).
BENCH_ARGS ?=
bench: install services ## print the benchmarks: refund workflow end to end (20 runs), intake accuracy and latency, the web UI's live timeline, and Frontdesk against its bare-temporalio floor (table + .frontdesk/bench/compare.json)
	$(BIN)/python -m bench.refund_e2e
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.ui_live
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

# Starts its own Temporal, demo model, router, worker, API and (for the database outage) a private
# PostgreSQL server in /tmp; never touches the shared one on 5432. RELIABILITY_ARGS=--quick: a few minutes.
RELIABILITY_ARGS ?=
reliability: install ## inject faults (worker and Temporal SIGKILLs, PostgreSQL and router outages, model 5xx/timeouts/malformed output, 30-min soak, cross-tenant, CSRF, schemathesis): requirement, figure, pass; JSON in .frontdesk/reliability.json
	$(BIN)/python -m reliability $(RELIABILITY_ARGS)

replay-record: install services ## record histories of workflow paths that have none yet (existing files are kept)
	$(BIN)/pytest tests/integration --record-histories $(PYTEST_ARGS)

clean: ## remove venvs and local state (the SQLite database, Temporal's file, logs)
	rm -rf $(VENV) $(STATE) .pytest_cache .ruff_cache
