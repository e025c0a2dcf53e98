import re

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._overlay import (
    OverlayError,
    current_entries,
    current_link,
    delete_commands,
    desired_state,
    firewall_rules,
    gateway,
    link_needs_recreate,
    missing_entries,
    overlay_mtu,
    render_script,
    rule_key,
    stale_entries,
    underlay_of,
    validate,
    vtep_mac,
)


def l3_params(**overrides):
    params = {
        "name": "ovl",
        "mode": "l3",
        "vni": 42,
        "dstport": 4789,
        "subnet": "10.244.1.0/24",
        "ip_range": None,
        "cluster_cidr": "10.244.0.0/16",
        "masquerade": True,
        "peers": [
            {"address": "192.0.2.12", "subnet": "10.244.2.0/24"},
            {"address": "192.0.2.11", "subnet": "10.244.1.0/24"},  # this host, skipped
            {"address": "192.0.2.13", "subnet": "10.244.3.0/24"},
        ],
    }
    params.update(overrides)
    return params


def test_vtep_mac_is_stable_and_local():
    mac = vtep_mac("192.0.2.12")
    assert mac == vtep_mac("192.0.2.12") != vtep_mac("192.0.2.13")
    assert mac.startswith("02:") and len(mac.split(":")) == 6


def test_mtu():
    assert overlay_mtu(1500, "192.0.2.1") == 1450
    assert overlay_mtu(9000, "2001:db8::1") == 8930


def test_l3_desired_state_routes_each_peer_subnet_through_its_vtep():
    params = l3_params()
    validate({**params, "peers": [p for p in params["peers"] if p["address"] != "192.0.2.11"]})
    state = desired_state(params, "192.0.2.11", "eth0", 1450)
    assert state["peers"] == ["192.0.2.12", "192.0.2.13"]
    assert state["addresses"] == ["10.244.1.0/32"]
    assert state["routes"] == [
        {"dst": "10.244.2.0/24", "via": "10.244.2.0"},
        {"dst": "10.244.3.0/24", "via": "10.244.3.0"},
    ]
    assert state["neighbours"][0] == {"ip": "10.244.2.0", "mac": vtep_mac("192.0.2.12")}
    assert state["fdb"][1] == {"mac": vtep_mac("192.0.2.13"), "dst": "192.0.2.13"}
    assert state["link"]["learning"] is False
    assert gateway(params) == "10.244.1.1"


def test_l2_desired_state_floods_to_peers_and_joins_the_bridge():
    params = l3_params(mode="l2", subnet="10.250.0.0/16", ip_range="10.250.1.0/24", cluster_cidr=None)
    state = desired_state(params, "192.0.2.11", "eth0", 1450)
    assert state["fdb"] == [
        {"mac": "00:00:00:00:00:00", "dst": "192.0.2.12"},
        {"mac": "00:00:00:00:00:00", "dst": "192.0.2.13"},
    ]
    assert state["routes"] == [] and state["link"]["master"] == "br-ovl" and state["link"]["learning"]
    assert gateway(params) == "10.250.1.1"


def macvlan_params(**overrides):
    return l3_params(
        mode="l2", attach="macvlan", subnet="10.250.0.0/16", ip_range="10.250.1.0/24", cluster_cidr=None, **overrides
    )


def test_macvlan_attach_gives_the_host_a_leg_on_the_segment_instead_of_a_bridge():
    params = macvlan_params()
    validate(params, "192.0.2.11")
    state = desired_state(params, "192.0.2.11", "eth0", 8950)
    assert state["link"]["master"] is None and state["link"]["learning"]
    assert state["shim"] == {"name": "mv-ovl", "address": "10.250.1.1/16"}
    assert state["fdb"][0] == {"mac": "00:00:00:00:00:00", "dst": "192.0.2.12"}
    script = render_script(params, state)
    assert "ip link add mv-ovl link vx-ovl type macvlan mode bridge" in script
    assert "ip addr replace 10.250.1.1/16 dev mv-ovl" in script
    assert "ip link set mv-ovl mtu 8950 up" in script
    assert "master" not in script
    # The shim comes after the device is up, and before any rule that needs DOCKER-USER.
    assert script.index("ip link set vx-ovl up") < script.index("mv-ovl link vx-ovl")
    assert script.index("iptables -t filter -N DOCKER-USER") < script.index("-C DOCKER-USER")


def test_macvlan_firewall_forwards_through_the_host_leg_and_masquerades_only_what_leaves():
    params = macvlan_params()
    rules = firewall_rules(params, desired_state(params, "192.0.2.11", "eth0", 1450))
    forward = [r for t, c, r in rules if c == "DOCKER-USER"]
    assert forward[0][:2] == ["-i", "mv-ovl"]
    assert forward[1][:2] == ["-o", "mv-ovl"] and "RELATED,ESTABLISHED" in forward[1]
    nat = [r for t, c, r in rules if c == "POSTROUTING"]
    assert nat == [["-s", "10.250.1.0/24", "!", "-d", "10.250.0.0/16", *nat[0][5:9], "-j", "MASQUERADE"]]
    no_masq = firewall_rules({**params, "masquerade": False}, desired_state(params, "192.0.2.11", "eth0", 1450))
    assert all(c != "POSTROUTING" for dummy, c, dummy2 in no_masq)


def test_bridge_attach_has_no_host_leg():
    params = l3_params(mode="l2", subnet="10.250.0.0/16", ip_range="10.250.1.0/24", cluster_cidr=None)
    assert desired_state(params, "192.0.2.11", "eth0", 1450)["shim"] is None
    assert "mv-" not in render_script(params, desired_state(params, "192.0.2.11", "eth0", 1450))


def test_script_is_idempotent_shell():
    params = l3_params()
    script = render_script(params, desired_state(params, "192.0.2.11", "eth0", 1450))
    assert "ip link show vx-ovl >/dev/null 2>&1 || ip link add vx-ovl type vxlan id 42 dstport 4789" in script
    assert " nolearning" in script
    assert "ip route replace 10.244.2.0/24 via 10.244.2.0 dev vx-ovl onlink" in script
    assert "iptables -t filter -C INPUT -s 192.0.2.12 -p udp --dport 4789" in script
    assert "'!' -d 10.244.0.0/16 '!' -o br-ovl" in script


def test_firewall_rules():
    params = l3_params()
    rules = firewall_rules(params, desired_state(params, "192.0.2.11", "eth0", 1450))
    assert [(t, c) for t, c, dummy in rules] == [
        ("filter", "INPUT"),
        ("filter", "INPUT"),
        ("filter", "DOCKER-USER"),
        ("filter", "DOCKER-USER"),
        ("nat", "POSTROUTING"),
    ]
    no_masq = firewall_rules({**params, "masquerade": False}, desired_state(params, "192.0.2.11", "eth0", 1450))
    assert all(c != "POSTROUTING" for dummy, c, dummy2 in no_masq)


def test_rule_key_matches_iptables_s_output():
    ours = ["-s", "192.0.2.12", "-p", "udp", "--dport", "4789", "-m", "comment", "--comment", "x", "-j", "ACCEPT"]
    printed = [
        "-s",
        "192.0.2.12/32",
        "-p",
        "udp",
        "-m",
        "udp",
        "--dport",
        "4789",
        "-m",
        "comment",
        "--comment",
        "x",
        "-j",
        "ACCEPT",
    ]
    assert rule_key(ours) == rule_key(printed)
    masq = [
        "-s",
        "10.244.1.0/24",
        "!",
        "-d",
        "10.244.0.0/16",
        "!",
        "-o",
        "br-ovl",
        "-m",
        "comment",
        "--comment",
        "x",
        "-j",
        "MASQUERADE",
    ]
    assert ("!-d", "10.244.0.0/16") in rule_key(masq)


def test_peer_leaving_removes_only_its_entries():
    params = l3_params()
    before = desired_state(params, "192.0.2.11", "eth0", 1450)
    current = {k: before[k] for k in ("fdb", "neighbours", "routes", "addresses")}
    after = desired_state({**params, "peers": params["peers"][:2]}, "192.0.2.11", "eth0", 1450)
    stale = stale_entries(current, after)
    assert stale["fdb"] == [{"mac": vtep_mac("192.0.2.13"), "dst": "192.0.2.13"}]
    assert stale["routes"] == [{"dst": "10.244.3.0/24", "via": "10.244.3.0"}]
    assert stale["addresses"] == []
    assert missing_entries(current, after) == {"fdb": [], "neighbours": [], "routes": [], "addresses": []}
    assert ["ip", "route", "del", "10.244.3.0/24", "via", "10.244.3.0", "dev", "vx-ovl"] in delete_commands(
        "vx-ovl", stale
    )


def test_reading_ip_json():
    link = current_link(
        [
            {
                "ifname": "vx-ovl",
                "mtu": 1450,
                "address": "02:aa:bb:cc:dd:ee",
                "link": "eth0",
                "linkinfo": {"info_data": {"id": 42, "port": 4789, "local": "192.0.2.11", "learning": False}},
            }
        ]
    )
    assert link["vni"] == 42 and link["learning"] is False and link["master"] is None
    desired = desired_state(l3_params(), "192.0.2.11", "eth0", 1450)["link"]
    assert not link_needs_recreate(link, desired)
    assert link_needs_recreate({**link, "vni": 43}, desired)
    assert not link_needs_recreate(None, desired)
    entries = current_entries(
        [
            {"mac": "02:01:02:03:04:05", "dst": "192.0.2.12", "state": "permanent"},
            {"mac": "33:33:00:00:00:01"},
            {"mac": "02:42:ac:11:00:02", "dst": "192.0.2.13", "flags": ["self"], "state": ""},  # learned
        ],
        [{"dst": "10.244.2.0", "lladdr": "02:01:02:03:04:05", "state": ["PERMANENT"]}],
        [{"dst": "10.244.2.0/24", "gateway": "10.244.2.0"}],
        [{"addr_info": [{"local": "10.244.1.0", "prefixlen": 32}]}],
    )
    assert entries["fdb"] == [{"mac": "02:01:02:03:04:05", "dst": "192.0.2.12"}]
    assert entries["addresses"] == ["10.244.1.0/32"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"vni": 0}, "vni 0 out of range"),
        ({"vni": 16777216}, "vni 16777216 out of range"),
        ({"name": "much-too-long-name"}, "invalid overlay name 'much-too-long-name'"),
        ({"subnet": "10.9.0.0/24"}, "subnet 10.9.0.0/24 is not inside cluster_cidr 10.244.0.0/16"),
        ({"cluster_cidr": "10.244.0.0/33"}, "invalid cluster_cidr '10.244.0.0/33'"),
        (
            {"peers": [{"address": "192.0.2.12", "subnet": "10.244.1.0/25"}]},
            "peer 192.0.2.12 subnet 10.244.1.0/25 overlaps 10.244.1.0/24 of this host",
        ),
        ({"peers": [{"address": "192.0.2.12"}]}, "peer 192.0.2.12 needs a subnet in l3 mode"),
        ({"peers": [{"address": "nohost", "subnet": "10.244.9.0/24"}]}, "invalid peer address 'nohost'"),
        ({"attach": "macvlan"}, "attach macvlan needs mode l2 (one subnet, each host its own ip_range), not l3"),
    ],
)
def test_validate_names_the_bad_value(overrides, message):
    with pytest.raises(OverlayError, match=re.escape(message)):
        validate(l3_params(**{"peers": [], **overrides}))


# `ip -json -4 route show table main` on a fleet host (docker0 and an overlay's bridge besides eth0)
ROUTES = [
    {"dst": "default", "gateway": "172.29.83.1", "dev": "eth0", "flags": []},
    {"dst": "10.216.2.0/24", "gateway": "10.216.2.0", "dev": "vx-ovb", "flags": ["onlink"]},
    {"dst": "172.17.0.0/16", "dev": "docker0", "protocol": "kernel", "scope": "link", "prefsrc": "172.17.0.1"},
    {"dst": "172.29.83.0/24", "dev": "eth0", "protocol": "kernel", "scope": "link", "prefsrc": "172.29.83.11"},
]


def test_underlay_is_the_default_routes_interface_and_its_connected_subnet():
    assert underlay_of(ROUTES) == ("eth0", "172.29.83.0/24")


def test_underlay_without_default_route_is_empty():
    assert underlay_of(ROUTES[1:]) == ("", "")


def test_underlay_interface_without_connected_subnet_has_no_cidr():
    # a point-to-point default route (no kernel link route on its device)
    assert underlay_of([{"dst": "default", "dev": "ppp0", "flags": []}, ROUTES[2]]) == ("ppp0", "")
