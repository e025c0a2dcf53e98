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

# Each target's output is also kept in tests/output/integration/<target>.log: CI shows only the
# end of a long run, so the failed tasks of each failed target are printed again at the end.
logs="$repo/tests/output/integration"
mkdir -p "$logs"
passed=0 failed=0 failed_names=()
for target in "$@"; do
    playbook="tests/integration/targets/$target/playbook.yml"
    if [ ! -f "$playbook" ]; then
        echo "unknown integration target '$target' (no $playbook)" >&2
        failed=$((failed + 1)); failed_names+=("$target"); continue
    fi
    echo "=== integration target: $target"
    start=$(date +%s)
    "$repo/.venv/bin/ansible-playbook" -i "$inventory" "$playbook" 2>&1 | tee "$logs/$target.log"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then
        passed=$((passed + 1)); result=passed
    else
        failed=$((failed + 1)); failed_names+=("$target"); result=FAILED
    fi
    echo "=== $target: $result in $(( $(date +%s) - start )) s"
done
for target in "${failed_names[@]}"; do
    [ -f "$logs/$target.log" ] || continue
    echo "=== why $target failed (from $logs/$target.log)"
    "$repo/.venv/bin/python" "$repo/scripts/failed_tasks.py" "$logs/$target.log"
done
[ "$failed" -eq 0 ] || echo "failed targets: ${failed_names[*]}"
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
