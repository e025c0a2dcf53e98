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
        for spec in service.get("ports") or []:
            try:
                wanted = published_ports(spec)
            except PlanError as exc:
                problems.append("service %s: %s" % (name, exc))
                continue
            for ip, port, proto in wanted:
                clash = [
                    other
                    for (other_host, other_ip, other_port, other_proto), other in ports.items()
                    if other_host == host
                    and other_port == port
                    and other_proto == proto
                    and _same_address(ip, other_ip)
                ]
                if clash:
                    problems.append(
                        "service %s: port %d/%s on %s is already published by %s" % (name, port, proto, host, clash[0])
                    )
                ports.setdefault((host, ip, port, proto), name)
    return problems


def check_physical(plan, subnet, gateway, host_addresses):
    """A macvlan plan: every host's range inside the LAN subnet, clear of the hosts' own addresses and the gateway.

    plan: {host: ip-range}; host_addresses: {host: underlay address}. Returns a list of problems.
    """
    problems = []
    try:
        lan = network(subnet, "network_physical_subnet")
        gateway_ip = ipaddress.ip_address(gateway)
    except (PlanError, ValueError) as exc:
        return [str(exc)]
    if gateway_ip not in lan:
        problems.append("gateway %s is outside the LAN subnet %s" % (gateway_ip, lan))
    for host, item in sorted(plan.items()):
        ip_range = network(item, "range of %s" % host)
        if ip_range.version != lan.version or not ip_range.subnet_of(lan):
            problems.append("%s: range %s is outside the LAN subnet %s" % (host, ip_range, lan))
            continue
        if gateway_ip in ip_range:
            problems.append("%s: range %s holds the gateway %s" % (host, ip_range, gateway_ip))
        for other, address in sorted(host_addresses.items()):
            try:
                if ipaddress.ip_address(address) in ip_range:
                    problems.append("%s: range %s holds the address %s of %s" % (host, ip_range, address, other))
            except ValueError:
                continue  # a host name, not an address: nothing to compare
    return problems


def macvlan_differences(inspect, wanted):
    """What an existing Docker network (`docker network inspect` output, one network) has other than wanted.

    wanted: {driver, subnet, gateway, ip_range, parent}, or some of them: only those are compared.
    Returns "key X (wanted Y)" sentences.
    """
    config = ((inspect.get("IPAM") or {}).get("Config") or [{}])[0]
    have = {
        "driver": inspect.get("Driver"),
        "subnet": config.get("Subnet"),
        "gateway": config.get("Gateway"),
        "ip_range": config.get("IPRange"),
        "parent": (inspect.get("Options") or {}).get("parent"),
    }
    return [
        "%s %s (wanted %s)" % (key.replace("_", "-"), have[key] or "none", wanted[key])
        for key in ("driver", "subnet", "gateway", "ip_range", "parent")
        if key in wanted and (have[key] or "") != (wanted[key] or "")
    ]


# ----------------------------------------------------------------------------- port plans (nat model)
WILDCARDS = ("", "0.0.0.0", "::", "*")


def published_ports(spec):
    """[(host ip, host port, protocol)] of one Docker publish spec: "8080", "8080:80", "127.0.0.1:8080:80/udp",
    "8000-8002:8000-8002", "[::1]:8080:80". The host ip is "" when the port is published on every address."""
    text = str(spec).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    ip = ""
    if text.startswith("["):
        ip, text = text[1:].split("]", 1)
        text = text.lstrip(":")
    parts = text.split(":")
    if len(parts) == 3:
        ip, host = parts[0], parts[1]
    elif len(parts) == 2:
        host = parts[0]
    else:
        host = parts[0]
    if not host:
        return []  # "IP::80" or ":80": Docker picks a free port, nothing to clash with
    first, dummy, last = host.partition("-")
    try:
        ports = range(int(first), int(last or first) + 1)
    except ValueError:
        raise PlanError("invalid published port %r" % spec) from None
    return [(ip, port, proto.lower()) for port in ports]


def _same_address(left, right):
    return left in WILDCARDS or right in WILDCARDS or left == right


def _ss_address(local):
    """(ip, port) of an `ss` local address: 0.0.0.0:80, [::]:80, *:80, 127.0.0.53%lo:53."""
    address, dummy, port = local.rpartition(":")
    address = address.strip("[]").split("%", 1)[0]
    if address.startswith("::ffff:"):
        address = address[len("::ffff:") :]
    return address, int(port)


def parse_listeners(ss_output):
    """[(ip, port, protocol)] of `ss -Hltnu` output (listening TCP and bound UDP sockets)."""
    listeners = []
    for line in ss_output.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] not in ("tcp", "udp"):
            continue
        try:
            ip, port = _ss_address(fields[4])
        except ValueError:
            continue
        listeners.append((ip, port, fields[0]))
    return listeners


def parse_containers(ps_output):
    """[{name, app, published: [(ip, port, protocol)], text}] of
    `docker ps --format '{{.Names}}\\t{{.Label "dockyard.release.app"}}\\t{{.Ports}}'`."""
    containers = []
    for line in ps_output.splitlines():
        fields = line.split("\t")
        if not fields or not fields[0]:
            continue
        name, app = fields[0], fields[1] if len(fields) > 1 else ""
        published = []
        texts = []
        for item in (fields[2] if len(fields) > 2 else "").split(","):
            item = item.strip()
            if "->" not in item:
                continue  # exposed only, not published
            texts.append(item)
            host_side, dummy, container_side = item.partition("->")
            proto = container_side.rpartition("/")[2] or "tcp"
            address, dummy, ports = host_side.rpartition(":")
            address = address.strip("[]")
            address = "[%s]" % address if ":" in address else address
            published += published_ports("%s:%s:%s/%s" % (address, ports, ports, proto))
        containers.append({"name": name, "app": app, "published": published, "text": ", ".join(texts)})
    return containers


def check_port_plan(host, services, listeners, containers):
    """Ports the services of `host` publish that are already taken on the host: by a container of another app,
    or by a program that is not a container. A container of the service itself (named after it, or labelled
    with it as its release app) may hold its own ports: that is a re-run, not a clash.

    services: [{name, host, ports}] (others' hosts are skipped); listeners: parse_listeners();
    containers: parse_containers(). Returns a list of problems.
    """
    problems = []
    for service in services or []:
        if service.get("host") != host:
            continue
        name = service.get("name")
        for spec in service.get("ports") or []:
            try:
                wanted = published_ports(spec)
            except PlanError as exc:
                problems.append("service %s: %s" % (name, exc))
                continue
            for ip, port, proto in wanted:
                holders = [
                    c
                    for c in containers
                    if any(p == port and pr == proto and _same_address(ip, i) for i, p, pr in c["published"])
                ]
                others = [c for c in holders if name not in (c["name"], c["app"])]
                if others:
                    problems.append(
                        "service %s: port %d/%s on %s is already published by container %s (%s)"
                        % (name, port, proto, host, others[0]["name"], others[0]["text"])
                    )
                    continue
                if holders:
                    continue  # its own container: the docker-proxy listener below is that container's
                bound = [(i, p, pr) for i, p, pr in listeners if p == port and pr == proto and _same_address(ip, i)]
                if bound:
                    problems.append(
                        "service %s: port %d/%s on %s is already in use by a program listening on %s:%d"
                        % (name, port, proto, host, bound[0][0] or "*", port)
                    )
                if len(problems) > 50:
                    return problems
    return problems
