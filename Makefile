# dockyard.fleet - developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTIONS := $(CURDIR)/.collections
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := build/dockyard-fleet-$(VERSION).tar.gz
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)
export FLEET_SIZE ?= 3
# A second fleet beside the default one (another checkout): put `export FLEET_NAME=...`,
# FLEET_SUBNET, FLEET_ORIGIN_PORT and DOCKYARD_FLEET_CACHE in local.mk (not in Git).
-include local.mk

T ?=
B ?=
INTEGRATION_TARGETS := $(sort $(notdir $(wildcard tests/integration/targets/*)))

.PHONY: help setup venv collection machine test lint unit sanity integration integration-all molecule \
        demo fleet-up fleet-down bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

setup: machine venv collection ## install everything (idempotent): Docker engine, .venv, the collection

machine:
	@bash scripts/setup-machine.sh

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

collection: venv ## build the collection tarball and install it into .collections
	@mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build . >/dev/null
	$(BIN)/ansible-galaxy collection install --force -p $(COLLECTIONS) $(TARBALL) >/dev/null
	@echo "installed dockyard.fleet $(VERSION) into $(COLLECTIONS)"

fleet-up: machine ## start the test fleet (FLEET_SIZE hosts, default 3) and write .fleet/inventory.yml
	$(PYTHON) tests/fleet/fleet.py up

fleet-down: ## remove the test fleet: containers, network, volumes, image tags
	$(PYTHON) tests/fleet/fleet.py down

lint: collection ## ansible-lint (production profile), ruff, yamllint, ansible-test sanity, role and tarball checks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production
	$(BIN)/python scripts/check_roles.py
	bash scripts/check_collection.sh
	bash scripts/sanity.sh

sanity: venv ## ansible-test sanity only
	bash scripts/sanity.sh

unit: venv ## unit tests (pytest)
	$(BIN)/pytest -q tests/unit

integration: setup fleet-up ## run one integration target: make integration T=smoke
	@test -n "$(T)" || { echo "usage: make integration T=<target>; targets: $(INTEGRATION_TARGETS)"; exit 2; }
	bash scripts/integration.sh $(T)

integration-all: setup fleet-up ## run every integration target on one shared fleet
	bash scripts/integration.sh $(INTEGRATION_TARGETS)

MOLECULE_SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

molecule: setup fleet-up ## molecule test of every scenario (default, network, ...) on the fleet
	@for s in $(MOLECULE_SCENARIOS); do \
	  echo "=== molecule scenario: $$s"; \
	  DOCKYARD_FLEET_KEEP=1 $(BIN)/molecule test -s $$s || exit 1; \
	done

test: ## the whole suite: lint, unit, every integration target and molecule on a fresh fleet, then fleet-down
	bash scripts/test.sh

demo: setup fleet-up ## the whole stack: site.yml on the fleet, a release under traffic, a summary
	$(BIN)/python scripts/demo.py

bench: setup fleet-up ## run benchmarks: make bench B=fleet (all when B is empty)
	bash scripts/bench.sh $(B)

clean: fleet-down ## remove the fleet and build outputs (keeps the image caches)
	rm -rf build $(COLLECTIONS) tests/output
