# The README's commands. Everything runs from a virtualenv this Makefile creates from the
# repository's own pinned, hashed requirements: a fresh machine needs only Python 3.11+.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: help install demo test lint typecheck pytest unit integration chaos lock clean

help:
	@echo "make demo   - run a whole campaign on the embedded local stack (< 1 min)"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make chaos  - soak under chaos: make chaos SEED=7 ROUNDS=40 RECIPIENTS=1000"
	@echo "make lock   - re-pin requirements/*.txt from pyproject.toml"

$(STAMP): requirements/dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest tests/integration tests/race tests/chaos $(PYTEST_ARGS)

SEED ?= 7
ROUNDS ?= 40
RECIPIENTS ?= 1000
DAILY_CAP_CHAOS ?= 0
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.chaos --seed $(SEED) --rounds $(ROUNDS) \
		--recipients $(RECIPIENTS) --daily-cap $(DAILY_CAP_CHAOS)

lock:
	$(PYTHON) -m venv /tmp/campaign-lock-venv && /tmp/campaign-lock-venv/bin/pip install --quiet pip-tools
	cd requirements && /tmp/campaign-lock-venv/bin/pip-compile --quiet --generate-hashes \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		-o runtime.txt ../pyproject.toml
	cd requirements && /tmp/campaign-lock-venv/bin/pip-compile --quiet --generate-hashes \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--extra dev -o dev.txt ../pyproject.toml

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache build *.egg-info
