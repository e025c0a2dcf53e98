# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Preflight of a VXLAN overlay, before anything changes: every host of the
# group runs the overlay_preflight module at the same time (one task). Each
# listens on the VXLAN UDP port of its underlay address, probes every peer
# there and answers the peers' probes; the controller then puts the hosts'
# reports together (overlay_preflight_problems filter) and names every pair
# that failed, in both directions. Also the local checks: MTU, forwarding,
# rp_filter. Standard library only.

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import time

from ansible_collections.dockyard.fleet.plugins.module_utils._overlay import (
    VXLAN_OVERHEAD_IPV4,
    VXLAN_OVERHEAD_IPV6,
)

MIN_OVERLAY_MTU = 1280  # the IPv6 minimum; an overlay below it breaks common stacks
RESEND_INTERVAL = 0.2
GRACE = 0.5  # keep answering this long after our own probes all came back


def overhead(address):
    return VXLAN_OVERHEAD_IPV6 if ipaddress.ip_address(address).version == 6 else VXLAN_OVERHEAD_IPV4


def mtu_problems(underlay_mtu, interface, address, wanted_mtu):
    """(overlay MTU, problems) for this host: a given MTU must fit in the underlay, a computed one be sane."""
    extra = overhead(address)
    if wanted_mtu:
        if underlay_mtu < wanted_mtu + extra:
            return wanted_mtu, [
                "underlay MTU %d on %s is too small for the overlay MTU %d (VXLAN adds %d bytes: needs %d)"
                % (underlay_mtu, interface, wanted_mtu, extra, wanted_mtu + extra)
            ]
        return wanted_mtu, []
    computed = underlay_mtu - extra
    if computed < MIN_OVERLAY_MTU:
        return computed, [
            "underlay MTU %d on %s leaves an overlay MTU of %d, below %d"
            % (underlay_mtu, interface, computed, MIN_OVERLAY_MTU)
        ]
    return computed, []


def forwarding_problems(ip_forward, rp_filter, interface, peer_routes):
    """Forwarding must be on; strict rp_filter only matters when a peer's route back leaves by another interface.

    rp_filter: the effective value on the underlay interface (the kernel uses max(all, interface)).
    peer_routes: {peer address: interface of the route to it}.
    In strict mode (1) the kernel drops a packet whose source is not routed back through the interface it came
    in on: VXLAN packets from a peer reached through another interface (asymmetric underlay) vanish silently.
    """
    problems = []
    if ip_forward != 1:
        problems.append(
            "net.ipv4.ip_forward = %s: containers' traffic cannot be routed to the overlay (set it to 1)" % ip_forward
        )
    if rp_filter == 1:
        for peer, dev in sorted(peer_routes.items()):
            if dev != interface:
                problems.append(
                    "rp_filter is strict (1) on %s but the route to peer %s leaves by %s: its VXLAN packets "
                    "would be dropped (set net.ipv4.conf.%s.rp_filter=2, loose)" % (interface, peer, dev, interface)
                )
    return problems


def effective_rp_filter(all_value, interface_value):
    values = [v for v in (all_value, interface_value) if v is not None]
    return max(values) if values else None


def probe_token(name, vni):
    return ("dockyard-preflight %s %s" % (name, vni)).encode()


def exchange(sock, peers, ports, token, timeout, grace=GRACE, clock=time.monotonic):
    """Probe every peer and answer their probes on one UDP socket, until all answered and were heard, or timeout.

    peers: peer addresses; ports: destination ports to probe each peer on (the first one the peer listens on
    answers). Returns ({peer: port that answered}, {peers whose probes arrived}).
    """
    probe, ack = b"PROBE " + token, b"ACK " + token
    wanted = set(peers)
    answered, heard = {}, set()
    deadline = clock() + timeout
    next_send = 0.0
    done_at = None
    while True:
        now = clock()
        if now >= deadline:
            break
        if set(answered) >= wanted and heard >= wanted:
            if done_at is None:
                done_at = now + grace
            elif now >= done_at:
                break
        if now >= next_send:
            for peer in sorted(wanted - set(answered)):
                for port in ports:
                    with contextlib.suppress(OSError):  # no route now: reported as no answer
                        sock.sendto(probe, (peer, port))
            next_send = now + RESEND_INTERVAL
        ready = select.select([sock], [], [], 0.05)[0]
        if not ready:
            continue
        try:
            data, source = sock.recvfrom(512)
        except OSError:
            continue
        if data == probe:
            heard.add(source[0])
            with contextlib.suppress(OSError):
                sock.sendto(ack, source[:2])
        elif data == ack and source[0] in wanted:
            answered.setdefault(source[0], source[1])
    return answered, heard & wanted


def open_socket(address, port):
    """A UDP socket bound to (address, port), or (None, errno name)."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((address, port))
    except OSError as exc:
        sock.close()
        return None, exc
    return sock, None


def preflight_problems(reports, hosts):
    """Every problem of the group, one sentence each, from the hosts' overlay_preflight reports.

    reports: {host: report} of the hosts that ran; hosts: every host of the group.
    A pair A -> B fails when A's probe to B's port got no answer: "no answer" when B never heard A,
    "B heard it, its answer did not come back" when only the way back is blocked.
    """
    problems = []
    for host in hosts:
        if host not in reports:
            problems.append("%s: no preflight report (the host failed earlier or is unreachable)" % host)
    for host in hosts:
        for problem in (reports.get(host) or {}).get("problems") or []:
            problems.append("%s: %s" % (host, problem))
    listening = [h for h in hosts if h in reports and reports[h].get("probe_port")]
    for source in listening:
        mine = reports[source]
        for target in listening:
            if target == source:
                continue
            theirs = reports[target]
            if theirs["address"] in (mine.get("answered") or {}):
                continue
            where = "%s -> %s (%s:%s/udp)" % (source, target, _host_port(theirs["address"]), theirs["probe_port"])
            if mine["address"] in (theirs.get("heard") or []):
                problems.append("%s: %s heard it, its answer did not come back" % (where, target))
            else:
                problems.append("%s: no answer" % where)
    mtus = {h: reports[h]["overlay_mtu"] for h in hosts if h in reports and reports[h].get("overlay_mtu")}
    if len(set(mtus.values())) > 1:
        problems.append(
            "the overlay MTU would differ between hosts (%s): set network_mtu to the smallest"
            % ", ".join("%s %d" % item for item in sorted(mtus.items()))
        )
    return problems


def _host_port(address):
    return "[%s]" % address if ":" in address else address
