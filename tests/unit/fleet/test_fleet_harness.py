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
