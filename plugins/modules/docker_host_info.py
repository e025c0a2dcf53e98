#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_host_info
short_description: Report the Docker engine of a host
version_added: 0.1.0
description:
  - Reads what the Docker engine of the managed host says about itself.
  - Versions, API version, storage driver, cgroup driver, live-restore, registry mirrors,
    default log driver and container counts.
  - Read-only; use it to check a host before a release or in a smoke test.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.info_module
  - dockyard.fleet.attributes.actiongroup_docker
options:
  containers:
    description:
      - Also list the containers (name, image, state) in RV(engine.containers_list).
    type: bool
    default: false
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Read the Docker engine
  dockyard.fleet.docker_host_info:
  register: engine_info

- name: Refuse hosts without live-restore
  ansible.builtin.assert:
    that: engine_info.engine.live_restore_enabled
    fail_msg: "{{ inventory_hostname }}: enable live-restore before releasing"
"""

RETURN = r"""
engine:
  description: What the engine says about itself.
  returned: always
  type: dict
  contains:
    server_version:
      description: Engine version.
      type: str
      sample: 20.10.24+dfsg1
    api_version:
      description: Highest API version the engine speaks.
      type: str
      sample: "1.41"
    storage_driver:
      description: Storage driver of the engine.
      type: str
      sample: overlay2
    cgroup_driver:
      description: Cgroup driver of the engine.
      type: str
      sample: systemd
    live_restore_enabled:
      description: Whether containers keep running while dockerd restarts.
      type: bool
      sample: true
    logging_driver:
      description: Default log driver for new containers.
      type: str
      sample: json-file
    registry_mirrors:
      description: Configured registry mirrors.
      type: list
      elements: str
      sample: []
    containers:
      description: Number of containers, all states.
      type: int
      sample: 3
    containers_running:
      description: Number of running containers.
      type: int
      sample: 2
    images:
      description: Number of images.
      type: int
      sample: 5
    containers_list:
      description: The containers, when O(containers=true).
      type: list
      elements: dict
      returned: when O(containers=true)
      sample: [{"name": "web", "image": "registry.example.com/web:1.0", "state": "running"}]
"""

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)


def engine_summary(info, version):
    """The fields operators check, from `docker info` and `docker version` answers."""
    return {
        "server_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "storage_driver": info.get("Driver"),
        "cgroup_driver": info.get("CgroupDriver"),
        "live_restore_enabled": bool(info.get("LiveRestoreEnabled")),
        "logging_driver": info.get("LoggingDriver"),
        "registry_mirrors": (info.get("RegistryConfig") or {}).get("Mirrors") or [],
        "containers": info.get("Containers", 0),
        "containers_running": info.get("ContainersRunning", 0),
        "images": info.get("Images", 0),
    }


def main():
    argument_spec = {
        "containers": {"type": "bool", "default": False},
    }
    module = docker_module(argument_spec, supports_check_mode=True)
    client = DockerClient(module)
    try:
        engine = engine_summary(client.api.info(), client.api.version())
        if module.params["containers"]:
            engine["containers_list"] = [
                {"name": c["Names"][0].lstrip("/"), "image": c["Image"], "state": c["State"]}
                for c in client.api.containers(all=True)
            ]
    except (DockerException, RequestException) as exc:
        client.fail("reading the Docker engine failed: %s" % exc)
    module.exit_json(changed=False, engine=engine)


if __name__ == "__main__":
    main()
