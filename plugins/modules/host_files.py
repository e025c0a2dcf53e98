#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_files
short_description: Keep a set of directories and small text files on a host in one module run
version_added: 0.1.0
description:
  - Makes the directories and writes the files a role keeps on a host (configs, systemd units, keys), each with
    its mode and owner, and reports which of them changed. Files are written atomically (a temporary file
    beside the target, fsynced, renamed over it).
  - One module run for all of them. With M(ansible.builtin.template), M(ansible.builtin.copy) and
    M(ansible.builtin.file), every file costs two module runs on every play run, changed or not (a stat, then
    the file module for its mode), about 0.2 s of CPU each on the host.
  - Each item can carry O(files[].tags); RV(changed_tags) lists the tags of the items that changed, so a role
    notifies the right handler for each group of files (see the examples).
  - Content is rendered on the controller (M(ansible.builtin.template) lookups, M(ansible.builtin.file)
    lookups for files of the role); this module only compares and writes text.
  - The controller checks first, with one shell command on the host (C(stat) and C(sha256sum) of every path);
    when every directory and file is as wanted, the module does not run at all, and a no-change run costs the
    host a C(stat) instead of a Python module run. When one differs, or the check cannot tell (no GNU C(stat),
    a path with a backslash or newline, bad input), the module runs, plans, validates and writes as described.
author:
  - dockyard.fleet maintainers (@dockyard)
extends_documentation_fragment:
  - dockyard.fleet.attributes
attributes:
  action:
    description: An action plugin runs on the controller first (the check above), then the module when needed.
    support: full
  check_mode:
    support: full
  diff_mode:
    support: full
    details: One diff per changed file (the text before and after); secret files and files over 64 KiB show no text.
  idempotent:
    support: full
options:
  directories:
    description: Directories to make (with their parents), in order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      mode:
        description: Its mode, as an octal string such as V("0755").
        type: str
        required: true
      owner:
        description: User name or uid; left as it is when not given.
        type: str
      group:
        description: Group name or gid; left as it is when not given.
        type: str
      tags:
        description: Reported in RV(changed_tags) when this directory changed.
        type: list
        elements: str
        default: []
  files:
    description: Files to write. Their directories must exist or be in O(directories).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The file.
        type: path
        required: true
      content:
        description:
          - Its text. Exactly one of O(files[].content), O(files[].secret_content) and O(files[].content_base64).
        type: str
      content_base64:
        description:
          - Its bytes, base64-encoded, for a binary file (a zip application, an archive). Compared byte for byte;
            the diff shows sizes only. Suits files of up to a few MB (the module's arguments carry them on every run).
        type: str
      secret_content:
        description:
          - Its text, for a file that holds a secret. Never printed (masked in Ansible's output) and never in
            the diff. Give such files a mode such as V("0600").
        type: str
      mode:
        description: Its mode, as an octal string such as V("0644").
        type: str
        required: true
      owner:
        description: User name or uid; left as it is (root for a new file) when not given.
        type: str
      group:
        description: Group name or gid; left as it is when not given.
        type: str
      validate:
        description:
          - A command that checks the new content before it replaces the file, as in M(ansible.builtin.template);
            V(%s) is the complete new file (a temporary file beside the target, with its mode and owner). Run
            without a shell. A non-zero exit fails the task naming the path and the command's output, and the
            file stays as it was; items before it in the list are written, items after it are not.
          - Files are written in the order of the list, so a validator script can be an earlier item.
          - Not run in check mode (nothing is written).
        type: str
      force:
        description: V(false) writes the file only when it is missing, and then leaves it to the host.
        type: bool
        default: true
      tags:
        description: Reported in RV(changed_tags) when this file changed.
        type: list
        elements: str
        default: []
notes:
  - A path that exists as something else (a file where a directory is wanted, a symlink, a directory where a
    file is wanted) fails the task, naming the path; nothing is replaced.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the registry's config, units and keys
  dockyard.fleet.host_files:
    directories:
      - {path: /etc/dockyard/registry, mode: "0755"}
      - {path: /etc/dockyard/registry/auth, mode: "0700"}
    files:
      - path: /etc/dockyard/registry/config.yml
        secret_content: "{{ lookup('ansible.builtin.template', 'config.yml.j2') }}"
        mode: "0600"
        tags: [registry]
      - path: /etc/systemd/system/dockyard-registry.service
        content: "{{ lookup('ansible.builtin.template', 'container.service.j2') }}"
        mode: "0644"
        tags: [registry]
  register: registry_files

- name: Restart the registry for its new config or unit
  ansible.builtin.debug:
    msg: "{{ registry_files.changes }}"
  changed_when: true
  when: "'registry' in registry_files.changed_tags"
  notify: Restart registry

- name: A validated config (its validator written first, in the same run) and a binary file
  dockyard.fleet.host_files:
    files:
      - path: /usr/local/sbin/check-app-config
        content: "{{ lookup('ansible.builtin.file', 'check-app-config') }}"
        mode: "0755"
      - path: /etc/app/app.conf
        content: "{{ lookup('ansible.builtin.template', 'app.conf.j2') }}"
        mode: "0644"
        validate: /usr/local/sbin/check-app-config %s
        tags: [app]
      - path: /usr/local/lib/app/app.pyz
        content_base64: "{{ app_bundle.content }}"  # from ansible.builtin.slurp on the controller
        mode: "0644"
        tags: [app]
"""

RETURN = r"""
changed_paths:
  description: The directories and files that were (in check mode, would be) made or changed, in order.
  returned: always
  type: list
  elements: str
  sample: [/etc/dockyard/registry/config.yml]
changed_tags:
  description: The tags of the changed items, sorted, each once.
  returned: always
  type: list
  elements: str
  sample: [registry]
changes:
  description: Per changed path, what changed (V(created), V(content), V(mode 0644 -> 0600), owner, group).
  returned: always
  type: dict
  sample: {"/etc/dockyard/registry/config.yml": ["content"]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockyard.fleet.plugins.module_utils._host_files import HostFilesError, sync

ITEM_COMMON = {
    "path": {"type": "path", "required": True},
    "mode": {"type": "str", "required": True},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "tags": {"type": "list", "elements": "str", "default": []},
}


def main():
    file_options = dict(ITEM_COMMON)
    file_options.update(
        content={"type": "str"},
        secret_content={"type": "str", "no_log": True},
        content_base64={"type": "str"},
        validate={"type": "str"},
        force={"type": "bool", "default": True},
    )
    module = AnsibleModule(
        argument_spec={
            "directories": {"type": "list", "elements": "dict", "default": [], "options": ITEM_COMMON},
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": file_options,
                "mutually_exclusive": [["content", "secret_content", "content_base64"]],
                "required_one_of": [["content", "secret_content", "content_base64"]],
            },
        },
        supports_check_mode=True,
    )
    try:
        result = sync(module.params["directories"], module.params["files"], module.check_mode)
    except HostFilesError as exc:
        module.fail_json(msg="host_files: %s" % exc)
    except OSError as exc:
        module.fail_json(msg="host_files: %s: %s" % (exc.filename or "", exc.strerror or exc))
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(changed=bool(result["changed_paths"]), **result)


if __name__ == "__main__":
    main()
