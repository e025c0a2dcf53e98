# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The per-app edge proxy of blue/green releases: an nginx container that holds
# the app's published ports and forwards to the current release's container.
# Switching rewrites the upstream and reloads nginx gracefully: new workers take
# new connections, old workers finish what they have in flight, then exit.

from __future__ import annotations

import http.client
import time

EDGE_CONF_DIR = "/var/lib/dockyard/edge"
EDGE_CONF_IN_CONTAINER = "/etc/dockyard-edge"
RELEASE_HEADER = "X-Dockyard-Release"


def render_edge_config(ports, upstream_ip, release_id, drain_timeout):
    """nginx.conf forwarding each published port to the same release's container port."""
    upstreams, servers = [], []
    for port in ports:
        name = "release_%d" % port["container_port"]
        upstreams.append(
            "  upstream %s {\n    server %s:%d max_fails=0;\n    keepalive 32;\n  }\n"
            % (name, upstream_ip, port["container_port"])
        )
        servers.append(
            "  server {\n"
            "    listen %d;\n"
            "    location / {\n"
            "      proxy_pass http://%s;\n"
            "      proxy_http_version 1.1;\n"
            '      proxy_set_header Connection "";\n'
            "      proxy_set_header Host $http_host;\n"
            "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "      proxy_set_header X-Forwarded-Proto $scheme;\n"
            "      proxy_next_upstream error timeout;\n"
            "      proxy_connect_timeout 5s;\n"
            "      proxy_read_timeout 300s;\n"
            "      proxy_buffering off;\n"
            "      add_header %s %s always;\n"
            "    }\n"
            "  }\n" % (port["host_port"], name, RELEASE_HEADER, release_id)
        )
    # One worker is plenty for an app's edge and keeps reloads cheap; the shutdown timeout
    # bounds how long old workers may drain after a switch.
    return (
        "# Written by dockyard.fleet.docker_release. Do not edit: the next release rewrites it.\n"
        "worker_processes 1;\n"
        "pid /tmp/dockyard-edge.pid;\n"
        "error_log stderr warn;\n"
        "worker_shutdown_timeout %ds;\n"
        "events {\n  worker_connections 4096;\n}\n"
        "http {\n"
        "  access_log off;\n"
        "  server_tokens off;\n"
        "  keepalive_timeout 65s;\n"
        "%s%s}\n" % (max(int(drain_timeout), 1), "".join(upstreams), "".join(servers))
    )


def probe_release_header(host, port, path, timeout=2.0):
    """Which release answers on the published port (None when nothing answers)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.getheader(RELEASE_HEADER)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for_release_header(host, port, path, release_id, timeout):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = probe_release_header(host, port, path)
        if seen == release_id:
            return True, seen
        time.sleep(0.1)
    return False, seen
