#!/usr/bin/env bash
# The collection as users get it: the tarball holds no test junk, installs with
# ansible-galaxy, every module renders in ansible-doc, and a module runs from a
# playbook in a directory that has nothing to do with this repository.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="$repo/.venv/bin"
version=$(sed -n 's/^version: *//p' "$repo/galaxy.yml")
tarball="$repo/build/dockyard-fleet-$version.tar.gz"
[ -f "$tarball" ] || { echo "check_collection: no $tarball: run 'make collection'" >&2; exit 2; }

junk=$(tar -tzf "$tarball" | grep -E '(^|/)(\.fleet|\.venv|\.git|\.cache|__pycache__|tests/output|build|\.pytest_cache|\.ruff_cache)(/|$)|\.pyc$|(^|/)local\.mk$|bench/results/' || true)
if [ -n "$junk" ]; then
    echo "check_collection: the tarball holds development files:" >&2
    echo "$junk" | head -20 >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
"$bin/ansible-galaxy" collection install -p "$work/collections" "$tarball" >/dev/null

modules=$(find "$repo/plugins/modules" -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf '%f\n' | sed 's/\.py$//' | sort)
listed=$("$bin/ansible-doc" -l dockyard.fleet | awk '{print $1}' | sed 's/^dockyard\.fleet\.//' | sort)
if [ "$modules" != "$listed" ]; then
    echo "check_collection: ansible-doc -l lists other modules than plugins/modules:" >&2
    diff <(echo "$modules") <(echo "$listed") >&2 || true
    exit 1
fi
for module in $modules; do
    "$bin/ansible-doc" "dockyard.fleet.$module" >/dev/null
done

cat > play.yml <<'PLAY'
- name: Use the installed collection from a playbook outside its repository
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Merge a daemon.json in this directory
      dockyard.fleet.docker_daemon_config:
        path: "{{ playbook_dir }}/daemon.json"
        settings: {log-opts: {max-size: 10m}}
      register: merged
    - name: Check it
      ansible.builtin.assert:
        that: merged is changed and merged.config['live-restore'] and merged.restart_needed
PLAY
"$bin/ansible-playbook" -i localhost, -e ansible_python_interpreter="$bin/python" play.yml >"$work/play.log" 2>&1 || { cat "$work/play.log" >&2; exit 1; }
grep -q '"max-size": "10m"' daemon.json
echo "check_collection: tarball clean, installs, $(echo "$modules" | wc -l) modules render in ansible-doc, a module runs from outside the repo"
