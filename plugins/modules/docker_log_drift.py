#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_log_drift
short_description: Report (and optionally recreate) containers whose log configuration differs from the defaults
version_added: 0.1.0
description:
  - Docker applies changed C(log-driver)/C(log-opts) defaults only to containers created afterwards. This module
    lists the containers of the host whose C(HostConfig.LogConfig) differs from the given defaults, with the
    reasons, including the trap of a container created with an explicit driver and no options (a json-file
    log without C(max-size) grows without bound).
  - With O(recreate=true) it recreates the drifted containers (matching O(recreate_match)) with the default log
    configuration, one after the other, keeping their configuration otherwise. The old container is renamed
    and stopped, the new one started; the old one (and its log file) is removed only once the shipper
    (rsyslog imfile, read from its state files in O(shipper_state_dir)) has read its whole log. On failure
    the old container is put back.
  - Used by the C(dockyard.fleet.logging) role.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    details: Reports what would be recreated.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  driver:
    description:
      - The default log driver the containers should have.
    type: str
    required: true
  options:
    description:
      - The default log options (values compared as strings).
    type: dict
    default: {}
  recreate:
    description:
      - Recreate drifted containers with O(driver) and O(options).
    type: bool
    default: false
  recreate_match:
    description:
      - Regular expression; only containers whose name matches it are recreated (all are reported).
    type: str
    default: ".*"
  stop_timeout:
    description:
      - Seconds the old container gets to stop before it is killed.
    type: int
    default: 10
  shipper_state_dir:
    description:
      - Directory of rsyslog's imfile state files. The old container is removed only when its log has been read.
    type: path
    default: /var/spool/rsyslog
  shipped_timeout:
    description:
      - Seconds to wait for the shipper to read an old container's log. When it has not, the old container is kept
        (stopped, renamed) and reported in RV(kept).
    type: int
    default: 120
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Report containers with other log settings than the defaults
  dockyard.fleet.docker_log_drift:
    driver: json-file
    options: {max-size: "50m", max-file: "5"}
  register: drift

- name: Recreate the drifted web containers with the defaults
  dockyard.fleet.docker_log_drift:
    driver: json-file
    options: {max-size: "50m", max-file: "5"}
    recreate: true
    recreate_match: "^web-"
"""

RETURN = r"""
drifted:
  description: Containers whose log configuration differs from the defaults.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "legacy", "id": "3f2a...", "driver": "json-file", "options": {},
            "reasons": ["max-size not set (default 50m)", "json-file without max-size: the log grows without bound"]}]
recreated:
  description: Names of the containers recreated (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["legacy"]
kept:
  description: Renamed, stopped old containers kept because the shipper had not read their whole log in time.
  returned: always
  type: list
  elements: str
  sample: []
"""

import re

from ansible_collections.dockyard.fleet.plugins.module_utils._container_recreate import recreate_with_log_config
from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._log_shipping import log_config_drift


def drifted_containers(client, driver, options):
    drifted = []
    for summary in client.api.containers(all=True):
        info = client.api.inspect_container(summary["Id"])
        log_config = info["HostConfig"].get("LogConfig") or {}
        reasons = log_config_drift(log_config, driver, options)
        if reasons:
            drifted.append(
                {
                    "name": info["Name"].lstrip("/"),
                    "id": info["Id"],
                    "driver": log_config.get("Type"),
                    "options": log_config.get("Config") or {},
                    "reasons": reasons,
                    "running": bool(info["State"].get("Running")),
                }
            )
    return sorted(drifted, key=lambda item: item["name"])


def main():
    argument_spec = {
        "driver": {"type": "str", "required": True},
        "options": {"type": "dict", "default": {}},
        "recreate": {"type": "bool", "default": False},
        "recreate_match": {"type": "str", "default": ".*"},
        "stop_timeout": {"type": "int", "default": 10},
        "shipper_state_dir": {"type": "path", "default": "/var/spool/rsyslog"},
        "shipped_timeout": {"type": "int", "default": 120},
    }
    module = docker_module(argument_spec, supports_check_mode=True)
    try:
        match = re.compile(module.params["recreate_match"])
    except re.error as exc:
        module.fail_json(
            msg="recreate_match %r is not a regular expression: %s" % (module.params["recreate_match"], exc)
        )
    client = DockerClient(module)
    recreated, kept = [], []
    try:
        drifted = drifted_containers(client, module.params["driver"], module.params["options"])
        if module.params["recreate"]:
            for item in drifted:
                if "-logdrift-" in item["name"] or not match.search(item["name"]):
                    continue
                if module.check_mode or recreate_with_log_config(
                    client,
                    item,
                    module.params["driver"],
                    module.params["options"],
                    module.params["stop_timeout"],
                    module.params["shipper_state_dir"],
                    module.params["shipped_timeout"],
                ):
                    recreated.append(item["name"])
                else:
                    kept.append("%s-logdrift-%s" % (item["name"], item["id"][:12]))
                    recreated.append(item["name"])
    except (DockerException, RequestException) as exc:
        client.fail("reading or recreating containers failed: %s" % exc)
    module.exit_json(changed=bool(recreated), drifted=drifted, recreated=recreated, kept=kept)


if __name__ == "__main__":
    main()
