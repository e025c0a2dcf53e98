import socket

import pytest

from ansible_collections.dockyard.fleet.plugins.modules import overlay_preflight


class FakeModule:
    def __init__(self, **params):
        self.params = {"name": "ovl", "vni": 42, "dstport": 0, "local_address": "127.0.0.21", **params}


def new_report():
    return {"probe_port": None, "probe_note": "", "problems": []}


@pytest.fixture
def held_port():
    """A UDP port held on 127.0.0.21 (as a VXLAN device would hold it), and the next one free."""
    for dummy in range(20):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.21", 0))
        port = sock.getsockname()[1]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.21", port + 1))
        except OSError:
            sock.close()
            continue
        finally:
            probe.close()
        yield port
        sock.close()
        return
    pytest.skip("no free pair of ports")


def test_free_port_is_used_as_it_is(held_port):
    report = new_report()
    sock = overlay_preflight.listen(FakeModule(dstport=held_port + 1), report)
    assert sock is not None
    sock.close()
    assert report["probe_port"] == held_port + 1
    assert report["problems"] == []


def test_port_of_the_own_overlay_moves_to_the_next(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-ovl": 42})
    report = new_report()
    sock = overlay_preflight.listen(FakeModule(dstport=held_port), report)
    assert sock is not None
    sock.close()
    assert report["probe_port"] == held_port + 1
    assert report["probe_note"] == "UDP %d is held by vx-ovl (the overlay exists here): probed on %d" % (
        held_port,
        held_port + 1,
    )


def test_port_shared_with_another_overlay(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-other": 7})
    report = new_report()
    sock = overlay_preflight.listen(FakeModule(dstport=held_port), report)
    sock.close()
    assert report["probe_note"].endswith("(VXLAN device vx-other shares it): probed on %d" % (held_port + 1))


def test_same_vni_on_another_device_is_a_problem(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {"vx-other": 42})
    report = new_report()
    assert overlay_preflight.listen(FakeModule(dstport=held_port), report) is None
    assert report["problems"] == [
        "VXLAN device vx-other already uses VNI 42 on UDP %d: choose another network_vni" % held_port
    ]


def test_port_held_by_a_program(held_port, monkeypatch):
    monkeypatch.setattr(overlay_preflight, "vxlan_holders", lambda module, port: {})
    report = new_report()
    assert overlay_preflight.listen(FakeModule(dstport=held_port), report) is None
    assert report["problems"][0].startswith("UDP %d on 127.0.0.21 is in use by another program" % held_port)


def test_wrong_underlay_address():
    report = new_report()
    assert overlay_preflight.listen(FakeModule(local_address="192.0.2.250", dstport=4789), report) is None
    assert report["problems"] == ["underlay address 192.0.2.250 is not an address of this host"]
