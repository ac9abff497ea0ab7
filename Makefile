# The README's commands. Everything runs from a virtualenv this Makefile creates from the
# repository's own pinned, hashed requirements: a fresh machine needs only Python 3.11+.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# The deployment checkers (hadolint, cfn-lint, checkov, kubernetes-validate) live in their own
# virtualenv, from requirements/tools.txt, so their pins never fight the application's.
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-$(shell cat requirements/tools.txt | cksum | cut -d' ' -f1)

.PHONY: help install demo sandbox test lint typecheck pytest unit integration chaos bench lock clean \
	check-deploy lock-tools

help:
	@echo "make demo   - run a whole campaign on the embedded local stack (< 1 min)"
	@echo "make sandbox - the local stack + API + console, left running (SANDBOX_ARGS=--consumers 2)"
	@echo "make test   - lint, type-check, check deploy/ and run the whole test suite"
	@echo "make check-deploy - hadolint, cfn-lint, checkov over deploy/ and the Dockerfile"
	@echo "make bench  - throughput, round trips, engine overhead, producer at scale"
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

# `campaign-sandbox up`: the local stack, the operator API and its console, until Ctrl-C.
SANDBOX_ARGS ?=
sandbox: $(STAMP)
	$(BIN)/campaign-sandbox up $(SANDBOX_ARGS)

test: lint typecheck check-deploy pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/contract $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest tests/integration tests/race tests/chaos $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

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

$(TOOLS_STAMP): requirements/tools.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	@echo '*' > $(TOOLS_VENV)/.gitignore
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/tools.txt
	@rm -f $(TOOLS_VENV)/.installed-*
	@touch $@

# The linters each deploy/ artefact's ecosystem trusts. What the artefacts do (the image's
# install steps, Kubernetes and CRD schemas, ECS requests, the stack in moto with IAM, the
# dashboard, promtool, a real Prometheus scrape) is tested by tests/deploy, in `pytest`.
# checkov runs offline (--skip-download, BC_SKIP_MAPPING): no call to any platform.
# kubectl's built-in kustomize renders deploy/k8s (no cluster needed).
CHECKOV := BC_SKIP_MAPPING=TRUE $(TOOLS_VENV)/bin/checkov --quiet --compact --skip-download
check-deploy: $(STAMP) $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/hadolint Dockerfile
	$(TOOLS_VENV)/bin/cfn-lint deploy/cloudformation/*.yaml
	$(CHECKOV) --framework cloudformation --directory deploy/cloudformation
	$(CHECKOV) --framework dockerfile --file Dockerfile
	@if ! command -v kubectl >/dev/null; then \
		echo "check-deploy: kubectl not found: the rendered Kubernetes overlay is NOT checked"; \
		exit 0; fi; \
	rendered=$$(mktemp -d) && trap 'rm -rf "$$rendered"' EXIT \
		&& kubectl kustomize deploy/k8s/overlays/example > "$$rendered/example.yaml" \
		&& echo "$(CHECKOV) --framework kubernetes (kubectl kustomize deploy/k8s/overlays/example)" \
		&& $(CHECKOV) --framework kubernetes --directory "$$rendered"

lock-tools:
	$(PYTHON) -m venv /tmp/campaign-lock-venv && /tmp/campaign-lock-venv/bin/pip install --quiet pip-tools
	cd requirements && /tmp/campaign-lock-venv/bin/pip-compile --quiet --generate-hashes \
		--strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		-o tools.txt tools.in

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .demo .mypy_cache .ruff_cache .pytest_cache build *.egg-info
