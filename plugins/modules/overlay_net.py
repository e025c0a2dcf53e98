#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: overlay_net
short_description: A VXLAN overlay between Docker hosts, with a Docker network bound to it
version_added: 0.1.0
description:
  - Creates, updates and removes, on one host, a VXLAN device with static forwarding entries for every peer
    (no multicast), the routing of the chosen mode, the firewall rules the overlay needs, and a Docker network
    on it, so C(docker run --network NAME --ip FIXED) reaches containers on other hosts directly.
  - V(l3) mode (default, like flannel's vxlan backend) gives each host its own subnet of the cluster CIDR and
    routes the peers' subnets through the VXLAN device. V(l2) mode shares one subnet; each host hands out
    addresses from its own ip-range and the VXLAN device joins the Docker network's bridge.
  - O(attach=macvlan) (with V(l2) mode) puts containers on the VXLAN device itself as macvlan interfaces, with no
    veth pair and no bridge on either side, the fastest path between containers of different hosts. The host
    joins the segment with its own macvlan interface C(mv-<name>) holding the gateway address, so containers
    reach their host and, masqueraded, the world.
  - Adding or removing a peer changes only that peer's entries; the device is not recreated, so containers
    keep their connectivity. Changing the VNI, port or local address recreates the device.
  - The state is kept in C(/etc/dockyard/overlay/<name>.sh) (an idempotent script) and re-applied at boot
    by the systemd unit C(dockyard-overlay-<name>.service) (after dockerd; before it with O(attach=macvlan),
    since Docker needs the device to start such containers).
  - Use the C(dockyard.fleet.network) role to compute subnets and peers from an inventory group.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the peers, routes, forwarding entries and device settings before and after.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the overlay and of its Docker network. The VXLAN device is C(vx-<name>), the bridge C(br-<name>).
    type: str
    required: true
  state:
    description:
      - V(absent) removes the Docker network (refused while containers use it), the device, the firewall rules
        and the boot unit of this overlay, and nothing else.
    type: str
    default: present
    choices: [present, absent]
  mode:
    description:
      - V(l3) routes per-host subnets; V(l2) bridges one shared subnet.
    type: str
    default: l3
    choices: [l3, l2]
  attach:
    description:
      - How containers join the overlay. V(bridge) through a veth pair and the Docker bridge C(br-<name>).
      - V(macvlan) as macvlan interfaces on the VXLAN device (Docker's macvlan driver, parent C(vx-<name>)),
        with the host's interface C(mv-<name>) at the gateway address. Needs O(mode=l2). The VXLAN device
        learns the containers' MACs from their traffic (BUM and unknown unicast go to every peer).
    type: str
    default: bridge
    choices: [bridge, macvlan]
  vni:
    description:
      - VXLAN network identifier, 1 to 16777215. Required with O(state=present).
    type: int
  dstport:
    description:
      - UDP port of VXLAN on the underlay.
    type: int
    default: 4789
  underlay_interface:
    description:
      - Interface the VXLAN packets leave by. The interface holding O(local_address), else the one of the
        default route.
    type: str
  local_address:
    description:
      - This host's underlay address. The first address of O(underlay_interface) when not given.
    type: str
  subnet:
    description:
      - V(l3) mode, this host's subnet (from the cluster CIDR); V(l2) mode, the overlay's one subnet.
        Required with O(state=present).
    type: str
  ip_range:
    description:
      - V(l2) mode only (required there), the part of O(subnet) this host gives to its containers.
    type: str
  cluster_cidr:
    description:
      - V(l3) mode only (required there), the CIDR all hosts' subnets come from. Traffic to it is not masqueraded.
    type: str
  peers:
    description:
      - The other hosts of the overlay. This host may be in the list; it is skipped.
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The peer's underlay address.
        type: str
        required: true
      subnet:
        description: The peer's subnet (V(l3) mode).
        type: str
      name:
        description: A name for reports.
        type: str
  mtu:
    description:
      - MTU of the device, the bridge and the Docker network. Underlay MTU minus 50 (IPv4) or 70 (IPv6) when
        not given.
    type: int
  masquerade:
    description:
      - V(l3) mode and O(attach=macvlan), masquerade traffic from the containers that leaves the cluster (never
        traffic between hosts of the overlay). V(l2) mode with O(attach=bridge) leaves that to Docker's own rule.
    type: bool
    default: true
  persist:
    description:
      - Install and enable the systemd unit that re-applies the overlay at boot.
    type: bool
    default: true
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Join the overlay (subnets and peers usually come from the dockyard.fleet.network role)
  dockyard.fleet.overlay_net:
    name: ovl
    vni: 4242
    cluster_cidr: 10.244.0.0/16
    subnet: 10.244.1.0/24
    peers:
      - {address: 192.0.2.12, subnet: 10.244.2.0/24}
      - {address: 192.0.2.13, subnet: 10.244.3.0/24}

- name: One subnet across hosts, containers as macvlan on the VXLAN device (no veth, no bridge)
  dockyard.fleet.overlay_net:
    name: ovm
    vni: 4243
    mode: l2
    attach: macvlan
    subnet: 10.245.0.0/16
    ip_range: 10.245.1.0/24
    peers:
      - {address: 192.0.2.12}
      - {address: 192.0.2.13}

- name: Leave it
  dockyard.fleet.overlay_net:
    name: ovl
    state: absent
"""

RETURN = r"""
overlay:
  description: The overlay as applied (or, in check mode, as it would be).
  returned: state=present
  type: dict
  contains:
    device:
      description: The VXLAN device.
      type: str
      sample: vx-ovl
    bridge:
      description: The bridge of the Docker network (none with O(attach=macvlan)).
      type: str
      sample: br-ovl
    host_interface:
      description: With O(attach=macvlan), the host's macvlan interface on the overlay, holding the gateway.
      type: str
      sample: mv-ovm
    mtu:
      description: MTU of device, bridge and Docker network.
      type: int
      sample: 1450
    local_address:
      description: This host's underlay address.
      type: str
      sample: 192.0.2.11
    underlay_interface:
      description: The underlay interface.
      type: str
      sample: eth0
    gateway:
      description: The Docker network's gateway on this host.
      type: str
      sample: 10.244.1.1
    peers:
      description: The peers' underlay addresses.
      type: list
      elements: str
      sample: [192.0.2.12, 192.0.2.13]
actions:
  description: What was changed (or would be in check mode).
  returned: always
  type: list
  elements: str
  sample: ["add peer 192.0.2.13", "remove peer 192.0.2.14"]
checks:
  description: Kernel settings the overlay depends on.
  returned: always
  type: dict
  sample: {ip_forward: 1, rp_filter: 2}
"""

import json
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._files import read_text, write_atomically
from ansible_collections.dockyard.fleet.plugins.module_utils._overlay import (
    CONF_DIR,
    OverlayError,
    attach,
    current_entries,
    current_link,
    delete_commands,
    desired_state,
    device_names,
    firewall_rules,
    gateway,
    link_needs_recreate,
    missing_entries,
    overlay_mtu,
    render_script,
    rule_key,
    stale_entries,
    validate,
)

UNIT_TEMPLATE = """# Written by dockyard.fleet.overlay_net. Re-applies overlay %(name)s at boot.
[Unit]
Description=dockyard overlay network %(name)s
After=network-online.target%(after)s
Wants=network-online.target
%(before)s
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh %(script)s

[Install]
WantedBy=multi-user.target
"""


class Overlay:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.devs = device_names(module.params["name"])
        self.driver = attach(module.params)  # the Docker network's driver: bridge or macvlan
        self.actions = []
        self.client = None

    # ------------------------------------------------------------------ host commands
    def run(self, args, check_rc=True):
        rc, out, err = self.module.run_command(args)
        if check_rc and rc != 0:
            self.module.fail_json(msg="%s failed (rc %d): %s" % (" ".join(args), rc, err.strip() or out.strip()))
        return rc, out

    def ip_json(self, *args):
        rc, out = self.run(["ip", "-j", *args], check_rc=False)
        if rc != 0 or not out.strip():
            return []
        return json.loads(out)

    def read_sysctl(self, path):
        try:
            with open(path, encoding="utf-8") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ underlay
    def underlay(self):
        """(interface, local address, underlay MTU), detected where not given."""
        interface, local = self.params["underlay_interface"], self.params["local_address"]
        if not interface and local:
            for link in self.ip_json("addr", "show"):
                if any(a.get("local") == local for a in link.get("addr_info") or []):
                    interface = link["ifname"]
            if not interface:
                self.module.fail_json(msg="local_address %s is on no interface of this host" % local)
        if not interface:
            routes = self.ip_json("route", "show", "default")
            if not routes:
                self.module.fail_json(msg="no default route: give underlay_interface or local_address")
            interface = routes[0]["dev"]
        links = self.ip_json("addr", "show", "dev", interface)
        if not links:
            self.module.fail_json(msg="underlay_interface %s does not exist on this host" % interface)
        if not local:
            family = [a for a in links[0].get("addr_info") or [] if a.get("family") == "inet"]
            if not family:
                self.module.fail_json(msg="underlay_interface %s has no IPv4 address: give local_address" % interface)
            local = family[0]["local"]
        return interface, local, links[0]["mtu"]

    # ------------------------------------------------------------------ docker network
    def docker_network(self):
        nets = self.client.api.networks(names=[self.params["name"]])
        exact = [n for n in nets if n["Name"] == self.params["name"]]
        return self.client.api.inspect_network(exact[0]["Id"]) if exact else None

    def network_differences(self, net, mtu):
        want_subnet = self.params["subnet"]
        pools = (net.get("IPAM") or {}).get("Config") or []
        options = net.get("Options") or {}
        problems = []
        if not pools or pools[0].get("Subnet") != want_subnet:
            problems.append("subnet %s (wanted %s)" % (pools[0].get("Subnet") if pools else None, want_subnet))
        if net.get("Driver") != self.driver:
            problems.append("driver %s (wanted %s)" % (net.get("Driver"), self.driver))
        elif self.driver == "macvlan":
            # No MTU option here: each container's macvlan takes the VXLAN device's MTU when it starts.
            if options.get("parent") != self.devs["vxlan"]:
                problems.append("parent %s (wanted %s)" % (options.get("parent"), self.devs["vxlan"]))
        else:
            if options.get("com.docker.network.bridge.name") != self.devs["bridge"]:
                problems.append("bridge %s" % options.get("com.docker.network.bridge.name"))
            if options.get("com.docker.network.driver.mtu") != str(mtu):
                problems.append("mtu %s (wanted %s)" % (options.get("com.docker.network.driver.mtu"), mtu))
        return problems

    def create_docker_network(self, mtu):
        from docker.types import IPAMConfig, IPAMPool  # the SDK is there: docker_module checked it

        pool = IPAMPool(subnet=self.params["subnet"], iprange=self.params["ip_range"], gateway=gateway(self.params))
        if self.driver == "macvlan":
            # The gateway is the host's own macvlan (mv-NAME); the containers inherit the device's MTU.
            options = {"parent": self.devs["vxlan"], "macvlan_mode": "bridge"}
        else:
            options = {
                "com.docker.network.bridge.name": self.devs["bridge"],
                "com.docker.network.driver.mtu": str(mtu),
            }
            if self.params["mode"] == "l3":
                # Our own POSTROUTING rule masquerades only what leaves the cluster.
                options["com.docker.network.bridge.enable_ip_masquerade"] = "false"
        self.client.api.create_network(
            self.params["name"],
            driver=self.driver,
            options=options,
            ipam=IPAMConfig(pool_configs=[pool]),
            labels={"dockyard.overlay": self.params["name"]},
        )

    # ------------------------------------------------------------------ firewall
    def rule_present(self, table, chain, rule):
        rc, dummy = self.run(["iptables", "-t", table, "-C", chain, *rule], check_rc=False)
        return rc == 0

    def our_rules(self):
        """(table, chain, args) of every rule carrying this overlay's comment."""
        comment = "dockyard-overlay-%s" % self.params["name"]
        found = []
        for table, chain in (("filter", "INPUT"), ("filter", "DOCKER-USER"), ("nat", "POSTROUTING")):
            rc, out = self.run(["iptables", "-t", table, "-S", chain], check_rc=False)
            for line in out.splitlines() if rc == 0 else []:
                if comment in line and line.startswith("-A "):
                    found.append((table, chain, line.split()[2:]))
        return found

    # ------------------------------------------------------------------ present
    def present(self):
        interface, local, underlay_mtu = self.underlay()
        try:
            validate(self.params, local)
        except OverlayError as exc:
            self.module.fail_json(msg=str(exc))
        mtu = self.params["mtu"] or overlay_mtu(underlay_mtu, local)
        desired = desired_state(self.params, local, interface, mtu)
        link = current_link(self.ip_json("-d", "link", "show", "dev", self.devs["vxlan"]))
        recreate = link_needs_recreate(link, desired["link"])
        if link and not recreate:
            current = current_entries(
                self.ip_json_bridge_fdb(),
                self.ip_json("neigh", "show", "dev", self.devs["vxlan"]),
                self.ip_json("route", "show", "dev", self.devs["vxlan"]),
                self.ip_json("addr", "show", "dev", self.devs["vxlan"]),
            )
        else:
            current = {"fdb": [], "neighbours": [], "routes": [], "addresses": []}
        shim = self.current_shim() if link and not recreate else None
        stale = stale_entries(current, desired)
        missing = missing_entries(current, desired)
        wanted_rules = firewall_rules(self.params, desired)
        stale_rules = [r for r in self.our_rules() if not self.rule_wanted(r, wanted_rules)]
        missing_rules = [r for r in wanted_rules if not self.rule_present(*r)]
        net = self.docker_network()
        if net is not None:
            problems = self.network_differences(net, mtu)
            if problems:
                self.module.fail_json(
                    msg="Docker network %s exists with another %s; remove it (state=absent) to recreate it"
                    % (self.params["name"], ", ".join(problems))
                )
        self.describe(link, recreate, desired, missing, stale, missing_rules, stale_rules, net)
        self.describe_shim(shim, desired["shim"])
        files = {
            os.path.join(CONF_DIR, "%s.sh" % self.params["name"]): render_script(self.params, desired),
            # Read back by the network role: a host keeps its subnet when others join or leave.
            os.path.join(CONF_DIR, "%s.json" % self.params["name"]): self.plan_json(desired, mtu),
        }
        for path, text in files.items():
            if read_text(path) != text:
                self.actions.append("write %s" % path)
        if self.actions and not self.module.check_mode:
            self.apply(recreate, net, mtu, files, stale, stale_rules)
        before_peers = sorted({e["dst"] for e in current["fdb"]})
        return {
            "changed": bool(self.actions),
            "actions": self.actions,
            "overlay": {
                "device": self.devs["vxlan"],
                "bridge": self.devs["bridge"] if desired["shim"] is None else None,
                "host_interface": desired["shim"]["name"] if desired["shim"] else None,
                "mtu": mtu,
                "local_address": local,
                "underlay_interface": interface,
                "gateway": gateway(self.params),
                "peers": desired["peers"],
            },
            "diff": {
                "before": {"link": link, "peers": before_peers, "routes": current["routes"], "fdb": current["fdb"]},
                "after": {
                    "link": desired["link"],
                    "peers": desired["peers"],
                    "routes": desired["routes"],
                    "fdb": desired["fdb"],
                },
            },
        }

    def ip_json_bridge_fdb(self):
        rc, out = self.run(["bridge", "-j", "fdb", "show", "dev", self.devs["vxlan"]], check_rc=False)
        return json.loads(out) if rc == 0 and out.strip() else []

    def current_shim(self):
        """The host's macvlan on the overlay as (state, addresses), or None when it does not exist."""
        links = self.ip_json("addr", "show", "dev", self.devs["shim"])
        if not links:
            return None
        addresses = ["%s/%s" % (a["local"], a["prefixlen"]) for a in links[0].get("addr_info") or []]
        return {"up": "UP" in (links[0].get("flags") or []), "addresses": addresses}

    def describe_shim(self, current, desired):
        if desired is None:
            return
        if current is None:
            self.actions.append("create host interface %s (%s)" % (desired["name"], desired["address"]))
        elif desired["address"] not in current["addresses"] or not current["up"]:
            self.actions.append("set host interface %s to %s, up" % (desired["name"], desired["address"]))

    @staticmethod
    def rule_wanted(found, wanted):
        table, chain, args = found
        key = rule_key(args)
        return any(t == table and c == chain and rule_key(a) == key for t, c, a in wanted)

    def describe(self, link, recreate, desired, missing, stale, missing_rules, stale_rules, net):
        if net is None:
            self.actions.append("create Docker network %s" % self.params["name"])
        if link is None:
            self.actions.append("create %s (vni %d)" % (self.devs["vxlan"], desired["link"]["vni"]))
        elif recreate:
            self.actions.append("recreate %s: vni, port, local address or learning changed" % self.devs["vxlan"])
        elif any(link.get(k) != desired["link"][k] for k in ("mtu", "mac", "master")):
            self.actions.append("update %s settings" % self.devs["vxlan"])
        for entry in missing["fdb"]:
            self.actions.append("add peer %s" % entry["dst"])
        for entry in stale["fdb"]:
            self.actions.append("remove peer %s" % entry["dst"])
        for kind in ("routes", "neighbours", "addresses"):
            if missing[kind] or stale[kind]:
                self.actions.append("%s: %d to add, %d to remove" % (kind, len(missing[kind]), len(stale[kind])))
        if missing_rules or stale_rules:
            self.actions.append("firewall: %d rules to add, %d to remove" % (len(missing_rules), len(stale_rules)))

    def plan_json(self, desired, mtu):
        keys = ("name", "mode", "attach", "vni", "dstport", "subnet", "ip_range", "cluster_cidr")
        plan = {k: self.params[k] for k in keys}
        plan.update(local_address=desired["link"]["local"], mtu=mtu, peers=desired["peers"])
        return json.dumps(plan, indent=2, sort_keys=True) + "\n"

    def apply(self, recreate, net, mtu, files, stale, stale_rules):
        macvlan = self.driver == "macvlan"
        if net is None and not macvlan:
            self.create_docker_network(mtu)  # first: the script puts the VXLAN device into its bridge (l2)
        if recreate:
            self.run(["ip", "link", "del", self.devs["vxlan"]])
        os.makedirs(CONF_DIR, mode=0o755, exist_ok=True)
        script_path = os.path.join(CONF_DIR, "%s.sh" % self.params["name"])
        for path, text in files.items():
            write_atomically(path, text, 0o700 if path == script_path else 0o644)
        self.run(["/bin/sh", script_path])
        if net is None and macvlan:
            self.create_docker_network(mtu)  # after: Docker's macvlan driver needs its parent device
        for command in delete_commands(self.devs["vxlan"], stale):
            self.run(command, check_rc=False)  # already gone is fine
        for table, chain, args in stale_rules:
            self.run(["iptables", "-t", table, "-D", chain, *args], check_rc=False)
        if self.params["persist"]:
            self.install_unit(script_path)

    # ------------------------------------------------------------------ persistence
    def unit_path(self):
        return "/etc/systemd/system/dockyard-overlay-%s.service" % self.params["name"]

    def install_unit(self, script_path):
        if not os.path.isdir("/run/systemd/system"):
            self.module.warn("systemd is not running here: the overlay will not be re-applied at boot")
            return
        # Docker must find a macvlan network's parent when it restarts containers at boot; the bridge
        # attachment needs Docker's bridge and DOCKER-USER chain first.
        macvlan = self.driver == "macvlan"
        unit = UNIT_TEMPLATE % {
            "name": self.params["name"],
            "script": script_path,
            "after": "" if macvlan else " docker.service",
            "before": "Before=docker.service\n" if macvlan else "",
        }
        if read_text(self.unit_path()) != unit:
            write_atomically(self.unit_path(), unit, 0o644)
            self.run(["systemctl", "daemon-reload"])
        self.run(["systemctl", "enable", os.path.basename(self.unit_path())])

    # ------------------------------------------------------------------ absent
    def absent(self):
        net = self.docker_network()
        link = self.ip_json("link", "show", "dev", self.devs["vxlan"])
        rules = self.our_rules()
        names = ("%s.sh" % self.params["name"], "%s.json" % self.params["name"])
        files = [p for p in [os.path.join(CONF_DIR, n) for n in names] + [self.unit_path()] if os.path.exists(p)]
        if net is not None:
            users = [c["Name"] for c in (net.get("Containers") or {}).values()]
            if users:
                self.module.fail_json(
                    msg="Docker network %s is used by containers %s: stop them first" % (self.params["name"], users)
                )
            self.actions.append("remove Docker network %s" % self.params["name"])
        if link:
            self.actions.append("remove %s" % self.devs["vxlan"])
        if rules:
            self.actions.append("firewall: %d rules to remove" % len(rules))
        self.actions += ["remove %s" % p for p in files]
        if self.actions and not self.module.check_mode:
            if net is not None:
                self.client.api.remove_network(net["Id"])
            if link:
                self.run(["ip", "link", "del", self.devs["vxlan"]])
            for table, chain, args in rules:
                self.run(["iptables", "-t", table, "-D", chain, *args], check_rc=False)
            if self.unit_path() in files:
                self.run(["systemctl", "disable", os.path.basename(self.unit_path())], check_rc=False)
            for path in files:
                os.unlink(path)
        return {"changed": bool(self.actions), "actions": self.actions}

    def checks(self):
        return {
            "ip_forward": self.read_sysctl("/proc/sys/net/ipv4/ip_forward"),
            "rp_filter": self.read_sysctl("/proc/sys/net/ipv4/conf/all/rp_filter"),
        }


def main():
    argument_spec = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "mode": {"type": "str", "default": "l3", "choices": ["l3", "l2"]},
        "attach": {"type": "str", "default": "bridge", "choices": ["bridge", "macvlan"]},
        "vni": {"type": "int"},
        "dstport": {"type": "int", "default": 4789},
        "underlay_interface": {"type": "str"},
        "local_address": {"type": "str"},
        "subnet": {"type": "str"},
        "ip_range": {"type": "str"},
        "cluster_cidr": {"type": "str"},
        "peers": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "address": {"type": "str", "required": True},
                "subnet": {"type": "str"},
                "name": {"type": "str"},
            },
        },
        "mtu": {"type": "int"},
        "masquerade": {"type": "bool", "default": True},
        "persist": {"type": "bool", "default": True},
    }
    module = docker_module(
        argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["vni", "subnet"])],
    )
    overlay = Overlay(module)
    checks = overlay.checks()
    if module.params["state"] == "present" and checks["ip_forward"] == 0:
        module.fail_json(msg="net.ipv4.ip_forward is 0 on this host: enable forwarding for the overlay to route")
    overlay.client = DockerClient(module)
    try:
        result = overlay.present() if module.params["state"] == "present" else overlay.absent()
    except (DockerException, RequestException) as exc:
        overlay.client.fail("overlay %s: the Docker engine refused: %s" % (module.params["name"], exc))
    result["checks"] = checks
    module.exit_json(**result)


if __name__ == "__main__":
    main()
