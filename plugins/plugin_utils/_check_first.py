# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The action plugins of modules that most runs find with nothing to change (host_files,
# docker_daemon_config): the controller checks first with a cheap read on the host, and only when it
# cannot answer "nothing to change" does the module run (and decide, write and report as always).

from __future__ import annotations

from ansible.plugins.action import ActionBase


class CheckFirstAction(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def unchanged_answer(self, args):
        """The module's result when the host needs no change, or None to run the module."""
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # the module's run makes its own temporary directory when it needs one
        answer = self.unchanged_answer(self._task.args)
        if answer is not None:
            result.update(answer)
            return result
        result.update(self._execute_module(task_vars=task_vars))
        return result
