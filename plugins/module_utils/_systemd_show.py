# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The output of `systemctl show --property=Id,ActiveState,UnitFileState[,ActiveEnterTimestamp] UNIT...`
# read into one mapping per unit. The roles read the state of their units in one command and run
# systemd_service only for a unit that is not running or not enabled: systemd_service reads a unit in
# several systemctl calls on every run, and service_facts lists every unit of the host.

from __future__ import annotations


class SystemdShowError(ValueError):
    pass


def _timestamp_seconds(value):
    """Whole seconds of a `--timestamp=unix` value (`@1733490000`); 0 when empty or another format."""
    if value.startswith("@") and value[1:].split(".")[0].isdigit():
        return int(value[1:].split(".")[0])
    return 0


def parse_show(text):
    """{unit Id: {properties..., running, enabled, up, active_since}} from `systemctl show` output.

    systemctl prints one block of Key=Value lines per unit, blocks separated by an empty line, in the
    order of the units given; the Id property names each block, so it must be among the properties.
    running: ActiveState is active; enabled: UnitFileState is enabled; up: both.
    active_since: ActiveEnterTimestamp in seconds (with --timestamp=unix), 0 when unknown.
    """
    units = {}
    for block in text.strip().split("\n\n"):
        if not block.strip():
            continue
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        unit_id = properties.get("Id")
        if not unit_id:
            raise SystemdShowError("a block of systemctl show output has no Id (add Id to --property): %r" % block)
        running = properties.get("ActiveState") == "active"
        enabled = properties.get("UnitFileState") == "enabled"
        units[unit_id] = dict(
            properties,
            running=running,
            enabled=enabled,
            up=running and enabled,
            active_since=_timestamp_seconds(properties.get("ActiveEnterTimestamp", "")),
        )
    return units
