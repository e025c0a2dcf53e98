#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: overlay_net_info
short_description: Read an overlay's plan on one host and the host's underlay
version_added: 0.1.0
description:
  - Reads, on one host, the plan that M(dockyard.fleet.overlay_net) persisted for the overlay O(name)
    in C(/etc/dockyard/overlay/<name>.json) (mode, subnet, ip-range, cluster CIDR, peers, MTU), and the
    host's underlay from its main routing table (the default route's interface and its connected subnet).
  - The C(dockyard.fleet.network) role uses it to keep each host's subnet when hosts join or leave and to
    refuse a cluster CIDR over the underlay, in one module run per host.
  - Read-only, and needs neither Docker nor gathered facts.
extends_documentation_fragment:
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.info_module
options:
  name:
    description:
      - Name of the overlay, as given to M(dockyard.fleet.overlay_net).
    type: str
    required: true
seealso:
  - module: dockyard.fleet.overlay_net
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Read the overlay's plan and the underlay
  dockyard.fleet.overlay_net_info:
    name: ovl
  register: overlay_info

- name: Keep the subnet this host had
  ansible.builtin.debug:
    msg: "{{ overlay_info.plan.subnet | default('no plan yet') }} on {{ overlay_info.underlay.cidr }}"
"""

RETURN = r"""
plan:
  description:
    - The persisted plan of the overlay, as M(dockyard.fleet.overlay_net) wrote it; empty when there is none.
  returned: always
  type: dict
  sample: {"name": "ovl", "mode": "l3", "vni": 4242, "subnet": "10.216.1.0/24", "cluster_cidr": "10.216.0.0/16"}
underlay:
  description: The host's underlay, from its main routing table.
  returned: always
  type: dict
  contains:
    interface:
      description: The default route's interface; empty without a default route.
      type: str
      sample: eth0
    cidr:
      description: The subnet connected on that interface (the kernel's link route); empty when it has none.
      type: str
      sample: 172.29.83.0/24
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockyard.fleet.plugins.module_utils._overlay import CONF_DIR, underlay_of


def read_plan(module, name):
    path = os.path.join(CONF_DIR, "%s.json" % name)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read the overlay's plan %s: %s (remove it to start a new plan)" % (path, exc))


def read_routes(module):
    rc, out, err = module.run_command(["ip", "-json", "-4", "route", "show", "table", "main"])
    if rc != 0:
        module.fail_json(msg="ip -json -4 route show table main failed (rc %d): %s" % (rc, err.strip()))
    return json.loads(out or "[]")


def main():
    module = AnsibleModule(argument_spec={"name": {"type": "str", "required": True}}, supports_check_mode=True)
    interface, cidr = underlay_of(read_routes(module))
    module.exit_json(
        changed=False,
        plan=read_plan(module, module.params["name"]),
        underlay={"interface": interface, "cidr": cidr},
    )


if __name__ == "__main__":
    main()
