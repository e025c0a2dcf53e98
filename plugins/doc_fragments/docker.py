# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # How modules of this collection reach the Docker engine of the managed host.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The URL or Unix socket path of the Docker engine API.
      - Usually the engine of the managed host itself, reached through its local socket.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  timeout:
    description:
      - Seconds to wait for an answer from the Docker engine API.
    type: int
    default: 60
requirements:
  - Docker SDK for Python 7.0 or newer on the managed host (Debian package C(python3-docker)).
"""
