# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of dockyard.fleet.read_command: a read-only command run over the connection, without a module.

The roles make a few reads on every run (systemctl show, dpkg-query, docker volume inspect). As
ansible.builtin.command each costs the host ~0.2 s of CPU, mostly Python compiling ansible-core's module
code from the AnsiballZ zip, and the controller a payload; run through the connection as raw does, it
costs a shell and the command.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.dockyard.fleet.plugins.plugin_utils._remote_read import run_on_host, shell_words

ARGUMENT_SPEC = {"argv": {"type": "list", "elements": "str", "required": True}}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True  # a read: it runs in check mode too and reports no change
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # no remote temporary directory: nothing is copied to the host

        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        argv = args["argv"]
        if not argv:
            return dict(result, failed=True, msg="argv is empty: give the command and its arguments")

        rc, stdout, stderr = run_on_host(self, shell_words(argv))
        stdout, stderr = stdout.rstrip("\n"), stderr.rstrip("\n")
        result.update(
            changed=False,
            cmd=argv,
            rc=rc,
            stdout=stdout,
            stdout_lines=stdout.splitlines(),
            stderr=stderr,
            stderr_lines=stderr.splitlines(),
        )
        if rc != 0:
            result.update(failed=True, msg="%s exited %d: %s" % (argv[0], rc, stderr or stdout or "no output"))
        return result
