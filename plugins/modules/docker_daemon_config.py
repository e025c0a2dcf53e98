#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_daemon_config
short_description: Merge settings into /etc/docker/daemon.json, keeping every other key, and say if dockerd must restart
version_added: 0.1.0
description:
  - The one writer of C(daemon.json) in this collection. The logging role (log defaults), the registry role
    (mirrors, registry trust) and the network role give it their keys; it merges them into the file, keeps
    every key it was not given, checks the result the way dockerd does, and writes it atomically.
  - Nested mappings such as C(log-opts) are merged key by key; lists and scalars are replaced.
  - It never restarts dockerd itself. It returns RV(restart_needed) (a changed key dockerd only reads at start,
    such as C(log-driver)) and RV(reload_needed) (only keys dockerd re-reads on SIGHUP, such as
    C(registry-mirrors)), so a handler restarts or reloads once, at the end of the play.
  - By default it turns C(live-restore) on, so that restart leaves the containers running. When it turns it on
    with a change that needs a restart, RV(reload_first) says to reload dockerd before restarting it.
  - dockerd refuses to start on an unknown key, a non-string C(log-opts) value, or a key also given as a flag
    on its command line; the module fails on those before writing, naming the key and the value.
  - The controller merges first, with the module's own code, from the file read with C(cat); when no key changes,
    the module does not run, and a no-change run costs the host a C(cat) instead of a Python module run. A change,
    or a file the controller cannot read or parse, runs the module as described.
author:
  - dockyard.fleet maintainers (@dockyard)
extends_documentation_fragment:
  - dockyard.fleet.attributes
attributes:
  action:
    description: An action plugin merges on the controller first, then runs the module when a key changes.
    support: full
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the file before and after.
  idempotent:
    support: full
options:
  path:
    description: The daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description:
      - Top-level keys to set. A mapping value is merged into the mapping already there (C(log-opts)); any other
        value replaces the one there.
      - Give C(log-opts) values as strings (V("3"), not V(3)), as dockerd requires.
    type: dict
    default: {}
  remove:
    description: Top-level keys to drop from the file.
    type: list
    elements: str
    default: []
  live_restore:
    description:
      - Make sure C(live-restore) is V(true), so a dockerd restart keeps containers running.
      - V(false) leaves the key as it is (or as O(settings) sets it).
    type: bool
    default: true
  allow_unknown_keys:
    description:
      - Accept keys this module does not know as dockerd options (a newer dockerd's). dockerd itself refuses
        unknown keys, so the default fails early instead.
    type: bool
    default: false
  backup:
    description: Keep a copy of the previous file beside it (C(daemon.json.<timestamp>~)) when it changes.
    type: bool
    default: false
notes:
  - When the dockerd binary on the host knows C(--validate) (Docker 23 and later), the merged file is also
    checked by dockerd itself before it is written.
seealso:
  - name: dockerd configuration file
    description: Every key and which of them are reloaded on SIGHUP.
    link: https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file
"""

EXAMPLES = r"""
- name: Docker log defaults (restarts dockerd through the handlers only when they change)
  dockyard.fleet.docker_daemon_config:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 50m
        max-file: "5"
  register: daemon_config
  notify: Apply daemon.json

# handlers: run in this order; the reload first turns live-restore on, so the restart keeps containers
- name: Reload docker
  ansible.builtin.systemd_service:
    name: docker
    state: reloaded
  when: daemon_config.reload_needed or daemon_config.reload_first
  listen: Apply daemon.json

- name: Restart docker
  ansible.builtin.systemd_service:
    name: docker
    state: restarted
  when: daemon_config.restart_needed
  listen: Apply daemon.json

- name: A pull-through mirror (a reload is enough)
  dockyard.fleet.docker_daemon_config:
    settings:
      registry-mirrors: ["https://mirror.example.com:5000"]
  register: daemon_config
  notify: Reload docker

- name: Drop a key another tool left
  dockyard.fleet.docker_daemon_config:
    remove: [debug]
"""

RETURN = r"""
config:
  description: The merged configuration (what the file holds after the task, or would in check mode).
  returned: always
  type: dict
  sample: {"live-restore": true, "log-driver": "json-file", "log-opts": {"max-size": "50m"}}
changed_keys:
  description: Top-level keys whose value changed.
  returned: always
  type: list
  elements: str
  sample: [log-opts]
restart_needed:
  description: A changed key is read by dockerd only at start; restart dockerd (safe with live-restore).
  returned: always
  type: bool
reload_needed:
  description: Only keys dockerd re-reads on SIGHUP changed; C(systemctl reload docker) applies them.
  returned: always
  type: bool
reload_first:
  description:
    - This change turns C(live-restore) on and needs a restart. Reload dockerd first (it reads C(live-restore)
      on SIGHUP), then restart it; a restart alone stops every running container once, on the first run on a host.
  returned: always
  type: bool
backup_file:
  description: The copy of the previous file, with O(backup=true) when the file changed.
  returned: changed and backup
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockyard.fleet.plugins.module_utils._daemon_config import (
    DaemonConfigError,
    changed_keys,
    flag_conflicts,
    merge,
    outcome,
    parse,
    render,
    validate,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._files import read_text, write_atomically


def dockerd_cmdline():
    """The running dockerd's arguments ([] when none runs)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0].decode(errors="replace")) == "dockerd":
            return [a.decode(errors="replace") for a in args[1:] if a]
    return []


def dockerd_validate(module, text):
    """dockerd's own check of the file, when this dockerd has --validate (23+); None when it has not."""
    dockerd = module.get_bin_path("dockerd")
    if not dockerd:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        handle.write(text)
        handle.flush()
        rc, out, err = module.run_command([dockerd, "--validate", "--config-file", handle.name])
    output = (out + err).strip()
    if rc != 0 and "unknown flag" in output:
        return None
    return None if rc == 0 else output


def check(module, config, text):
    params = module.params
    validate(config, allow_unknown=params["allow_unknown_keys"])
    conflicts = flag_conflicts(config, dockerd_cmdline())
    if conflicts:
        raise DaemonConfigError(
            "%s also given as flags on the running dockerd's command line; dockerd refuses both: "
            "remove them from the unit or from the file" % ", ".join(conflicts)
        )
    refused = dockerd_validate(module, text)
    if refused:
        raise DaemonConfigError("dockerd --validate refuses the merged file: %s" % refused)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "settings": {"type": "dict", "default": {}},
            "remove": {"type": "list", "elements": "str", "default": []},
            "live_restore": {"type": "bool", "default": True},
            "allow_unknown_keys": {"type": "bool", "default": False},
            "backup": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    before_text = read_text(path)
    try:
        before = parse(before_text, path)
        after = merge(before, params["settings"], params["remove"], params["live_restore"])
        after_text = render(after)
        keys = changed_keys(before, after)
        if keys:
            check(module, after, after_text)
    except DaemonConfigError as exc:
        module.fail_json(msg=str(exc))
    result = outcome(path, before_text, before, after, after_text)
    if keys and not module.check_mode:
        if params["backup"] and before_text is not None:
            result["backup_file"] = module.backup_local(path)
        mode = os.stat(path).st_mode & 0o7777 if before_text is not None else 0o644
        try:
            write_atomically(path, after_text, mode=mode)
        except OSError as exc:
            module.fail_json(msg="writing %s failed: %s" % (path, exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
