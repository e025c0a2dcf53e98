# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The one address-plan helper: per-host subnets carved from a cluster CIDR,
# stable when hosts join or leave (a host keeps the subnet it has), with
# collisions refused. Also checks fixed service IPs and published ports.
# Standard library only (ipaddress), so it runs on the controller (filter
# plugin) and on hosts (modules) alike. IPv4 and IPv6.

from __future__ import annotations

import ipaddress


class PlanError(ValueError):
    pass


def network(value, what):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise PlanError("invalid %s %r: %s" % (what, value, exc)) from None


def allocate_subnets(cluster_cidr, host_prefix, hosts, existing=None, reserved=None):
    """{host: subnet} for every host in `hosts` (in l2 mode: the hosts' ip-ranges within the one subnet).

    existing: {host: subnet} already in use (read back from the hosts); kept for hosts still present.
    reserved: networks the cluster must not overlap (underlay, docker0, other networks on the hosts).
    New hosts get the lowest free subnets, in sorted host order, so the plan is deterministic.
    """
    cluster = network(cluster_cidr, "cluster CIDR")
    if not cluster.prefixlen < int(host_prefix) <= cluster.max_prefixlen:
        raise PlanError(
            "host prefix /%s does not fit in cluster CIDR %s: expected a prefix longer than /%d"
            % (host_prefix, cluster, cluster.prefixlen)
        )
    for item in reserved or []:
        other = network(item, "reserved network")
        if other.version == cluster.version and cluster.overlaps(other):
            raise PlanError("cluster CIDR %s overlaps %s, which is already in use" % (cluster, other))
    plan = {}
    taken = {}
    for host, subnet in sorted((existing or {}).items()):
        if host not in hosts:
            continue  # a host that left frees its subnet
        current = network(subnet, "subnet of %s" % host)
        if current.version != cluster.version or not current.subnet_of(cluster):
            raise PlanError("%s has subnet %s, outside the cluster CIDR %s" % (host, current, cluster))
        if current in taken:
            raise PlanError("%s and %s both claim subnet %s" % (taken[current], host, current))
        taken[current] = host
        plan[host] = str(current)
    free = (s for s in cluster.subnets(new_prefix=int(host_prefix)) if not any(s.overlaps(t) for t in taken))
    for host in sorted(h for h in hosts if h not in plan):
        try:
            plan[host] = str(next(free))
        except StopIteration:
            raise PlanError(
                "cluster CIDR %s has no free /%s subnet left for %s" % (cluster, host_prefix, host)
            ) from None
    return plan


def address_at(subnet, offset):
    """The address `offset` into a subnet; a negative offset counts back from the broadcast address."""
    net = network(subnet, "subnet")
    offset = int(offset)
    address = (net.broadcast_address if offset < 0 else net.network_address) + offset
    if address not in net:
        raise PlanError("offset %d is outside %s" % (offset, net))
    return str(address)


def check_services(plan, services):
    """Fixed service IPs must sit in their host's subnet and be unique; host ports unique per host.

    services: [{name, host, ip (optional), ports: ["HOST:CONTAINER", ...] (optional)}]
    Returns a list of problems (empty when the plan holds).
    """
    problems = []
    ips = {}
    ports = {}
    for service in services or []:
        name, host = service.get("name"), service.get("host")
        if host not in plan:
            problems.append("service %s: host %s is not in the plan" % (name, host))
            continue
        if service.get("ip"):
            try:
                ip = ipaddress.ip_address(service["ip"])
            except ValueError:
                problems.append("service %s: invalid ip %r" % (name, service["ip"]))
                continue
            subnet = ipaddress.ip_network(plan[host])
            if ip not in subnet:
                problems.append("service %s: ip %s is outside %s's subnet %s" % (name, ip, host, subnet))
            elif ip in (subnet.network_address, subnet.network_address + 1, subnet.broadcast_address):
                problems.append("service %s: ip %s is the network, gateway or broadcast address" % (name, ip))
            if ip in ips:
                problems.append("service %s: ip %s is already given to %s" % (name, ip, ips[ip]))
            ips.setdefault(ip, name)
        for port in service.get("ports") or []:
            host_port = str(port).split(":")[-2] if ":" in str(port) else str(port)
            key = (host, host_port)
            if key in ports:
                problems.append(
                    "service %s: port %s on %s is already published by %s" % (name, host_port, host, ports[key])
                )
            ports.setdefault(key, name)
    return problems
