# vifscope — see README.md. Everything runs from the repo root as root on Debian 12.
VENV := .venv
VS := $(VENV)/bin/vifscope
PY := $(VENV)/bin/python

.PHONY: setup demo lab-up lab-down status test lint unit e2e clean

setup:
	@scripts/setup.sh

# Build the demo lab (real TCG guests, every object named vs-*) and show its bindings.
# status exits 1 here on purpose: the lab contains one deliberately detached vif.
demo: setup
	$(VS) lab up
	@$(VS) networks || true
	@$(VS) status; rc=$$?; [ $$rc -le 1 ] || exit $$rc

lab-up: setup
	$(VS) lab up

lab-down: setup
	$(VS) lab down

lint: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest -q tests/unit tests/golden

e2e: setup
	$(PY) -m pytest -q -m "e2e or integration" tests

# Lint, then every test: unit, golden, libvirt test driver integration, e2e on real guests.
test: lint
	$(PY) -m pytest -q --timeout=600 tests

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
