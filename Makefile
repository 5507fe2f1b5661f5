# kubellm developer entry points. The README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
DEV   := $(VENV)/bin/kubellm-dev

.PHONY: install demo test test-unit lint cluster-up cluster-down cluster-status e2e-kind

install:                ## python environment (cached) + local cluster binaries (cached)
	scripts/install.sh

demo: install           ## bring up the local cluster and show the GPU pools and KubeRay ready
	scripts/demo.sh

test: install lint      ## static checks, then unit + e2e tiers inside a loopback-only namespace
	KUBELLM_REQUIRE_E2E=1 $(DEV) netns -- $(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: install      ## the fast tier only (no cluster)
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

lint:                   ## ruff, mypy --strict and import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

cluster-up: install     ## start the local cluster in the background (prints the kubeconfig path)
	$(DEV) cluster up

cluster-down:
	$(DEV) cluster down

cluster-status:
	$(DEV) cluster status

e2e-kind:               ## the e2e tier against a kind cluster (needs Docker; see README)
	scripts/e2e-kind.sh
