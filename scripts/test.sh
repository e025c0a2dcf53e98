#!/usr/bin/env bash
# `make test`: lint, unit tests, then every integration target and the molecule
# scenario on one fresh fleet, which is removed at the end whatever happens.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
started=$(date +%s)
stage() { printf '\n##### %s (%d s)\n' "$1" $(( $(date +%s) - started )); }

stage setup
make --no-print-directory setup
stage lint
make --no-print-directory lint
stage unit
make --no-print-directory unit

stage "fresh fleet"
make --no-print-directory fleet-down
trap 'stage "fleet-down"; make --no-print-directory fleet-down' EXIT
make --no-print-directory fleet-up
stage integration
make --no-print-directory integration-all
stage molecule
make --no-print-directory molecule
stage "all passed"
