# nodefarm: `make up` runs a farm on this host, `make test` runs lint, types and every test tier.
# Works on a fresh clone, non-interactively (CI=true, no stdin).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Redone when pyproject.toml changes.
STAMP := $(VENV)/.nodefarm-installed
TORCH_VERSION ?= 2.13.0
# torchvision of the same release (ComfyUI imports it). PyPI has only its CUDA build: beside a CPU torch its
# C++ operators cannot load, and nodes/comfyui.py lets its Python side import anyway (README, "Run your ComfyUI").
TORCHVISION_VERSION ?= 0.28.0
# e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for a CPU-only machine
TORCH_INDEX_URL ?=
CHROMIUM := /usr/bin/chromium
ARGS ?=
PYTEST_ARGS ?=
# test processes: the integration tiers mostly wait on farms (load average ~0.5 on 2 cores run serially);
# three at once take the whole suite from ~18 to ~10 minutes; each test file stays in one process
TEST_PROCESSES ?= 3

.PHONY: help venv up test lint chromium compose redis-check bench clean distclean dashboard

# The dashboard (/nodefarm/): frontend/dashboard/ built with npm (vite) into frontend/dashboard/dist/ (ignored), the
# API serves it. npm ci when the lock file changes, npm run build when a source is newer than the build.
DASHBOARD := frontend/dashboard
DASHBOARD_BUILT := $(DASHBOARD)/dist/index.html
DASHBOARD_DEPS := $(DASHBOARD)/node_modules/.package-lock.json
DASHBOARD_SRC := $(shell find $(DASHBOARD)/src -type f 2>/dev/null) $(addprefix $(DASHBOARD)/,index.html vite.config.js package.json package-lock.json)

help:
	@echo "make up      run Redis, the API and workers on http://127.0.0.1:8188/ (ARGS='--workers 4 --listen --auth-token-file tokens.txt')"
	@echo "make test    ruff, mypy and every test (unit, integration, e2e)"
	@echo "make bench   print the benchmark tables"
	@echo "make dashboard  build the dashboard (/nodefarm/) from frontend/dashboard/ with npm (up and test do it)"
	@echo "make lint | venv | chromium | compose | redis-check | clean | distclean"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) torch==$(TORCH_VERSION) </dev/null
	$(BIN)/python -m pip install $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) --no-deps torchvision==$(TORCHVISION_VERSION) </dev/null
	$(BIN)/python -m pip install -e '.[test,comfyui]' </dev/null
	@touch $@

up: venv dashboard
	$(BIN)/nodefarm up $(ARGS)

test: venv chromium compose redis-check dashboard
	$(BIN)/ruff check api worker nodes tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check api worker nodes tests bench
	$(BIN)/mypy

dashboard: $(DASHBOARD_BUILT)

$(DASHBOARD_DEPS): $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found. The dashboard is built with Node.js 18+ and npm (Debian: sudo apt-get install nodejs npm)." >&2; exit 1; }
	cd $(DASHBOARD) && npm ci --no-audit --no-fund </dev/null

$(DASHBOARD_BUILT): $(DASHBOARD_SRC) $(DASHBOARD_DEPS)
	cd $(DASHBOARD) && npm run build </dev/null
	@touch $@

chromium:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	echo "chromium: $(CHROMIUM) is missing; installing it with apt-get"; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	{ $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	  && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } </dev/null || true; \
	if [ ! -x $(CHROMIUM) ]; then \
	  echo "error: $(CHROMIUM) is still missing. The e2e tests drive a real headless Chromium." >&2; \
	  echo "       Install it (Debian: sudo apt-get install chromium) and run make test again." >&2; \
	  exit 1; \
	fi

# A real Compose implementation checks docker-compose.yml (tests/unit/test_compose.py): Debian's
# docker-compose, installed here when neither it nor the docker compose plugin is present. Not fatal:
# without it that test fails and says how to install it.
compose:
	@if command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; then exit 0; fi; \
	echo "compose: docker-compose is missing; installing it with apt-get"; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	{ $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q \
	  && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose; } </dev/null || true; \
	command -v docker-compose >/dev/null || echo "warning: docker-compose could not be installed; tests/unit/test_compose.py will fail" >&2

redis-check:
	@command -v redis-server >/dev/null || { \
	  echo "error: redis-server not found on PATH. The integration tests and 'nodefarm up' start private Redis servers." >&2; \
	  echo "       Install it: sudo apt-get install redis-server (Debian/Ubuntu) or brew install redis (macOS)." >&2; \
	  exit 1; }

bench: venv redis-check
	$(BIN)/python bench/chain.py
	$(BIN)/python bench/wide.py
	$(BIN)/python bench/tensor_edge.py
	$(BIN)/python bench/validation.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/dashboard.py

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info bench/results tests/screenshots
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
