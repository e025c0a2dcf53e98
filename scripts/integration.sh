#!/usr/bin/env bash
# Run integration targets against the running test fleet:
#   scripts/integration.sh smoke [other targets...]
# Each target is tests/integration/targets/<name>/playbook.yml; it cleans up
# after itself in `always:` blocks, so targets share one fleet.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2
export ANSIBLE_CONFIG="$repo/ansible.cfg"
inventory=${FLEET_INVENTORY:-$repo/.fleet/inventory.yml}
[ -f "$inventory" ] || { echo "no fleet inventory at $inventory: run 'make fleet-up'" >&2; exit 2; }
[ "$#" -gt 0 ] || { echo "usage: $0 TARGET..." >&2; exit 2; }

passed=0 failed=0 failed_names=()
for target in "$@"; do
    playbook="tests/integration/targets/$target/playbook.yml"
    if [ ! -f "$playbook" ]; then
        echo "unknown integration target '$target' (no $playbook)" >&2
        failed=$((failed + 1)); failed_names+=("$target"); continue
    fi
    echo "=== integration target: $target"
    start=$(date +%s)
    if "$repo/.venv/bin/ansible-playbook" -i "$inventory" "$playbook"; then
        passed=$((passed + 1)); result=passed
    else
        failed=$((failed + 1)); failed_names+=("$target"); result=FAILED
    fi
    echo "=== $target: $result in $(( $(date +%s) - start )) s"
done
[ "$failed" -eq 0 ] || echo "failed targets: ${failed_names[*]}"
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
