# Recordbase developer tasks. Works from a fresh clone: `make run`, `make test`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
ROWS ?= 1000000
OUT ?=
PYTEST_ARGS ?=
LOAD_ARGS ?=
REST_ARGS ?=
# Test processes (pytest-xdist): each starts its own PostgreSQL. "0" runs in one process.
PYTEST_WORKERS ?= auto
LINT_PATHS := $(wildcard platform blueprints tests bench)

.DEFAULT_GOAL := help
.PHONY: help venv bytecode assets translations messages chromium init run test lint format bench bench-rest load clean

help:
	@echo "make run     set up .venv, assets, the database and an admin; serve on http://$(HOST):$(PORT)"
	@echo "make test    lint, then the test suite on SQLite and PostgreSQL (RECORDBASE_TEST_DATABASES to narrow)"
	@echo "make messages   extract translatable strings into translations/*/messages.po"
	@echo "make bytecode   compile the project's modules (run, test and the benchmarks do it first)"
	@echo "make lint    ruff check and mypy on the engine (fail), ruff format --check (reports only)"
	@echo "make bench   engine benchmark: ROWS=$(ROWS) [OUT=file]"
	@echo "make bench-rest   REST speed, workload W: 20,000 rows through the API [OUT=file] [REST_ARGS=...]"
	@echo "make load    load test: 50 API clients, 60 s, 4 workers on SQLite [LOAD_ARGS=--postgres]"
	@echo "make clean   remove .venv and caches (never instance/)"

# --- Python environment -------------------------------------------------------
# Reinstall only when pyproject.toml is newer than the stamp.
venv: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Where PYTHONDONTWRITEBYTECODE is set (many containers, CI machines), Python compiles every module of
# an editable install again in each process: about 0.1-0.3 s of every command and worker start.
# Compile them once; compileall only redoes what changed, so this is quick when nothing did.
bytecode: venv
	$(BIN)/python -m compileall -q platform blueprints

# --- Front-end assets -----------------------------------------------------------
# A no-op until the project has a package.json.
ifneq ($(wildcard package.json),)
assets: node_modules/.installed

node_modules/.installed: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@
else
assets:
	@:
endif

# --- Translations -----------------------------------------------------------------
# The .po catalogues are committed; their compiled .mo files are built here (and gitignored).
PO_FILES := $(wildcard translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

translations: $(MO_FILES)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po | venv
	$(BIN)/pybabel compile -d translations -l $* --use-fuzzy

# After adding or changing strings: extract them and merge them into each .po, then translate.
messages: venv
	$(BIN)/pybabel extract -F babel.cfg -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching

# --- Browser for the journey tests -----------------------------------------------------
# Playwright drives Debian's chromium (its own browser download is not used); a CJK font
# makes the Chinese pages legible in the screenshots. Installed when missing and run as root.
BROWSER_PACKAGES := chromium fonts-wqy-zenhei

chromium:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$$missing fonts-wqy-zenhei"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for the browser tests:$$missing"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	  elif [ ! -x /usr/bin/chromium ]; then \
	    echo "The browser tests need Debian's chromium at /usr/bin/chromium: run 'sudo apt-get install $(BROWSER_PACKAGES)', then make test again." >&2; \
	    exit 1; \
	  else \
	    echo "note: Chinese text in the journey screenshots needs a CJK font: sudo apt-get install fonts-wqy-zenhei"; \
	  fi; \
	fi

# --- Running --------------------------------------------------------------------
init: venv bytecode
	$(BIN)/recordbase init $(if $(ADMIN_EMAIL),--admin-email '$(ADMIN_EMAIL)') $(if $(ADMIN_PASSWORD),--admin-password '$(ADMIN_PASSWORD)')

run: venv assets translations init
	$(BIN)/recordbase serve --host $(HOST) --port $(PORT)

# --- Quality --------------------------------------------------------------------
test: venv bytecode assets translations chromium
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Lint errors fail the build; formatting drift is only reported.
lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy platform/recordbase
	@$(BIN)/ruff format --check $(LINT_PATHS) || echo "ruff format: the files above need formatting (not failing); run 'make format'"

format: venv
	$(BIN)/ruff format $(LINT_PATHS)

bench: venv bytecode
	$(BIN)/python bench/engine.py --rows $(ROWS) $(if $(OUT),--out $(OUT))

# 50 REST API clients against `recordbase serve --workers 4` on 127.0.0.1 (bench/load.py --help).
load: venv bytecode
	$(BIN)/python bench/load.py $(LOAD_ARGS)

# REST speed, workload W: one keep-alive client against `recordbase serve` (bench/rest.py --help).
bench-rest: venv bytecode
	$(BIN)/python bench/rest.py $(if $(OUT),--out $(OUT)) $(REST_ARGS)

clean:
	rm -rf $(VENV) node_modules *.egg-info platform/*.egg-info .pytest_cache .hypothesis .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
