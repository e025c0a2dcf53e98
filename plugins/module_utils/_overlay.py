# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# A VXLAN overlay on one host, flannel style, with nothing but the kernel:
# the desired state (device, addresses, per-peer fdb/neighbour/route entries,
# firewall rules) is computed here as data (pure, unit-tested), rendered as
# an idempotent shell script that both the module and a boot-time systemd
# unit run, and compared with what `ip -j` / `bridge -j` report.

from __future__ import annotations

import hashlib
import ipaddress
import shlex

VXLAN_OVERHEAD_IPV4 = 50
VXLAN_OVERHEAD_IPV6 = 70
CONF_DIR = "/etc/dockyard/overlay"
MAX_NAME = 11  # "vx-" + name must fit IFNAMSIZ (15)


class OverlayError(ValueError):
    pass


def device_names(name):
    """vxlan: the VXLAN device; bridge: the Docker bridge (attach=bridge); shim: the host's macvlan (attach=macvlan)."""
    return {"vxlan": "vx-%s" % name, "bridge": "br-%s" % name, "shim": "mv-%s" % name}


def attach(params):
    """How containers join the overlay: through a veth and a bridge (the default), or as macvlan on the device."""
    return params.get("attach") or "bridge"


def vtep_mac(underlay_address):
    """A stable, locally administered MAC per host, so peers can compute each other's without asking."""
    digest = hashlib.sha256(("dockyard-vtep:%s" % underlay_address).encode()).digest()
    return "02:" + ":".join("%02x" % b for b in digest[:5])


def vtep_ip(subnet):
    """The VTEP address of a host in l3 mode: its subnet's network address (as flannel does)."""
    return str(ipaddress.ip_network(subnet).network_address)


def validate(params, local_address=None):
    """Refuse bad input with a message that names the bad value (peers at local_address are this host)."""
    name = params["name"]
    if not name or len(name) > MAX_NAME or not all(c.isalnum() or c in "-_" for c in name):
        raise OverlayError("invalid overlay name %r: letters, digits, '-' or '_', %d at most" % (name, MAX_NAME))
    if not 1 <= params["vni"] <= 16777215:
        raise OverlayError("vni %s out of range: expected 1..16777215" % params["vni"])
    if not 1 <= params["dstport"] <= 65535:
        raise OverlayError("dstport %s out of range: expected 1..65535" % params["dstport"])
    subnet = _net(params["subnet"], "subnet")
    peers = [p for p in params["peers"] if p["address"] != local_address]
    if params["mode"] == "l3" and not params.get("cluster_cidr"):
        raise OverlayError("mode l3 needs cluster_cidr")
    if params["mode"] == "l2" and not params.get("ip_range"):
        raise OverlayError("mode l2 needs ip_range")
    if attach(params) == "macvlan" and params["mode"] != "l2":
        # Containers are on one L2 segment across hosts: per-host subnets would route through the host again.
        raise OverlayError(
            "attach macvlan needs mode l2 (one subnet, each host its own ip_range), not %s" % params["mode"]
        )
    if params["mode"] == "l3":
        cluster = _net(params["cluster_cidr"], "cluster_cidr")
        if not subnet.subnet_of(cluster):
            raise OverlayError("subnet %s is not inside cluster_cidr %s" % (subnet, cluster))
        seen = {subnet: "this host"}
        for peer in peers:
            if not peer.get("subnet"):
                raise OverlayError("peer %s needs a subnet in l3 mode" % peer["address"])
            peer_subnet = _net(peer["subnet"], "subnet of peer %s" % peer["address"])
            if not peer_subnet.subnet_of(cluster):
                raise OverlayError(
                    "peer %s subnet %s is not inside cluster_cidr %s" % (peer["address"], peer_subnet, cluster)
                )
            for other, owner in seen.items():
                if peer_subnet.overlaps(other):
                    raise OverlayError(
                        "peer %s subnet %s overlaps %s of %s" % (peer["address"], peer_subnet, other, owner)
                    )
            seen[peer_subnet] = peer["address"]
    else:
        ip_range = _net(params["ip_range"], "ip_range")
        if not ip_range.subnet_of(subnet):
            raise OverlayError("ip_range %s is not inside subnet %s" % (ip_range, subnet))
    for peer in peers:
        try:
            ipaddress.ip_address(peer["address"])
        except ValueError:
            raise OverlayError("invalid peer address %r" % peer["address"]) from None


def _net(value, what):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise OverlayError("invalid %s %r: %s" % (what, value, exc)) from None


def underlay_of(routes):
    """(interface, CIDR) of the underlay, from `ip -json -4 route show table main`.

    The default route's interface, and the network of the kernel's link-scope route on it (the
    connected subnet). ('', '') without a default route; CIDR '' when that interface has none.
    """
    interface = next((r.get("dev", "") for r in routes if r.get("dst") == "default"), "")
    cidr = next(
        (
            r["dst"]
            for r in routes
            if interface
            and r.get("dev") == interface
            and r.get("protocol") == "kernel"
            and r.get("scope") == "link"
            and r.get("dst", "default") != "default"
        ),
        "",
    )
    return interface, cidr


def overlay_mtu(underlay_mtu, underlay_address):
    overhead = VXLAN_OVERHEAD_IPV6 if ipaddress.ip_address(underlay_address).version == 6 else VXLAN_OVERHEAD_IPV4
    return int(underlay_mtu) - overhead


def gateway(params):
    """The Docker network's gateway on this host: first address of its subnet (l3) or of its ip-range (l2)."""
    own = params["subnet"] if params["mode"] == "l3" else params["ip_range"]
    return str(ipaddress.ip_network(own).network_address + 1)


def desired_state(params, local_address, underlay_interface, mtu):
    """What the host should have, as comparable data."""
    devs = device_names(params["name"])
    bridged = attach(params) == "bridge"
    peers = sorted(params["peers"], key=lambda p: p["address"])
    peers = [p for p in peers if p["address"] != local_address]  # an inventory-wide list may include us
    state = {
        "link": {
            "name": devs["vxlan"],
            "vni": params["vni"],
            "dstport": params["dstport"],
            "local": local_address,
            "dev": underlay_interface,
            "learning": params["mode"] == "l2",
            "mtu": mtu,
            "mac": vtep_mac(local_address),
            "master": devs["bridge"] if params["mode"] == "l2" and bridged else None,
        },
        "shim": None if bridged else {"name": devs["shim"], "address": shim_address(params)},
        "addresses": [],
        "fdb": [],
        "neighbours": [],
        "routes": [],
        "peers": [p["address"] for p in peers],
    }
    if params["mode"] == "l3":
        state["addresses"] = ["%s/%d" % (vtep_ip(params["subnet"]), 32 if ":" not in params["subnet"] else 128)]
        for peer in peers:
            mac, via = vtep_mac(peer["address"]), vtep_ip(peer["subnet"])
            state["fdb"].append({"mac": mac, "dst": peer["address"]})
            state["neighbours"].append({"ip": via, "mac": mac})
            state["routes"].append({"dst": str(ipaddress.ip_network(peer["subnet"])), "via": via})
    else:
        state["fdb"] = [{"mac": "00:00:00:00:00:00", "dst": p["address"]} for p in peers]
    return state


def shim_address(params):
    """The host's own address on a macvlan overlay: the gateway, with the prefix of the shared subnet."""
    return "%s/%d" % (gateway(params), ipaddress.ip_network(params["subnet"]).prefixlen)


def firewall_rules(params, state):
    """iptables rules (table, chain, rule args) this overlay needs; each carries the overlay's comment."""
    devs = device_names(params["name"])
    tag = ["-m", "comment", "--comment", "dockyard-overlay-%s" % params["name"]]
    rules = []
    for peer in state["peers"]:
        rules.append(
            ("filter", "INPUT", ["-s", peer, "-p", "udp", "--dport", str(params["dstport"]), *tag, "-j", "ACCEPT"])
        )
    if state.get("shim"):
        # Containers reach the rest of the world through the host's macvlan; Docker's FORWARD policy drops that.
        shim = state["shim"]["name"]
        established = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"]
        rules.append(("filter", "DOCKER-USER", ["-i", shim, *tag, "-j", "ACCEPT"]))
        rules.append(("filter", "DOCKER-USER", ["-o", shim, *established, *tag, "-j", "ACCEPT"]))
        if params["masquerade"]:
            masquerade = ["-s", params["ip_range"], "!", "-d", params["subnet"], *tag, "-j", "MASQUERADE"]
            rules.append(("nat", "POSTROUTING", masquerade))
    if params["mode"] == "l3":
        rules.append(("filter", "DOCKER-USER", ["-i", devs["vxlan"], "-o", devs["bridge"], *tag, "-j", "ACCEPT"]))
        rules.append(("filter", "DOCKER-USER", ["-i", devs["bridge"], "-o", devs["vxlan"], *tag, "-j", "ACCEPT"]))
        if params["masquerade"]:
            rules.append(
                (
                    "nat",
                    "POSTROUTING",
                    [
                        "-s",
                        params["subnet"],
                        "!",
                        "-d",
                        params["cluster_cidr"],
                        "!",
                        "-o",
                        devs["bridge"],
                        *tag,
                        "-j",
                        "MASQUERADE",
                    ],
                )
            )
    return rules


def render_script(params, state):
    """An idempotent shell script that brings the host to `state`; the module and the boot unit both run it."""
    link = state["link"]
    dev = link["name"]
    q = shlex.quote
    learning = "" if link["learning"] else " nolearning"
    lines = [
        "#!/bin/sh",
        "# Written by dockyard.fleet.overlay_net for overlay %s. Do not edit: the next run rewrites it."
        % params["name"],
        "set -e",
        "ip link show %s >/dev/null 2>&1 || ip link add %s type vxlan id %d dstport %d dev %s local %s%s"
        % (dev, dev, link["vni"], link["dstport"], q(link["dev"]), q(link["local"]), learning),
        "ip link set %s address %s mtu %d" % (dev, link["mac"], link["mtu"]),
    ]
    if link["master"]:
        lines.append("ip link set %s master %s" % (dev, link["master"]))
        lines.append("ip link set %s mtu %d" % (link["master"], link["mtu"]))
    lines.append("ip link set %s up" % dev)
    shim = state.get("shim")
    if shim:
        # The host's own leg on the segment: macvlan children never reach their parent's host otherwise.
        lines += [
            "ip link show %s >/dev/null 2>&1 || ip link add %s link %s type macvlan mode bridge"
            % (shim["name"], shim["name"], dev),
            "ip addr replace %s dev %s" % (shim["address"], shim["name"]),
            "ip link set %s mtu %d up" % (shim["name"], link["mtu"]),
            # At boot this runs before dockerd (its containers need the device), so the chain may not exist yet.
            "iptables -t filter -L DOCKER-USER -n >/dev/null 2>&1 || iptables -t filter -N DOCKER-USER",
        ]
    for address in state["addresses"]:
        lines.append("ip addr replace %s dev %s" % (address, dev))
    for entry in state["fdb"]:
        verb = "append" if entry["mac"] == "00:00:00:00:00:00" else "replace"
        check = "bridge fdb show dev %s | grep -q '^%s dst %s '" % (dev, entry["mac"], entry["dst"])
        lines.append(
            "%s || bridge fdb %s %s dev %s dst %s self permanent" % (check, verb, entry["mac"], dev, entry["dst"])
        )
    for entry in state["neighbours"]:
        lines.append("ip neigh replace %s lladdr %s dev %s nud permanent" % (entry["ip"], entry["mac"], dev))
    for entry in state["routes"]:
        lines.append("ip route replace %s via %s dev %s onlink" % (entry["dst"], entry["via"], dev))
    for table, chain, rule in firewall_rules(params, state):
        args = " ".join(q(a) for a in rule)
        lines.append(
            "iptables -t %s -C %s %s 2>/dev/null || iptables -t %s -I %s 1 %s"
            % (table, chain, args, table, chain, args)
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- reading the host
def current_link(link_json):
    """The comparable link settings from `ip -d -j link show DEV` (None when absent)."""
    if not link_json:
        return None
    link = link_json[0]
    data = (link.get("linkinfo") or {}).get("info_data") or {}
    return {
        "name": link.get("ifname"),
        "vni": data.get("id"),
        "dstport": data.get("port"),
        "local": data.get("local") or data.get("local6"),
        "dev": link.get("link") or None,
        "learning": bool(data.get("learning")),
        "mtu": link.get("mtu"),
        "mac": link.get("address"),
        "master": link.get("master"),
    }


def current_entries(fdb_json, neigh_json, route_json, addr_json):
    fdb = [
        {"mac": e["mac"], "dst": e["dst"]}
        for e in fdb_json or []
        if e.get("dst") and e.get("state") == "permanent"  # learned entries come and go
    ]
    neighbours = [
        {"ip": e["dst"], "mac": e.get("lladdr")} for e in neigh_json or [] if "PERMANENT" in (e.get("state") or [])
    ]
    routes = [{"dst": e["dst"], "via": e.get("gateway")} for e in route_json or [] if e.get("gateway")]
    addresses = []
    for link in addr_json or []:
        for info in link.get("addr_info") or []:
            addresses.append("%s/%s" % (info["local"], info["prefixlen"]))
    return {"fdb": fdb, "neighbours": neighbours, "routes": routes, "addresses": addresses}


def link_needs_recreate(current, desired):
    """VNI, port, local address, underlay device or learning changed: the device must be made again."""
    if current is None:
        return False
    keys = ("vni", "dstport", "local", "learning")
    return any(current.get(k) != desired.get(k) for k in keys) or (
        desired.get("dev") is not None and current.get("dev") not in (None, desired["dev"])
    )


ENTRY_KINDS = ("fdb", "neighbours", "routes", "addresses")


def _difference(left, right):
    """Per kind, the entries of `left` that `right` does not have."""
    result = {}
    for kind in ENTRY_KINDS:
        keys = [_key(kind, e) for e in right[kind]]
        result[kind] = [e for e in left[kind] if _key(kind, e) not in keys]
    return result


def stale_entries(current, desired):
    """Entries on the device that the desired state no longer has (a peer left)."""
    return _difference(current, desired)


def missing_entries(current, desired):
    """Entries the desired state has that the device lacks (a peer joined)."""
    return _difference(desired, current)


def _key(kind, entry):
    if kind == "addresses":
        return entry
    if kind == "routes":
        return (str(ipaddress.ip_network(entry["dst"], strict=False)), entry["via"])
    if kind == "fdb":
        return (entry["mac"].lower(), entry["dst"])
    return (entry["ip"], (entry.get("mac") or "").lower())


def delete_commands(dev, stale):
    commands = []
    for entry in stale["routes"]:
        commands.append(["ip", "route", "del", entry["dst"], "via", entry["via"], "dev", dev])
    for entry in stale["neighbours"]:
        commands.append(["ip", "neigh", "del", entry["ip"], "dev", dev])
    for entry in stale["fdb"]:
        commands.append(["bridge", "fdb", "del", entry["mac"], "dev", dev, "dst", entry["dst"]])
    for address in stale["addresses"]:
        commands.append(["ip", "addr", "del", address, "dev", dev])
    return commands


def rule_key(args):
    """The parts of an iptables rule that identify it, whatever the order iptables -S prints them in."""
    key = {}
    negate = False
    for index, arg in enumerate(args):
        if arg == "!":
            negate = True
            continue
        if arg in ("-s", "-d", "-i", "-o", "--dport", "-j", "-p") and index + 1 < len(args):
            value = args[index + 1]
            if arg in ("-s", "-d") and value.endswith(("/32", "/128")):
                value = value.rsplit("/", 1)[0]
            key[("!" if negate else "") + arg] = value
        negate = False
    return tuple(sorted(key.items()))
