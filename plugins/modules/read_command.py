#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The work is done by the action plugin of the same name (plugins/action/read_command.py) on the
# controller: nothing of this file runs on a host. It holds the documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: read_command
short_description: Run a read-only command on a host without shipping a Python module to it
version_added: 0.1.0
description:
  - Runs one command, given as an argument vector, on the host and returns its exit code, standard output and
    standard error, as M(ansible.builtin.command) does with C(changed_when=false) and C(check_mode=false).
  - It runs the command over the connection directly, as M(ansible.builtin.raw) does, with no Python module. A
    M(ansible.builtin.command) run costs the host about 0.2 s of CPU (Python starting and compiling ansible-core's
    module code from the module's zip) and the controller a module payload to build and send; this one costs a
    shell and the command. The collection's roles use it for the reads they make on every run (unit states,
    package states, Docker volumes), where that cost adds up over a fleet.
  - For reads only. It never reports a change and runs in check mode too. Use M(ansible.builtin.command) for
    commands that change the host.
  - Unlike M(ansible.builtin.raw), each argument is quoted for the remote shell (no shell syntax is
    interpreted), no terminal is allocated (standard error stays apart from standard output, and no pager
    starts), and a non-zero exit code fails the task (C(failed_when) overrides it).
  - The host needs a POSIX shell (C(/bin/sh)), not Python.
author:
  - dockyard.fleet maintainers (@dockyard)
extends_documentation_fragment:
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.INFO_MODULE
attributes:
  action:
    description: Runs on the controller, as an action plugin.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  argv:
    description: The command and its arguments; each item is one argument.
    type: list
    elements: str
    required: true
notes:
  - Like M(ansible.builtin.raw), the task's C(environment) does not apply; C(become) does.
seealso:
  - module: ansible.builtin.command
  - module: ansible.builtin.raw
"""

EXAMPLES = r"""
- name: Read rsyslog's state
  dockyard.fleet.read_command:
    argv: [systemctl, show, "--property=Id,ActiveState,UnitFileState", rsyslog.service]
  register: rsyslog_show

- name: Run rsyslog when it is not running or not enabled
  ansible.builtin.systemd_service:
    name: rsyslog
    state: started
    enabled: true
  when: not (rsyslog_show.stdout | dockyard.fleet.systemd_units)['rsyslog.service'].up

- name: Read a Docker volume; a missing one exits 1
  dockyard.fleet.read_command:
    argv: [docker, volume, inspect, uploads]
  register: uploads_inspect
  failed_when: uploads_inspect.rc not in [0, 1]
"""

RETURN = r"""
cmd:
  description: The command as run, one item per argument.
  returned: always
  type: list
  elements: str
  sample: [systemctl, show, --property=Id, rsyslog.service]
rc:
  description: The command's exit code.
  returned: always
  type: int
  sample: 0
stdout:
  description: Its standard output, with the trailing newline removed.
  returned: always
  type: str
  sample: Id=rsyslog.service
stdout_lines:
  description: O(argv)'s standard output, split into lines.
  returned: always
  type: list
  elements: str
  sample: [Id=rsyslog.service]
stderr:
  description: Its standard error, with the trailing newline removed.
  returned: always
  type: str
  sample: ""
stderr_lines:
  description: Its standard error, split into lines.
  returned: always
  type: list
  elements: str
  sample: []
"""
