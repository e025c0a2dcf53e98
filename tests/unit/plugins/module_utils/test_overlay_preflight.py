import socket
import threading

from ansible_collections.dockyard.fleet.plugins.module_utils._overlay_preflight import (
    effective_rp_filter,
    exchange,
    forwarding_problems,
    mtu_problems,
    open_socket,
    preflight_problems,
    probe_token,
)

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


def run_hosts(addresses, port, peers, timeout=3.0, fallback=()):
    """Run exchange() for each address in a thread; addresses in `fallback` listen on port + 1."""
    results = {}
    sockets = {}
    for address in addresses:
        sock, error = open_socket(address, port + 1 if address in fallback else port)
        assert error is None
        sockets[address] = sock

    def run(address):
        others = [p for p in peers if p != address]
        results[address] = exchange(sockets[address], others, [port, port + 1], probe_token("t", 1), timeout)

    threads = [threading.Thread(target=run, args=(a,)) for a in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sock in sockets.values():
        sock.close()
    return results


def test_exchange_on_loopback_all_answer_quickly():
    port = free_port()
    addresses = list(ADDRESSES.values())
    results = run_hosts(addresses, port, addresses)
    for address, (answered, heard) in results.items():
        others = {a for a in addresses if a != address}
        assert set(answered) == others
        assert set(answered.values()) == {port}
        assert heard == others


def test_exchange_finds_the_peer_on_the_fallback_port():
    port = free_port()
    addresses = ["127.0.0.11", "127.0.0.12"]
    results = run_hosts(addresses, port, addresses, fallback={"127.0.0.12"})
    assert results["127.0.0.11"][0] == {"127.0.0.12": port + 1}
    assert results["127.0.0.12"][0] == {"127.0.0.11": port}


def test_exchange_reports_a_silent_peer():
    port = free_port()
    results = run_hosts(["127.0.0.11"], port, ["127.0.0.11", "127.0.0.19"], timeout=0.6)
    assert results["127.0.0.11"] == ({}, set())


def test_open_socket_reports_the_error():
    sock, error = open_socket("192.0.2.250", 4789)
    assert sock is None
    assert error is not None
