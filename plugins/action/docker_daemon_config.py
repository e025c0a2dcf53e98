# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of dockyard.fleet.docker_daemon_config: merge on the controller, run the module only for a change.

Most runs change no key of daemon.json. The controller reads the file (cat) and merges the settings
with the module's own code (module_utils/_daemon_config.py); when no key changes it answers as the
module would, and a no-change run costs the host a cat instead of a Python module run (about 0.2 s
of CPU). A change, a file it cannot read or parse, or unusual arguments run the module, which
validates, writes and reports as always.
"""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.dockyard.fleet.plugins.module_utils._daemon_config import (
    DaemonConfigError,
    changed_keys,
    merge,
    outcome,
    parse,
    render,
)
from ansible_collections.dockyard.fleet.plugins.plugin_utils._check_first import CheckFirstAction
from ansible_collections.dockyard.fleet.plugins.plugin_utils._remote_read import run_on_host, shell_words

DEFAULT_PATH = "/etc/docker/daemon.json"


def unchanged_result(path, text, args):
    """The module's result for a run that changes nothing, or None when the merge changes a key (or cannot tell)."""
    settings, remove = args.get("settings") or {}, args.get("remove") or []
    if not isinstance(settings, dict) or not isinstance(remove, list):
        return None
    try:
        before = parse(text, path)
        after = merge(before, settings, remove, boolean(args.get("live_restore", True), strict=True))
    except (DaemonConfigError, TypeError, ValueError):
        return None
    if changed_keys(before, after):
        return None
    return outcome(path, text, before, after, render(after))


class ActionModule(CheckFirstAction):
    def unchanged_answer(self, args):
        path = args.get("path") or DEFAULT_PATH
        if not isinstance(path, str) or not path.startswith("/"):
            return None
        rc, text = run_on_host(self, "cat -- " + shell_words([path]))[:2]
        return unchanged_result(path, text, args) if rc == 0 else None
