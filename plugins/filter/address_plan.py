# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Address plans for overlays, on the controller: thin wrappers over
# plugins/module_utils/_address_plan.py (which the unit tests cover).

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.dockyard.fleet.plugins.module_utils._address_plan import (
    PlanError,
    address_at,
    allocate_subnets,
    check_physical,
    check_port_plan,
    check_services,
    macvlan_differences,
    parse_containers,
    parse_listeners,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._overlay_preflight import preflight_problems


def overlay_subnets(hosts, cluster_cidr, host_prefix, existing=None, reserved=None):
    try:
        return allocate_subnets(cluster_cidr, host_prefix, list(hosts), existing or {}, reserved or [])
    except PlanError as exc:
        raise AnsibleFilterError(str(exc)) from None


def overlay_service_problems(plan, services):
    return check_services(plan, services)


def overlay_address(subnet, offset):
    try:
        return address_at(subnet, offset)
    except PlanError as exc:
        raise AnsibleFilterError(str(exc)) from None


def physical_plan_problems(plan, subnet, gateway, host_addresses):
    try:
        return check_physical(plan, subnet, gateway, host_addresses)
    except PlanError as exc:
        return [str(exc)]


def docker_network_differences(inspect, wanted):
    return macvlan_differences(inspect, wanted)


def port_plan_problems(services, host, ss_output, ps_output):
    return check_port_plan(host, services, parse_listeners(ss_output), parse_containers(ps_output))


def overlay_preflight_problems(reports, hosts):
    return preflight_problems(dict(reports), list(hosts))


class FilterModule:
    def filters(self):
        return {
            "overlay_subnets": overlay_subnets,
            "overlay_service_problems": overlay_service_problems,
            "overlay_address": overlay_address,
            "overlay_preflight_problems": overlay_preflight_problems,
            "physical_plan_problems": physical_plan_problems,
            "docker_network_differences": docker_network_differences,
            "port_plan_problems": port_plan_problems,
        }
