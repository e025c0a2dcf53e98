# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# systemctl show output as data, on the controller: a thin wrapper over
# plugins/module_utils/_systemd_show.py (which the unit tests cover).

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.dockyard.fleet.plugins.module_utils._systemd_show import SystemdShowError, parse_show


def systemd_units(text):
    try:
        return parse_show(text or "")
    except SystemdShowError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"systemd_units": systemd_units}
