"""The fleet harness's pure parts: address plan, fake SHAs, capability choice, inventory."""

import ipaddress
import json
from pathlib import Path

import fleet
import pytest


def settings(tmp_path, size=3, subnet="172.29.83.0/24"):
    return fleet.Settings(
        size=size,
        subnet=ipaddress.ip_network(subnet),
        state_dir=tmp_path,
        cache_dir=tmp_path / "cache",
        origin_port=15443,
    )


def test_address_plan(tmp_path):
    s = settings(tmp_path, subnet="10.1.2.0/24")
    assert (s.gateway, s.origin_ip, s.host_ip(1), s.host_ip(3)) == ("10.1.2.1", "10.1.2.2", "10.1.2.11", "10.1.2.13")


def test_demo_app_tags_are_stable_distinct_git_shas():
    shas = {name: fleet.fake_sha(name) for name in fleet.DEMO_APP_BUILDS}
    assert len(set(shas.values())) == 3
    assert all(len(s) == 40 and int(s, 16) >= 0 for s in shas.values())
    assert shas["good"] == fleet.fake_sha("good")


def test_recipes_hash_changes_with_build_args():
    demo = [r for r in fleet.recipes() if r.name == "demo-app"]
    hashes = {r.recipe_hash("base") for r in demo}
    assert len(hashes) == 3
    assert demo[0].recipe_hash("base") != demo[0].recipe_hash("other-base")


@pytest.mark.parametrize(
    "capbnd, privileged",
    [("000001ffffffffff", True), ("000001fffeffffff", False)],
)
def test_capabilities_follow_the_bounding_set(monkeypatch, capbnd, privileged):
    status = f"Name:\tx\nCapBnd:\t{capbnd}\n"
    real_read = Path.read_text

    def fake_read(path, *args, **kwargs):
        if str(path) == "/proc/self/status":
            return status
        if str(path) == "/proc/sys/kernel/cap_last_cap":
            return "40\n"
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", fake_read)
    args = fleet.capability_args()
    assert ("--privileged" in args) is privileged
    if not privileged:
        assert "--cap-add=SYS_ADMIN" in args
        assert "--cap-add=SYS_RESOURCE" not in args  # bit 24 is missing from that set
        assert "seccomp=unconfined" in args


def test_inventory_groups(tmp_path):
    s = settings(tmp_path, size=3)
    path = fleet.write_inventory(s)
    inventory = json.loads(path.read_text().split("\n", 1)[1])
    children = inventory["all"]["children"]
    assert list(children["docker_hosts"]["hosts"]) == ["host1", "host2", "host3"]
    assert children["docker_hosts"]["hosts"]["host2"]["ansible_host"] == "172.29.83.12"
    assert list(children["registry_nodes"]["hosts"]) == ["host1", "host2"]
    assert list(children["mirror_nodes"]["hosts"]) == ["host3"]
    assert list(children["log_shippers"]["hosts"]) == ["host1", "host2", "host3"]
    assert inventory["all"]["vars"]["fleet_origin_registry"] == "origin.dockyard.test:5000"


def fake_network(monkeypatch, bridge_mtu):
    """cmd_mtu against a recorded network: two hosts on br-0123456789ab; returns the commands it ran."""
    commands = []
    network = {
        "Id": "0123456789abcdef",
        "Options": {},
        "Containers": {
            "c1": {"IPv4Address": "172.29.83.11/24"},
            "c2": {"IPv4Address": "172.29.83.12/24"},
        },
    }
    outputs = {
        ("network", "inspect", "dockyard-fleet-net"): json.dumps([network]),
        ("inspect", "--format", "{{.State.Pid}}", "c1"): "101",
        ("inspect", "--format", "{{.State.Pid}}", "c2"): "102",
    }
    monkeypatch.setattr(fleet, "docker_out", lambda *args: outputs[args])

    class Done:
        def __init__(self, text):
            self.stdout = text.encode()

    def run(*args, **kwargs):
        commands.append(args)
        if args[-4:-1] == ("addr", "show", "to"):
            return Done("7: eth0    inet %s/24 brd 172.29.83.255 scope global eth0\n" % args[-1])
        if args[:2] == ("ip", "-o"):
            return Done("9: veth1@if7: <UP> mtu 1500 master br-0123456789ab\n10: veth2@if7: <UP> mtu 1500\n")
        return Done("")

    monkeypatch.setattr(fleet, "run", run)
    monkeypatch.setattr(fleet, "current_mtu", lambda interface: bridge_mtu)
    return commands


def test_mtu_raised_on_the_host_side_first(monkeypatch, tmp_path):
    commands = fake_network(monkeypatch, bridge_mtu=1500)
    fleet.cmd_mtu(settings(tmp_path), 9000)
    sets = [c for c in commands if "set" in c]
    assert sets == [
        ("ip", "link", "set", "veth1", "mtu", "9000"),
        ("ip", "link", "set", "veth2", "mtu", "9000"),
        ("ip", "link", "set", "br-0123456789ab", "mtu", "9000"),
        ("nsenter", "-t", "101", "-n", "ip", "link", "set", "eth0", "mtu", "9000"),
        ("nsenter", "-t", "102", "-n", "ip", "link", "set", "eth0", "mtu", "9000"),
    ]


def test_mtu_lowered_on_the_containers_first(monkeypatch, tmp_path):
    commands = fake_network(monkeypatch, bridge_mtu=9000)
    fleet.cmd_mtu(settings(tmp_path), 1500)
    sets = [c for c in commands if "set" in c]
    assert sets[0][:2] == ("nsenter", "-t") and sets[-1] == ("ip", "link", "set", "br-0123456789ab", "mtu", "1500")


def test_mtu_out_of_range_is_refused(tmp_path):
    with pytest.raises(SystemExit, match=r"mtu 500: expected 1280\.\.9000"):
        fleet.cmd_mtu(settings(tmp_path), 500)
