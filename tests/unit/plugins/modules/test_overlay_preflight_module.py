import os
import socket

import pytest

from ansible_collections.dockyard.fleet.plugins.modules import overlay_preflight


class FakeModule:
    def __init__(self, **params):
        self.params = {"name": "ovl", "vni": 42, "dstport": 0, "local_address": "127.0.0.21", **params}


def new_report():
    return {"probe_port": None, "probe_note": "", "problems": []}


needs_raw_sockets = pytest.mark.skipif(os.geteuid() != 0, reason="a raw socket needs CAP_NET_RAW (run as root)")


@pytest.fixture
def held_port():
    """A UDP port held on 127.0.0.21, as a VXLAN device would hold it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.21", 0))
        yield sock.getsockname()[1]


def close(sockets):
    for sock in sockets:
        if sock:
            sock.close()


def test_free_port_is_used_as_it_is(held_port):
    report = new_report()
    sockets = overlay_preflight.listen(FakeModule(dstport=held_port + 1), report)
    close(sockets)
    assert sockets[0] is not None
    assert sockets[1] is None
    assert report["probe_port"] == held_port + 1
    assert report["problems"] == []


@needs_raw_sockets
def test_port_of_the_own_overlay_is_heard_through_a_raw_socket(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-ovl": 42})
    report = new_report()
    sock, raw = overlay_preflight.listen(FakeModule(dstport=held_port), report)
    sent_from = sock.getsockname()[1]
    close((sock, raw))
    assert raw is not None
    assert sent_from != held_port
    assert report["probe_port"] == held_port
    assert report["probe_note"] == (
        "UDP %d is held by vx-ovl (the overlay exists here): heard through a raw socket, sent from %d"
        % (held_port, sent_from)
    )
    assert report["problems"] == []


@needs_raw_sockets
def test_port_shared_with_another_overlay(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-other": 7})
    report = new_report()
    sock, raw = overlay_preflight.listen(FakeModule(dstport=held_port), report)
    close((sock, raw))
    assert report["probe_note"].startswith(
        "UDP %d is held by vx-other (VXLAN device vx-other shares it): heard through a raw socket" % held_port
    )


def test_no_raw_socket_is_a_problem(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-ovl": 42})
    monkeypatch.setattr(
        overlay_preflight,
        "open_raw_listener",
        lambda address, port: (None, PermissionError(1, "Operation not permitted")),
    )
    report = new_report()
    assert overlay_preflight.listen(FakeModule(dstport=held_port), report) == (None, None)
    assert report["probe_port"] is None
    assert report["problems"] == [
        "UDP %d is held by vx-ovl; hearing it beside the device needs a raw socket, which failed (run as root, "
        "CAP_NET_RAW): Operation not permitted" % held_port
    ]


def test_same_vni_on_another_device_is_a_problem(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-other": 42})
    report = new_report()
    assert overlay_preflight.listen(FakeModule(dstport=held_port), report) == (None, None)
    assert report["problems"] == [
        "VXLAN device vx-other already uses VNI 42 on UDP %d: choose another network_vni" % held_port
    ]


def test_port_held_by_a_program(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {})
    report = new_report()
    assert overlay_preflight.listen(FakeModule(dstport=held_port), report) == (None, None)
    assert report["problems"][0].startswith("UDP %d on 127.0.0.21 is in use by another program" % held_port)


def test_wrong_underlay_address():
    report = new_report()
    assert overlay_preflight.listen(FakeModule(local_address="192.0.2.250", dstport=4789), report) == (None, None)
    assert report["problems"] == ["underlay address 192.0.2.250 is not an address of this host"]
