import os
import socket
import struct
import threading

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._overlay_preflight import (
    effective_rp_filter,
    exchange,
    forwarding_problems,
    mtu_problems,
    open_raw_listener,
    open_socket,
    preflight_problems,
    probe_token,
    raw_udp_datagram,
)

needs_raw_sockets = pytest.mark.skipif(os.geteuid() != 0, reason="a raw socket needs CAP_NET_RAW (run as root)")

ADDRESSES = {"host1": "127.0.0.11", "host2": "127.0.0.12", "host3": "127.0.0.13"}


def report(host, **changes):
    base = {
        "address": ADDRESSES[host],
        "probe_port": 4789,
        "answered": {a: 4789 for h, a in ADDRESSES.items() if h != host},
        "heard": sorted(a for h, a in ADDRESSES.items() if h != host),
        "problems": [],
        "overlay_mtu": 1450,
    }
    base.update(changes)
    return base


def test_mtu_given_must_fit_the_underlay():
    assert mtu_problems(1500, "eth0", "192.0.2.1", 1450) == (1450, [])
    mtu, problems = mtu_problems(1500, "eth0", "192.0.2.1", 1480)
    assert mtu == 1480
    assert problems == [
        "underlay MTU 1500 on eth0 is too small for the overlay MTU 1480 (VXLAN adds 50 bytes: needs 1530)"
    ]
    assert mtu_problems(1500, "eth0", "2001:db8::1", 1450)[1][0].endswith("(VXLAN adds 70 bytes: needs 1520)")


def test_mtu_computed_from_the_underlay():
    assert mtu_problems(1500, "eth0", "192.0.2.1", 0) == (1450, [])
    assert mtu_problems(9000, "eth0", "192.0.2.1", 0) == (8950, [])
    assert mtu_problems(1300, "eth0", "192.0.2.1", 0) == (
        1250,
        ["underlay MTU 1300 on eth0 leaves an overlay MTU of 1250, below 1280"],
    )


def test_forwarding_off_is_a_problem():
    assert forwarding_problems(1, 2, "eth0", {}) == []
    assert forwarding_problems(0, 0, "eth0", {})[0].startswith("net.ipv4.ip_forward = 0")


def test_strict_rp_filter_matters_only_for_asymmetric_routes():
    assert forwarding_problems(1, 1, "eth0", {"192.0.2.12": "eth0"}) == []
    problems = forwarding_problems(1, 1, "eth0", {"192.0.2.12": "eth0", "192.0.2.13": "eth1"})
    assert problems == [
        "rp_filter is strict (1) on eth0 but the route to peer 192.0.2.13 leaves by eth1: its VXLAN packets "
        "would be dropped (set net.ipv4.conf.eth0.rp_filter=2, loose)"
    ]
    assert forwarding_problems(1, 2, "eth0", {"192.0.2.13": "eth1"}) == []


def test_effective_rp_filter_is_the_maximum():
    assert effective_rp_filter(0, 1) == 1
    assert effective_rp_filter(2, 1) == 2
    assert effective_rp_filter(None, None) is None


def test_all_pairs_fine():
    reports = {h: report(h) for h in ADDRESSES}
    assert preflight_problems(reports, list(ADDRESSES)) == []


def test_a_blocked_direction_names_the_pair_both_ways():
    # host2 cannot send to host3's port: host3 never hears host2, and host2's answers to host3 are lost too.
    reports = {
        "host1": report("host1"),
        "host2": report("host2", answered={"127.0.0.11": 4789}),
        "host3": report("host3", heard=["127.0.0.11"]),
    }
    reports["host3"]["answered"] = {"127.0.0.11": 4789}
    assert preflight_problems(reports, list(ADDRESSES)) == [
        "host2 -> host3 (127.0.0.13:4789/udp): no answer",
        "host3 -> host2 (127.0.0.12:4789/udp): host2 heard it, its answer did not come back",
    ]


def test_host_problems_missing_hosts_and_mtu_mismatch():
    reports = {
        "host1": report("host1", overlay_mtu=8950),
        "host2": report("host2", problems=["net.ipv4.ip_forward = 0: x"]),
    }
    reports["host1"]["answered"] = {"127.0.0.12": 4789}
    reports["host2"]["answered"] = {"127.0.0.11": 4789}
    assert preflight_problems(reports, list(ADDRESSES)) == [
        "host3: no preflight report (the host failed earlier or is unreachable)",
        "host2: net.ipv4.ip_forward = 0: x",
        "the overlay MTU would differ between hosts (host1 8950, host2 1450): set network_mtu to the smallest",
    ]


def test_a_host_that_could_not_listen_is_reported_once():
    reports = {h: report(h) for h in ADDRESSES}
    reports["host3"] = report("host3", probe_port=None, answered={}, heard=[], problems=["underlay address x"])
    assert preflight_problems(reports, list(ADDRESSES)) == ["host3: underlay address x"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.11", 0))
        return sock.getsockname()[1]


def run_hosts(addresses, port, peers, timeout=3.0, held=()):
    """Run exchange() for each address in a thread.

    On the addresses in `held` another socket holds the port, as a VXLAN device does: they hear it through
    a raw socket and send from a free port.
    """
    results, sockets, raws, holders = {}, {}, {}, []
    for address in addresses:
        if address in held:
            holder, error = open_socket(address, port)
            assert error is None
            holders.append(holder)
            raws[address], error = open_raw_listener(address, port)
            assert error is None
        sockets[address], error = open_socket(address, 0 if address in held else port)
        assert error is None

    def run(address):
        others = [p for p in peers if p != address]
        token = probe_token("t", 1)
        results[address] = exchange(sockets[address], others, port, token, timeout, raw=raws.get(address))

    threads = [threading.Thread(target=run, args=(a,)) for a in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_from = {address: sock.getsockname()[1] for address, sock in sockets.items()}
    for sock in [*sockets.values(), *raws.values(), *holders]:
        sock.close()
    return results, sent_from


def test_exchange_on_loopback_all_answer_quickly():
    port = free_port()
    addresses = list(ADDRESSES.values())
    results, dummy = run_hosts(addresses, port, addresses)
    for address, (answered, heard) in results.items():
        others = {a for a in addresses if a != address}
        assert set(answered) == others
        assert set(answered.values()) == {port}
        assert heard == others


@needs_raw_sockets
def test_exchange_hears_the_port_a_device_holds():
    """Probes and answers go to the VXLAN port itself, also where something else holds it."""
    port = free_port()
    addresses = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    results, sent_from = run_hosts(addresses, port, addresses, held={"127.0.0.12", "127.0.0.13"})
    assert sent_from["127.0.0.12"] != port
    assert results["127.0.0.11"] == (
        {"127.0.0.12": sent_from["127.0.0.12"], "127.0.0.13": sent_from["127.0.0.13"]},
        {"127.0.0.12", "127.0.0.13"},
    )
    assert results["127.0.0.12"] == (
        {"127.0.0.11": port, "127.0.0.13": sent_from["127.0.0.13"]},
        {"127.0.0.11", "127.0.0.13"},
    )


def test_exchange_reports_a_silent_peer():
    port = free_port()
    results, dummy = run_hosts(["127.0.0.11"], port, ["127.0.0.11", "127.0.0.19"], timeout=0.6)
    assert results["127.0.0.11"] == ({}, set())


@needs_raw_sockets
def test_raw_listener_gets_only_probes_to_its_port():
    """Not a datagram to another port, not the overlay's own VXLAN packets (flags 0x08 first): only a probe."""
    port = free_port()
    other = free_port()
    raw, error = open_raw_listener("127.0.0.11", port)
    assert error is None
    with raw, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind(("127.0.0.12", 0))
        sender_port = sender.getsockname()[1]
        sender.sendto(b"PROBE to another port", ("127.0.0.11", other))
        sender.sendto(b"\x08\x00\x00\x00\x00\x12\x8e\x00" + b"\xff" * 14, ("127.0.0.11", port))
        sender.sendto(b"PROBE this", ("127.0.0.11", port))
        raw.settimeout(2)
        data, source = raw.recvfrom(65535)
    assert source[0] == "127.0.0.12"
    assert raw_udp_datagram(data, socket.AF_INET, "127.0.0.11", port) == (sender_port, b"PROBE this")


def ipv4_udp(source, destination, source_port, destination_port, payload, options=b""):
    header_words = 5 + len(options) // 4
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | header_words,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton(source),
        socket.inet_aton(destination),
    )
    return ip + options + struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload


def test_raw_datagram_is_parsed_after_the_ip_header_and_its_options():
    data = ipv4_udp("192.0.2.12", "192.0.2.11", 40000, 4789, b"PROBE x", options=b"\x01" * 4)
    assert raw_udp_datagram(data, socket.AF_INET, "192.0.2.11", 4789) == (40000, b"PROBE x")


def test_raw_datagram_to_another_address_or_port_is_not_ours():
    data = ipv4_udp("192.0.2.12", "192.0.2.11", 40000, 4789, b"PROBE x")
    assert raw_udp_datagram(data, socket.AF_INET, "192.0.2.99", 4789) is None
    assert raw_udp_datagram(data, socket.AF_INET, "192.0.2.11", 4790) is None
    assert raw_udp_datagram(data[:24], socket.AF_INET, "192.0.2.11", 4789) is None


def test_raw_ipv6_datagram_starts_at_the_udp_header():
    data = struct.pack("!HHHH", 40000, 4789, 15, 0) + b"PROBE x"
    assert raw_udp_datagram(data, socket.AF_INET6, "2001:db8::11", 4789) == (40000, b"PROBE x")


def test_open_socket_reports_the_error():
    sock, error = open_socket("192.0.2.250", 4789)
    assert sock is None
    assert error is not None
