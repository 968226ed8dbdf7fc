# vifscope — see README.md. Everything runs from the repo root as root on Debian 12.
VENV := .venv
VS := $(VENV)/bin/vifscope
PY := $(VENV)/bin/python

.PHONY: setup setup-test demo lab-up lab-down status test lint unit e2e fuzz clean

setup:
	@scripts/setup.sh

# The test suite also needs Prometheus, Chromium and Graphviz (not installed by make demo).
setup-test:
	@scripts/setup.sh --test

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

lint: setup-test
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest -q tests/unit tests/golden tests/golden_checks tests/golden_qos tests/golden_apply tests/fuzz

e2e: setup-test
	$(PY) -m pytest -q -m "e2e or integration" tests

# The long fuzz run: 1,000,000 mutated inputs through every parser (a share through every report),
# both cores, at most 20 minutes; counts, crashes and the slowest inputs go to RELIABILITY.md.
fuzz: setup-test
	$(PY) bench/fuzz.py

# Lint, then every test: unit, golden, libvirt test driver integration, e2e on real guests.
test: lint
	$(PY) -m pytest -q --timeout=600 tests

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

# 60 s of load on a 5,000-vif synthetic host (netns vs-load): 50 parallel /metrics scrapers and
# 50 API readers against the exporter and serve. Writes RELIABILITY.md's load section; fails on
# any error, a daemon that died, or RSS growth beyond the stated bound. Stops by itself (timeout).
.PHONY: soak
soak: setup
	timeout 900 $(PY) bench/load.py --seconds 60

# schemathesis at depth (negative data, stateful links) against serve on a host with hostile
# names (a private netns): with and without the token; 5xx, check failures, unrefused POSTs
# and a logged token all fail it. Writes RELIABILITY.md's api section; at most 15 min a run.
.PHONY: api-fuzz
api-fuzz: setup-test
	timeout 2400 $(PY) bench/api_fuzz.py

# Hostile names through every report, and every failed-fix scenario 10 times on a fresh netns
# host (tests/integration/test_failed_fixes.py's, for real): RELIABILITY.md's names and
# failed-fixes sections. About 5 minutes; stops by itself.
.PHONY: hostile
hostile: setup-test
	timeout 1800 $(PY) bench/hostile.py --rounds 10

# libvirtd and ovsdb-server (private instances: the host's are never signalled) SIGKILLed x10 and
# SIGSTOPped 30 s under exporter, serve and watch --heal, then a 10,000-event netlink storm.
# Writes RELIABILITY.md's outage section; fails on a daemon that died or did not recover, an
# answer past its deadline, an unhealed tap or a missed transition. Stops by itself (timeout).
.PHONY: outage
outage: setup
	timeout 900 $(PY) bench/outage.py
