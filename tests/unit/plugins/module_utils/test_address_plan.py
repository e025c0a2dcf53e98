import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._address_plan import (
    PlanError,
    allocate_subnets,
    check_physical,
    check_port_plan,
    check_services,
    macvlan_differences,
    parse_containers,
    parse_listeners,
    published_ports,
)

HOSTS = ["host1", "host2", "host3"]


def test_allocation_is_deterministic():
    plan = allocate_subnets("10.244.0.0/16", 24, HOSTS)
    assert plan == {"host1": "10.244.0.0/24", "host2": "10.244.1.0/24", "host3": "10.244.2.0/24"}
    assert allocate_subnets("10.244.0.0/16", 24, list(reversed(HOSTS))) == plan


def test_hosts_keep_their_subnet_when_others_join_or_leave():
    plan = allocate_subnets("10.244.0.0/16", 24, HOSTS)
    joined = allocate_subnets("10.244.0.0/16", 24, [*HOSTS, "host0"], existing=plan)
    assert {h: joined[h] for h in HOSTS} == plan
    assert joined["host0"] == "10.244.3.0/24"
    left = allocate_subnets("10.244.0.0/16", 24, ["host1", "host3", "host0"], existing=joined)
    assert left == {"host1": "10.244.0.0/24", "host3": "10.244.2.0/24", "host0": "10.244.3.0/24"}
    rejoined = allocate_subnets("10.244.0.0/16", 24, ["host1", "host3", "host0", "host9"], existing=left)
    assert rejoined["host9"] == "10.244.1.0/24"  # the freed subnet is reused


def test_ipv6_ranges():
    plan = allocate_subnets("fd00:244::/56", 64, ["a", "b"])
    assert plan == {"a": "fd00:244::/64", "b": "fd00:244:0:1::/64"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cluster_cidr": "10.244.0.0/33"}, "invalid cluster CIDR '10.244.0.0/33'"),
        ({"cluster_cidr": "10.244.0.1/16"}, "invalid cluster CIDR '10.244.0.1/16'"),
        ({"host_prefix": 16}, "host prefix /16 does not fit in cluster CIDR 10.244.0.0/16"),
        ({"reserved": ["10.244.5.0/24"]}, "cluster CIDR 10.244.0.0/16 overlaps 10.244.5.0/24, which is already in use"),
        ({"existing": {"host1": "10.9.0.0/24"}}, "host1 has subnet 10.9.0.0/24, outside the cluster CIDR"),
        (
            {"existing": {"host1": "10.244.1.0/24", "host2": "10.244.1.0/24"}},
            "host1 and host2 both claim subnet 10.244.1.0/24",
        ),
        ({"cluster_cidr": "10.244.0.0/23"}, "has no free /24 subnet left for host3"),
    ],
)
def test_refusals_name_the_problem(kwargs, message):
    args = {"cluster_cidr": "10.244.0.0/16", "host_prefix": 24, "hosts": HOSTS, **kwargs}
    with pytest.raises(PlanError, match=message.replace("/", "/").replace(".", r"\.")):
        allocate_subnets(**args)


def test_reserved_networks_of_the_other_family_do_not_collide():
    assert allocate_subnets("10.244.0.0/16", 24, ["a"], reserved=["fd00::/8"]) == {"a": "10.244.0.0/24"}


def test_services_checked():
    plan = {"host1": "10.244.0.0/24", "host2": "10.244.1.0/24"}
    services = [
        {"name": "db", "host": "host1", "ip": "10.244.0.10", "ports": ["5432:5432"]},
        {"name": "web", "host": "host2", "ip": "10.244.1.10", "ports": ["80:8080", "443:8443"]},
        {"name": "cache", "host": "host1", "ip": "10.244.0.11"},
    ]
    assert check_services(plan, services) == []


def test_service_problems():
    plan = {"host1": "10.244.0.0/24"}
    services = [
        {"name": "db", "host": "host1", "ip": "10.244.0.10", "ports": ["5432:5432"]},
        {"name": "db2", "host": "host1", "ip": "10.244.0.10", "ports": ["127.0.0.1:5432:5432"]},
        {"name": "far", "host": "host1", "ip": "10.244.9.1"},
        {"name": "gw", "host": "host1", "ip": "10.244.0.1"},
        {"name": "lost", "host": "host7"},
        {"name": "bad", "host": "host1", "ip": "10.244.0.300"},
    ]
    assert check_services(plan, services) == [
        "service db2: ip 10.244.0.10 is already given to db",
        "service db2: port 5432/tcp on host1 is already published by db",
        "service far: ip 10.244.9.1 is outside host1's subnet 10.244.0.0/24",
        "service gw: ip 10.244.0.1 is the network, gateway or broadcast address",
        "service lost: host host7 is not in the plan",
        "service bad: invalid ip '10.244.0.300'",
    ]


def test_address_at():
    from ansible_collections.dockyard.fleet.plugins.module_utils._address_plan import address_at

    assert address_at("10.244.1.0/24", 1) == "10.244.1.1"
    assert address_at("10.244.1.0/24", -1) == "10.244.1.254"
    with pytest.raises(PlanError, match=r"offset 300 is outside 10\.244\.1\.0/24"):
        address_at("10.244.1.0/24", 300)


# ----------------------------------------------------------------------------- port plans (nat)
def test_published_ports_forms():
    assert published_ports("8080") == [("", 8080, "tcp")]
    assert published_ports("8080:80") == [("", 8080, "tcp")]
    assert published_ports("127.0.0.1:8080:80/udp") == [("127.0.0.1", 8080, "udp")]
    assert published_ports("[::1]:8080:80") == [("::1", 8080, "tcp")]
    assert published_ports("8000-8002:8000-8002") == [("", 8000, "tcp"), ("", 8001, "tcp"), ("", 8002, "tcp")]
    assert published_ports("127.0.0.1::80") == []
    with pytest.raises(PlanError, match="invalid published port 'web:80'"):
        published_ports("web:80")


def test_same_port_other_protocol_or_address_is_no_clash():
    plan = {"host1": "10.244.0.0/24", "host2": "10.244.1.0/24"}
    services = [
        {"name": "dns", "host": "host1", "ports": ["53:53/udp"]},
        {"name": "dnstcp", "host": "host1", "ports": ["53:53"]},
        {"name": "a", "host": "host1", "ports": ["127.0.0.1:9000:80"]},
        {"name": "b", "host": "host1", "ports": ["127.0.0.2:9000:80"]},
        {"name": "web", "host": "host2", "ports": ["53:53/udp"]},
    ]
    assert check_services(plan, services) == []
    services.append({"name": "all", "host": "host1", "ports": ["9000:80", "8999-9001:8999-9001"]})
    assert check_services(plan, services) == [
        "service all: port 9000/tcp on host1 is already published by a",
        "service all: port 9000/tcp on host1 is already published by a",
    ]


SS = """tcp   LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*
tcp   LISTEN 0      4096         0.0.0.0:8080      0.0.0.0:*
tcp   LISTEN 0      4096            [::]:8080         [::]:*
tcp   LISTEN 0      128    127.0.0.53%lo:53        0.0.0.0:*
udp   UNCONN 0      0            0.0.0.0:4789      0.0.0.0:*
tcp   LISTEN 0      511     [::ffff:10.0.0.5]:9100       *:*
"""

PS = """web-3f2a\tweb\t0.0.0.0:8080->80/tcp, :::8080->80/tcp
other\t\t0.0.0.0:8443->443/tcp, 9000/tcp
quiet\t\t
"""


def test_parse_listeners_and_containers():
    assert parse_listeners(SS) == [
        ("0.0.0.0", 22, "tcp"),
        ("0.0.0.0", 8080, "tcp"),
        ("::", 8080, "tcp"),
        ("127.0.0.53", 53, "tcp"),
        ("0.0.0.0", 4789, "udp"),
        ("10.0.0.5", 9100, "tcp"),
    ]
    containers = parse_containers(PS)
    assert [c["name"] for c in containers] == ["web-3f2a", "other", "quiet"]
    assert containers[0]["app"] == "web"
    assert containers[0]["published"] == [("0.0.0.0", 8080, "tcp"), ("::", 8080, "tcp")]
    assert containers[1]["published"] == [("0.0.0.0", 8443, "tcp")]
    assert containers[1]["text"] == "0.0.0.0:8443->443/tcp"
    assert containers[2]["published"] == []


def test_port_plan_against_the_host():
    listeners, containers = parse_listeners(SS), parse_containers(PS)
    services = [
        {"name": "web", "host": "host1", "ports": ["8080:80"]},  # its own container holds it: a re-run
        {"name": "api", "host": "host1", "ports": ["8443:443", "2222:22"]},
        {"name": "ssh", "host": "host1", "ports": ["22:22"]},
        {"name": "vx", "host": "host1", "ports": ["4789:4789/udp", "4789:4789"]},
        {"name": "local", "host": "host1", "ports": ["127.0.0.1:9100:9100"]},
        {"name": "elsewhere", "host": "host2", "ports": ["22:22"]},
    ]
    assert check_port_plan("host1", services, listeners, containers) == [
        "service api: port 8443/tcp on host1 is already published by container other (0.0.0.0:8443->443/tcp)",
        "service ssh: port 22/tcp on host1 is already in use by a program listening on 0.0.0.0:22",
        "service vx: port 4789/udp on host1 is already in use by a program listening on 0.0.0.0:4789",
    ]


def test_another_app_on_the_port_of_a_container_is_a_clash():
    containers = parse_containers(PS)
    services = [{"name": "shop", "host": "host1", "ports": ["8080:80"]}]
    assert check_port_plan("host1", services, parse_listeners(SS), containers) == [
        "service shop: port 8080/tcp on host1 is already published by container web-3f2a "
        "(0.0.0.0:8080->80/tcp, :::8080->80/tcp)"
    ]


def test_physical_plan_checked_against_the_lan():
    plan = {"host1": "192.0.2.192/28", "host2": "192.0.2.208/28"}
    addresses = {"host1": "192.0.2.11", "host2": "192.0.2.12"}
    assert check_physical(plan, "192.0.2.0/24", "192.0.2.1", addresses) == []
    assert check_physical(
        {"host1": "192.0.2.0/28", "host2": "198.51.100.0/28"}, "192.0.2.0/24", "192.0.2.1", addresses
    ) == [
        "host1: range 192.0.2.0/28 holds the gateway 192.0.2.1",
        "host1: range 192.0.2.0/28 holds the address 192.0.2.11 of host1",
        "host1: range 192.0.2.0/28 holds the address 192.0.2.12 of host2",
        "host2: range 198.51.100.0/28 is outside the LAN subnet 192.0.2.0/24",
    ]
    assert check_physical(plan, "192.0.2.0/24", "198.51.100.1", addresses) == [
        "gateway 198.51.100.1 is outside the LAN subnet 192.0.2.0/24"
    ]
    assert check_physical(plan, "192.0.2.0/33", "192.0.2.1", addresses)[0].startswith("invalid network_physical_subnet")


def test_macvlan_differences():
    wanted = {
        "driver": "macvlan",
        "subnet": "192.0.2.0/24",
        "gateway": "192.0.2.1",
        "ip_range": "192.0.2.192/28",
        "parent": "eth0",
    }
    same = {
        "Driver": "macvlan",
        "IPAM": {"Config": [{"Subnet": "192.0.2.0/24", "Gateway": "192.0.2.1", "IPRange": "192.0.2.192/28"}]},
        "Options": {"parent": "eth0"},
    }
    assert macvlan_differences(same, wanted) == []
    bridge = {"Driver": "bridge", "IPAM": {"Config": [{"Subnet": "10.219.0.0/24"}]}, "Options": {}}
    assert macvlan_differences(bridge, wanted) == [
        "driver bridge (wanted macvlan)",
        "subnet 10.219.0.0/24 (wanted 192.0.2.0/24)",
        "gateway none (wanted 192.0.2.1)",
        "ip-range none (wanted 192.0.2.192/28)",
        "parent none (wanted eth0)",
    ]


def test_macvlan_differences_compare_only_the_keys_wanted():
    """A removal checks the network without a plan: the ip-range is not compared."""
    other_range = {
        "Driver": "macvlan",
        "IPAM": {"Config": [{"Subnet": "192.0.2.0/24", "Gateway": "192.0.2.1", "IPRange": "192.0.2.240/28"}]},
        "Options": {"parent": "eth0"},
    }
    wanted = {"driver": "macvlan", "subnet": "192.0.2.0/24", "gateway": "192.0.2.1", "parent": "eth0"}
    assert macvlan_differences(other_range, wanted) == []
    assert macvlan_differences(other_range, {**wanted, "parent": "eth1"}) == ["parent eth0 (wanted eth1)"]
