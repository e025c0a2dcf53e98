# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Preflight of a VXLAN overlay, before anything changes: every host of the
# group runs the overlay_preflight module at the same time (one task). Each
# listens on the VXLAN UDP port of its underlay address, probes every peer
# there and answers the peers' probes there too; the controller then puts the
# hosts' reports together (overlay_preflight_problems filter) and names every
# pair that failed, in both directions. Where a VXLAN device already holds the
# port, the host hears it through a raw socket (a copy of each datagram that
# passed its firewall) and sends from another port. Also the local checks: MTU,
# forwarding, rp_filter. Standard library only.

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import select
import socket
import struct
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


def exchange(sock, peers, port, token, timeout, raw=None, grace=GRACE, clock=time.monotonic):
    """Probe every peer and answer their probes, until all answered and were heard, or timeout.

    Every probe and every answer goes to the peer's VXLAN port `port`, so each crosses the firewalls
    exactly where VXLAN does. sock: this host's UDP socket, bound to `port` when it could be; otherwise
    (a VXLAN device holds the port) bound elsewhere and `raw` (open_raw_listener) hears `port`.
    Returns ({peer: UDP port its answer came from}, {peers whose probes arrived}).
    """
    probe, ack = b"PROBE " + token, b"ACK " + token
    wanted = set(peers)
    answered, heard = {}, set()
    local_address = sock.getsockname()[0]
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
                with contextlib.suppress(OSError):  # no route now: reported as no answer
                    sock.sendto(probe, (peer, port))
            next_send = now + RESEND_INTERVAL
        for ready in select.select([sock] + ([raw] if raw else []), [], [], 0.05)[0]:
            datagram = _receive(ready, sock, local_address, port)
            if datagram is None:
                continue
            data, source, source_port = datagram
            if data == probe:
                heard.add(source)
                with contextlib.suppress(OSError):
                    sock.sendto(ack, (source, port))
            elif data == ack and source in wanted:
                answered.setdefault(source, source_port)
    return answered, heard & wanted


def _receive(ready, sock, local_address, port):
    """(payload, source address, source port) of one datagram from the UDP or the raw socket; None if not ours."""
    try:
        data, source = ready.recvfrom(65535)
    except OSError:
        return None
    if ready is sock:
        return data, source[0], source[1]
    parsed = raw_udp_datagram(data, ready.family, local_address, port)
    return None if parsed is None else (parsed[1], source[0], parsed[0])


# Classic BPF for a raw UDP socket: keep the datagrams to one destination port whose payload starts
# like a probe or an answer ("PROBE ", "ACK "), so that the overlay's own VXLAN packets (their first
# byte is the flags, 0x08) never reach Python, however busy it is. X holds the UDP header's offset:
# an IPv4 raw socket reads the IP header first (4 * its IHL field), an IPv6 one starts at UDP.
_BPF_LDX_MSH, _BPF_LDX_IMM, _BPF_LD_H_IND, _BPF_LD_B_IND = 0xB1, 0x01, 0x48, 0x50
_BPF_JEQ, _BPF_RET = 0x15, 0x06
SO_ATTACH_FILTER = 26


def port_filter(port, family):
    """The classic BPF program (a list of (code, jt, jf, k)) that accepts probes and answers sent to `port`."""
    udp_offset = (_BPF_LDX_MSH, 0, 0, 0) if family == socket.AF_INET else (_BPF_LDX_IMM, 0, 0, 0)
    return [
        udp_offset,
        (_BPF_LD_H_IND, 0, 0, 2),  # the destination port
        (_BPF_JEQ, 0, 4, port),  # another port: drop
        (_BPF_LD_B_IND, 0, 0, 8),  # the payload's first byte
        (_BPF_JEQ, 1, 0, ord("P")),
        (_BPF_JEQ, 0, 1, ord("A")),
        (_BPF_RET, 0, 0, 0xFFFF),  # keep
        (_BPF_RET, 0, 0, 0),  # drop
    ]


def address_family(address):
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def open_raw_listener(address, port):
    """A raw socket that gets a copy of every probe or answer to UDP `port` that passed this host's firewall (INPUT).

    The kernel hands raw sockets their copy after the INPUT hooks and before the UDP socket lookup, so this
    hears a port that a VXLAN device holds. Needs CAP_NET_RAW. Returns (socket, None) or (None, error).
    """
    family = address_family(address)
    try:
        sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_UDP)
    except OSError as exc:
        return None, exc
    program = b"".join(struct.pack("HBBI", *instruction) for instruction in port_filter(port, family))
    buffer = ctypes.create_string_buffer(program)
    try:
        # struct sock_fprog {unsigned short len; struct sock_filter *filter;}: the kernel copies the program
        sock.setsockopt(
            socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
        )
    except OSError as exc:
        sock.close()
        return None, exc
    return sock, None


def raw_udp_datagram(data, family, local_address, port):
    """(source port, payload) of what a raw UDP socket read, when it is a datagram to local_address:port."""
    if family == socket.AF_INET:
        if len(data) < 20:
            return None
        header = (data[0] & 0x0F) * 4
        if socket.inet_ntoa(data[16:20]) != local_address:
            return None  # a raw socket hears every local address; an IPv6 one gives no destination here
        data = data[header:]
    if len(data) < 8:
        return None
    source_port, destination_port = struct.unpack("!HH", data[:4])
    if destination_port != port:
        return None
    return source_port, data[8:]


def open_socket(address, port):
    """A UDP socket bound to (address, port), or (None, errno name)."""
    family = address_family(address)
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
