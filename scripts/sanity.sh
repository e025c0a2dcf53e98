#!/usr/bin/env bash
# Run `ansible-test sanity --venv --python 3.11` on this collection and exit with its status.
#   scripts/sanity.sh [extra ansible-test sanity args, e.g. --test validate-modules]
#
# Needs only the repo's .venv (ansible-core) and a package index for pip. Steps:
#  1. ansible-test wants the collection at .../ansible_collections/<namespace>/<name>
#     and runs from inside it, so copy the repo's files (tracked + untracked but not
#     ignored) into tests/output/sanity-tree/ansible_collections/<ns>/<name>, wiped
#     and re-copied on every run, and `git init` there (ansible-test lists the files
#     with git, and would otherwise use the outer repo). tests/output/ is git-ignored.
#  2. Every venv ansible-test makes is bootstrapped with a get-pip script that it
#     downloads from ci-files.testing.ansible.com unless it is already in
#     ~/.ansible/test/cache/. We put scripts/get_pip_standin.py there, next to a pip
#     wheel fetched with `pip download`, so no download from that host is needed.
#  3. HOME for ansible-test is a stable cache dir (DOCKYARD_FLEET_CACHE, default
#     ~/.cache/dockyard-fleet), so the sanity venvs it builds under ~/.ansible/test
#     are reused by later runs.
set -uo pipefail

log() { printf '[sanity] %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# Real path (ansible-test rejects a collection reached through a symlink).
repo=$(cd "$(dirname "$0")/.." && pwd -P) || die "cannot resolve repo dir"
venv="$repo/.venv"
python="$venv/bin/python"
ansible_test="$venv/bin/ansible-test"
if [ ! -x "$python" ] || [ ! -x "$ansible_test" ]; then die "no $ansible_test: create the venv first (make venv)"; fi
git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$repo is not a git work tree"

# --- collection identity from galaxy.yml ------------------------------------------------
read -r namespace name < <("$python" - "$repo/galaxy.yml" <<'EOF'
import sys, yaml
with open(sys.argv[1]) as f:
    meta = yaml.safe_load(f)
print(meta["namespace"], meta["name"])
EOF
) || die "cannot read namespace/name from $repo/galaxy.yml"
if [ -z "${namespace:-}" ] || [ -z "${name:-}" ]; then die "cannot read namespace/name from $repo/galaxy.yml"; fi

# --- HOME for ansible-test, with the pip bootstrap cache --------------------------------
cache=${DOCKYARD_FLEET_CACHE:-$HOME/.cache/dockyard-fleet}
test_home="$cache/ansible-test-home"
pip_cache="$test_home/.ansible/test/cache"   # where ansible-test looks for get_pip_<version>.py
mkdir -p "$pip_cache" || die "cannot create $pip_cache"
test_home=$(cd "$test_home" && pwd -P)
pip_cache="$test_home/.ansible/test/cache"

# Serialize runs that share the cache or the copy (ansible-test isn't safe to run twice at once there).
mkdir -p "$repo/tests/output" || die "cannot create $repo/tests/output"
if command -v flock >/dev/null 2>&1; then
    exec 8>"$test_home/.sanity.lock" 9>"$repo/tests/output/.sanity.lock"
    for fd in 8 9; do
        flock -n "$fd" || { log "waiting for another scripts/sanity.sh run to finish"; flock "$fd"; }
    done
fi

# The pip version ansible-test bootstraps into its venvs (24.2 for ansible-core 2.19).
pip_version=$("$python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"])' 2>/dev/null) ||
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" \
    "$("$python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -n1)
[ -n "$pip_version" ] || die "cannot tell which pip version ansible-test bootstraps"

if ! compgen -G "$pip_cache/pip-$pip_version-*.whl" >/dev/null; then
    log "fetching the pip $pip_version wheel into $pip_cache"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$pip_cache" "pip==$pip_version" ||
        die "could not download pip==$pip_version"
fi
standin="$pip_cache/get_pip_${pip_version//./_}.py"
{ cp "$repo/scripts/get_pip_standin.py" "$standin.tmp" && mv -f "$standin.tmp" "$standin"; } ||
    die "cannot install the get-pip stand-in at $standin"

# --- fresh copy of the collection ---------------------------------------------------------
tree="$repo/tests/output/sanity-tree"
collection="$tree/ansible_collections/$namespace/$name"
# Keep the venv ansible-test delegates into (it lives in the copy's tests/output/.tmp)
# across the wipe; it goes back to the same absolute path, so it stays valid.
delegation="$collection/tests/output/.tmp/delegation"
kept_delegation="$repo/tests/output/sanity-delegation"
if [ -d "$delegation" ]; then
    { rm -rf "$kept_delegation" && mv "$delegation" "$kept_delegation"; } || die "cannot move $delegation aside"
fi
{ rm -rf "$tree" && mkdir -p "$collection"; } || die "cannot recreate $tree"
(
    cd "$repo" || exit 1
    git ls-files -z -co --exclude-standard |
        while IFS= read -r -d '' f; do
            case "$f" in
                .venv | .venv/* | .fleet | .fleet/* | .collections | .collections/* | \
                    build | build/* | tests/output | tests/output/*) continue ;;
            esac
            # skip tracked files deleted from the work tree
            [ -e "$f" ] || [ -L "$f" ] || continue
            printf '%s\0' "$f"
        done |
        tar --null --no-recursion -T - -cf -
) | tar -C "$collection" -xf - || die "copying the collection into $collection failed"
# Make the copy its own git work tree: ansible-test looks for .git from the collection
# upwards, and would otherwise use the outer repo, where tests/output/ is ignored, and
# find no files at all ("All targets skipped"). Nothing is committed: ansible-test
# lists untracked, non-ignored files too.
git -C "$collection" -c init.defaultBranch=main init -q || die "git init in $collection failed"
log "copied $(find "$collection" -path "$collection/.git" -prune -o -type f -print | wc -l) files into $collection"
if [ -d "$kept_delegation" ]; then
    { mkdir -p "$(dirname "$delegation")" && mv "$kept_delegation" "$delegation"; } ||
        die "cannot restore $delegation"
    # drop venvs whose interpreter no longer runs (ansible-test would trust their marker)
    for v in "$delegation"/*/; do
        [ -d "$v" ] || continue
        "$v/bin/python" -c '' >/dev/null 2>&1 || rm -rf "$v"
    done
fi

# --- run ----------------------------------------------------------------------------------
# HOME moves, so keep the user's own pip config (index/mirror settings) in effect.
if [ -z "${PIP_CONFIG_FILE:-}" ]; then
    for f in "${XDG_CONFIG_HOME:-$HOME/.config}/pip/pip.conf" "$HOME/.pip/pip.conf"; do
        if [ -f "$f" ]; then
            export PIP_CONFIG_FILE="$f"
            break
        fi
    done
fi

cd "$collection" || die "cannot cd to $collection"
log "running: ansible-test sanity --venv --python 3.11 $* (HOME=$test_home)"
start=$SECONDS
HOME="$test_home" "$ansible_test" sanity --venv --python 3.11 "$@" 8>&- 9>&-
status=$?
log "ansible-test exited $status after $((SECONDS - start)) s"
exit "$status"
