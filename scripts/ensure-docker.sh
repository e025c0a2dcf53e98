#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
# Order: use the running one; else start an installed dockerd in the background;
# else (root on Debian/Ubuntu) install Debian's docker.io and start it;
# else fail saying what to install. Idempotent.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
    log "starting dockerd in the background (log: /var/log/dockerd-dockyard.log)"
    # No systemd on a bare CI machine: run the daemon detached from this shell so it
    # outlives `make`. setsid keeps it out of our process group.
    setsid dockerd >/var/log/dockerd-dockyard.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        engine_answers && return 0
        sleep 1
    done
    log "dockerd did not answer within 60 s; last lines of its log:"
    tail -n 20 /var/log/dockerd-dockyard.log >&2 || true
    return 1
}

install_docker_io() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "no Docker engine found. Install Docker Engine (e.g. 'apt-get install docker.io' on Debian/Ubuntu) and start it."
        exit 1
    fi
    log "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q docker.io
}

if engine_answers; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    install_docker_io
fi
start_dockerd
log "Docker engine $(docker version --format '{{.Server.Version}}') answers"
