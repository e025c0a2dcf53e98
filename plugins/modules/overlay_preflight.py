#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: overlay_preflight
short_description: Check, before a VXLAN overlay is applied, that a host and its peers can carry it
version_added: 0.1.0
description:
  - Run it on every host of the overlay in one task (the hosts must run it at the same time, so C(forks) at least
    the number of hosts, no C(serial)). Each host listens on the VXLAN UDP port of its underlay address, probes
    every peer there until the peer answers, and answers the peers' probes, also on the peers' VXLAN port, so
    that every datagram crosses the firewalls where VXLAN crosses them.
  - When the port is already held by a VXLAN device (this overlay exists on the host, or another overlay with
    another VNI shares the port), the host hears it through a raw socket instead, which gets a copy of every
    datagram to that port that passed the host's firewall (the VXLAN device drops the probes, which are not
    VXLAN packets), and sends from another port; the report says so in RV(preflight.probe_note). This needs
    C(CAP_NET_RAW), so run the module as root.
  - Also checks, on the host, that the underlay MTU leaves room for the overlay MTU, that IPv4 forwarding is on,
    and that a strict C(rp_filter) on the underlay interface would not drop a peer's packets.
  - The module reports and changes nothing; it never fails on a finding. Put the reports of all hosts together
    with the P(dockyard.fleet.overlay_preflight_problems#filter) filter, which names each failing pair.
  - Used by the C(dockyard.fleet.network) role before it applies M(dockyard.fleet.overlay_net).
extends_documentation_fragment:
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.info_module
options:
  name:
    description:
      - Name of the overlay; its VXLAN device is C(vx-<name>). Probes carry it and O(vni), so two preflights
        at once do not mix.
    type: str
    required: true
  vni:
    description: VXLAN network identifier of the overlay.
    type: int
    required: true
  dstport:
    description: UDP port of VXLAN.
    type: int
    default: 4789
  local_address:
    description: This host's underlay address; it must be an address of one of the host's interfaces.
    type: str
    required: true
  peers:
    description:
      - Every host of the overlay; this host may be in the list, it is skipped by address.
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The peer's underlay address.
        type: str
        required: true
      name:
        description: A name for reports.
        type: str
      subnet:
        description: Not used; accepted so the peer list of M(dockyard.fleet.overlay_net) can be passed as it is.
        type: str
  mtu:
    description: The overlay MTU to be applied; V(0) means underlay MTU minus the VXLAN overhead.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for peers that do not answer.
    type: float
    default: 10
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Probe every pair of hosts (all hosts at once)
  dockyard.fleet.overlay_preflight:
    name: ovl
    vni: 4242
    local_address: "{{ ansible_host }}"
    peers:
      - {name: host1, address: 192.0.2.11}
      - {name: host2, address: 192.0.2.12}
      - {name: host3, address: 192.0.2.13}
  register: preflight

- name: Name every failing pair
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems }}"
  vars:
    problems: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['preflight', 'preflight'])))
         | dockyard.fleet.overlay_preflight_problems(groups['docker_hosts']) }}
  run_once: true
"""

RETURN = r"""
preflight:
  description: This host's findings and the result of its probes.
  returned: always
  type: dict
  contains:
    address:
      description: The underlay address probed from and listened on.
      type: str
      sample: 192.0.2.11
    interface:
      description: The underlay interface (holding the address).
      type: str
      sample: eth0
    underlay_mtu:
      description: MTU of the underlay interface.
      type: int
      sample: 1500
    overlay_mtu:
      description: The overlay MTU (given, or computed from the underlay).
      type: int
      sample: 1450
    ip_forward:
      description: Value of net.ipv4.ip_forward.
      type: int
      sample: 1
    rp_filter:
      description: Effective rp_filter of the underlay interface (max of all and the interface).
      type: int
      sample: 2
    probe_port:
      description: The UDP port this host listened on (O(dstport)); null when it could not listen.
      type: int
      sample: 4789
    probe_note:
      description: How the host listened when a VXLAN device holds O(dstport), and which port it sent from.
      type: str
      sample: "UDP 4789 is held by vx-ovl (the overlay exists here): heard through a raw socket, sent from 40112"
    answered:
      description: Peers that answered this host's probe, with the UDP port their answer came from.
      type: dict
      sample: {192.0.2.12: 4789}
    heard:
      description: Peers whose probes reached this host.
      type: list
      elements: str
      sample: [192.0.2.12]
    problems:
      description: What fails on this host itself, one sentence each.
      type: list
      elements: str
      sample: ["net.ipv4.ip_forward = 0: containers' traffic cannot be routed to the overlay (set it to 1)"]
    seconds:
      description: How long the probing took.
      type: float
      sample: 0.62
"""

import errno
import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockyard.fleet.plugins.module_utils._overlay_preflight import (
    effective_rp_filter,
    exchange,
    forwarding_problems,
    mtu_problems,
    open_raw_listener,
    open_socket,
    probe_token,
)


def ip_json(module, *args):
    rc, out, dummy = module.run_command(["ip", "-j", *args])
    if rc != 0 or not out.strip():
        return []
    return json.loads(out)


def read_int(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def vxlan_holders(module, port):
    """{device: vni} of the VXLAN devices that use UDP `port`."""
    holders = {}
    for link in ip_json(module, "-d", "link", "show", "type", "vxlan"):
        data = (link.get("linkinfo") or {}).get("info_data") or {}
        if data.get("port") == port:
            holders[link["ifname"]] = data.get("id")
    return holders


def listen(module, report):
    """(UDP socket, raw socket or None) to probe and answer on; (None, None) when the port cannot be heard.

    The UDP socket binds the VXLAN port. When a VXLAN device holds it, a raw socket hears the port and
    the UDP socket binds any free port, to send from.
    """
    params = module.params
    address, port = params["local_address"], params["dstport"]
    sock, error = open_socket(address, port)
    if sock:
        report["probe_port"] = port
        return sock, None
    if error.errno == errno.EADDRNOTAVAIL:
        report["problems"].append("underlay address %s is not an address of this host" % address)
        return None, None
    holders = vxlan_holders(module, port) if error.errno == errno.EADDRINUSE else {}
    own = "vx-%s" % params["name"]
    same_vni = [dev for dev, vni in holders.items() if vni == params["vni"] and dev != own]
    if same_vni:
        report["problems"].append(
            "VXLAN device %s already uses VNI %d on UDP %d: choose another network_vni"
            % (same_vni[0], params["vni"], port)
        )
        return None, None
    if not holders:
        report["problems"].append(
            "UDP %d on %s is in use by another program (not a VXLAN device): %s" % (port, address, error.strerror)
        )
        return None, None
    devices = ", ".join(sorted(holders))
    raw, error = open_raw_listener(address, port)
    if not raw:
        report["problems"].append(
            "UDP %d is held by %s; hearing it beside the device needs a raw socket, which failed (run as root, "
            "CAP_NET_RAW): %s" % (port, devices, error.strerror)
        )
        return None, None
    sock, error = open_socket(address, 0)
    if not sock:
        raw.close()
        report["problems"].append("no UDP port to send from on %s: %s" % (address, error.strerror))
        return None, None
    why = "the overlay exists here" if own in holders else "VXLAN device %s shares it" % devices
    report["probe_port"] = port
    report["probe_note"] = "UDP %d is held by %s (%s): heard through a raw socket, sent from %d" % (
        port,
        devices,
        why,
        sock.getsockname()[1],
    )
    return sock, raw


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "vni": {"type": "int", "required": True},
            "dstport": {"type": "int", "default": 4789},
            "local_address": {"type": "str", "required": True},
            "peers": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "address": {"type": "str", "required": True},
                    "name": {"type": "str"},
                    "subnet": {"type": "str"},
                },
            },
            "mtu": {"type": "int", "default": 0},
            "timeout": {"type": "float", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    address = params["local_address"]
    peers = sorted({p["address"] for p in params["peers"] if p["address"] != address})
    report = {
        "address": address,
        "interface": None,
        "underlay_mtu": None,
        "overlay_mtu": None,
        "ip_forward": read_int("/proc/sys/net/ipv4/ip_forward"),
        "rp_filter": None,
        "probe_port": None,
        "probe_note": "",
        "answered": {},
        "heard": [],
        "problems": [],
        "seconds": 0.0,
    }
    links = [
        link
        for link in ip_json(module, "addr", "show")
        if any(a.get("local") == address for a in link.get("addr_info") or [])
    ]
    if links:
        interface = report["interface"] = links[0]["ifname"]
        report["underlay_mtu"] = links[0]["mtu"]
        report["overlay_mtu"], problems = mtu_problems(links[0]["mtu"], interface, address, params["mtu"])
        report["problems"] += problems
        report["rp_filter"] = effective_rp_filter(
            read_int("/proc/sys/net/ipv4/conf/all/rp_filter"),
            read_int("/proc/sys/net/ipv4/conf/%s/rp_filter" % interface),
        )
        routes = {}
        if report["rp_filter"] == 1:
            for peer in peers:
                route = ip_json(module, "route", "get", peer)
                routes[peer] = route[0].get("dev") if route else None
        report["problems"] += forwarding_problems(report["ip_forward"], report["rp_filter"], interface, routes)
    sock, raw = listen(module, report)
    if sock:
        started = time.monotonic()
        token = probe_token(params["name"], params["vni"])
        try:
            answered, heard = exchange(sock, peers, params["dstport"], token, params["timeout"], raw=raw)
        finally:
            sock.close()
            if raw:
                raw.close()
        report["answered"] = answered
        report["heard"] = sorted(heard)
        report["seconds"] = round(time.monotonic() - started, 2)
    module.exit_json(changed=False, preflight=report)


if __name__ == "__main__":
    main()
