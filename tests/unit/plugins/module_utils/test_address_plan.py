import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._address_plan import (
    PlanError,
    allocate_subnets,
    check_services,
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
        "service db2: port 5432 on host1 is already published by db",
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
