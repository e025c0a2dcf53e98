#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_release_info
short_description: Current release and release history of apps on a host
version_added: 0.1.0
description:
  - Reads the release history that M(dockyard.fleet.docker_release) keeps on the managed host
    (C(/var/lib/dockyard/releases/<name>.json)) and whether the current release's container runs.
  - Histories hold versions, digests and hashes, never secret values.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.info_module
  - dockyard.fleet.attributes.actiongroup_docker
options:
  name:
    description:
      - Apps to report. All apps with a history on the host when not given.
    type: list
    elements: str
    default: []
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Read the release history of the web app
  dockyard.fleet.docker_release_info:
    name: [web]
  register: web_releases

- name: Show the running version
  ansible.builtin.debug:
    msg: "{{ web_releases.apps.web.current.version }}"
"""

RETURN = r"""
apps:
  description: Per app, its current release, whether its container runs, and its history (oldest first).
  returned: always
  type: dict
  sample:
    web:
      exists: true
      current: {id: 20261128T174455123-3f9c2a1e, version: 3f9c2a1e, outcome: succeeded}
      running: true
      container: web-20261128T174455123-3f9c2a1e
      history: []
"""

import glob
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._release_history import (
    HISTORY_DIR,
    current_record,
    load_history,
    public_record,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._release_runner import ReleaseRunner


def app_names(requested):
    if requested:
        return requested
    return sorted(os.path.basename(p)[: -len(".json")] for p in glob.glob(os.path.join(HISTORY_DIR, "*.json")))


def app_report(client, app):
    path = os.path.join(HISTORY_DIR, "%s.json" % app)
    history = load_history(path, app)
    current = current_record(history)
    running = bool(current and ReleaseRunner(client, app).running_container(current["id"]))
    report = {
        "exists": os.path.exists(path),
        "current": public_record(current) if current else None,
        "running": running,
        "history": [public_record(r) for r in history["releases"]],
    }
    if current:
        report["container"] = "%s-%s" % (app, current["id"])
    return report


def main():
    module = docker_module({"name": {"type": "list", "elements": "str", "default": []}}, supports_check_mode=True)
    client = DockerClient(module)
    try:
        apps = {app: app_report(client, app) for app in app_names(module.params["name"])}
    except (DockerException, RequestException) as exc:
        client.fail("reading containers failed: %s" % exc)
    module.exit_json(changed=False, apps=apps)


if __name__ == "__main__":
    main()
