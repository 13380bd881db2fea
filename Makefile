# Two commands: `make run` (marketplace with demo data on embedded defaults) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip
BUN_VERSION := 1.4.5
# Lighthouse 13.x needs Node >= 22.19; Node here is 20
LIGHTHOUSE_VERSION := 12.8.2
# axe-core: the accessibility rules the e2e tests inject into each page (tests/e2e/test_accessibility_e2e.py)
AXE_VERSION := 4.14.1
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(PATH)
export REFLEX_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1
PORT ?= 3000

.PHONY: run test setup setup-dev bun axe lighthouse chromium migrate seed operator worker search-worker bench unit integration e2e clean

.venv/.installed: requirements.txt constraints.txt
	@test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	@touch $@

.venv/.installed-dev: .venv/.installed requirements-dev.txt
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

setup: .venv/.installed bun
setup-dev: .venv/.installed-dev bun axe lighthouse chromium

# Reflex builds the frontend with bun and would otherwise try to download it; the npm registry has it.
bun:
	@command -v bun >/dev/null 2>&1 || { echo "installing bun $(BUN_VERSION) from the npm registry into .tools/"; \
	  npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION) >/dev/null; }
	@bun --version >/dev/null || { echo "bun is missing: install Node.js/npm, then re-run"; exit 1; }

# `npm install --no-save` prunes what it was not asked for from .tools, so bun is named again beside axe-core.
axe:
	@grep -qs '"version": "$(AXE_VERSION)"' .tools/node_modules/axe-core/package.json || { \
	  echo "installing axe-core $(AXE_VERSION) from the npm registry into .tools/"; \
	  npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error \
	    $$(command -v bun >/dev/null 2>&1 && test ! -x .tools/node_modules/.bin/bun || echo bun@$(BUN_VERSION)) \
	    axe-core@$(AXE_VERSION) >/dev/null; }
	@test -f .tools/node_modules/axe-core/axe.min.js || { echo "axe-core is missing: install Node.js/npm, then re-run"; exit 1; }

# Lighthouse for `python -m bench lighthouse`, run against Debian's chromium (CHROME_PATH); it downloads no browser.
# Its own prefix: an `npm install --no-save` into .tools would prune the other tools installed there.
lighthouse:
	@test -x .tools/lighthouse/node_modules/.bin/lighthouse || { echo "installing lighthouse $(LIGHTHOUSE_VERSION) from npm into .tools/lighthouse/"; \
	  npm install --prefix .tools/lighthouse --no-save --no-audit --no-fund --loglevel=error lighthouse@$(LIGHTHOUSE_VERSION) >/dev/null; }

chromium:
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  { echo "could not install chromium: run 'apt-get install -y chromium' as root"; exit 1; }; }

migrate: .venv/.installed
	$(PY) -m backend.migrate

# Demo data (published passwords, test cards): refuses to run unless ENVIRONMENT=development (the default),
# before migrating anything; otherwise it migrates, then seeds.
seed: .venv/.installed
	$(PY) -m backend.seed

# A platform operator for a real installation: `make operator EMAIL=you@example.com` asks for the password.
operator: .venv/.installed
	@test -n "$(EMAIL)" || { echo "usage: make operator EMAIL=you@example.com"; exit 2; }
	$(PY) -m backend.cli create-operator --email "$(EMAIL)"

run: setup seed
	@echo "Starting the marketplace on http://localhost:$(PORT) (each start compiles and builds the frontend first)"
	.venv/bin/reflex run --env prod --single-port --frontend-port $(PORT) --backend-port $(PORT)

worker: .venv/.installed
	.venv/bin/celery -A backend.jobs worker --beat --loglevel=info

# the search index's single writer (the embedded tantivy index takes one): the "search" queue, one process
search-worker: .venv/.installed
	.venv/bin/celery -A backend.jobs worker -Q search -c 1 --loglevel=info -n search@%h

unit: .venv/.installed-dev
	$(PY) -m pytest tests/unit

integration: .venv/.installed-dev
	$(PY) -m pytest tests/integration

e2e: setup-dev
	$(PY) -m pytest tests/e2e

test: setup-dev
	$(PY) -m pytest tests/unit tests/integration tests/e2e

bench: setup-dev
	$(PY) -m bench

clean:
	rm -rf .web .states data .pytest_cache
