#!/usr/bin/env bash
# Machine-level prerequisites of `make setup`: the tools the test fleet needs
# (debootstrap, ssh client, openssl; redis-server for the registry tests' shared cache; shellcheck for
# ansible-test sanity) and a Docker engine that answers.
# Installs with apt-get when root on Debian/Ubuntu; elsewhere says what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
for tool in debootstrap:debootstrap shellcheck:shellcheck ssh:openssh-client ssh-keygen:openssh-client openssl:openssl tar:tar redis-server:redis-server redis-cli:redis-tools; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "[setup] missing: ${missing[*]}; install them (Debian/Ubuntu package names)" >&2
        exit 1
    fi
fi
exec "$here/ensure-docker.sh"
