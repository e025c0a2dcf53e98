#!/usr/bin/env bash
# make bench B=NAME runs bench/NAME.* and writes bench/results/NAME.json; without B, every bench.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
mkdir -p bench/results
names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
    for f in bench/*.py bench/*.sh; do [ -e "$f" ] && names+=("$(basename "${f%.*}")"); done
fi
for name in "${names[@]}"; do
    script=$(find bench -maxdepth 1 -name "$name.*" -type f | head -n 1)
    [ -n "$script" ] || { echo "no benchmark bench/$name.*" >&2; exit 2; }
    echo "=== bench $name ($script)"
    case "$script" in
        *.py) "$repo/.venv/bin/python" "$script" "bench/results/$name.json" ;;
        *.sh) bash "$script" "bench/results/$name.json" ;;
    esac
    cat "bench/results/$name.json"
done
