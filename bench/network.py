"""make bench B=network: iperf3 across the overlay vs. the underlay vs. NAT, and adding a peer.

On the test fleet, one run, side by side (iperf3 from the fleet image nettools: Debian's
iperf3 package; the same client parameters IPERF_ARGS for the four paths):

  underlay   server `--network host` on host2, client `--network host` on host1 -> host2's
             fleet address: host to host, the limit                        -> underlay_gbps
  overlay    server on the overlay `ovb` (the network role: l2 VXLAN, containers as macvlan
             on the VXLAN device) at a fixed IP of host2's range, client on `ovb` on host1
             -> that IP                                                    -> overlay_gbps
  overlay_bridge  the same on the overlay `ovbr`: the role's defaults (l3, containers behind
             a veth pair and a bridge), applied beside it           -> overlay_bridge_gbps
  nat        server on the default bridge with `-p 15201:5201` on host2, client on host1's
             default bridge -> host2's fleet address:15201                 -> nat_gbps

ROUNDS rounds, the four paths interleaved in each (order rotated every round), median of
end.sum_received.bits_per_second per path; overlay_ratio = overlay / underlay (medians),
overlay_bridge_ratio and nat_ratio likewise. These top-level figures are on the fleet's
own underlay (Docker's default MTU, 1500). Then the same four paths again on an underlay of
MTU 9000 (`tests/fleet/fleet.py mtu 9000`, both overlays made again on it, MTU 8950
computed), under "jumbo"; the fleet is set back before the peer changes below.

Here every "host" is a container on one kernel, so each path is limited by CPU, not by a
link. Under "link_bound" the four paths run again (LINK_ROUNDS rounds) with host1's eth0
shaped to LINK_GBIT Gbit/s (`tc qdisc replace dev eth0 root tbf`), far below what the CPU
carries: the link is the limit, as with a NIC between real hosts. tbf counts every
segment's headers, so the overlay's 50 bytes per frame show; payload_ratio is the TCP
payload per frame of the overlay against the underlay (median MSS of each), the ratio a
link-bound overlay can reach at most. "jumbo" has its own "link_bound", on the jumbo underlay.

add_peer_seconds: with the overlay on the N hosts of the fleet, a host N+1 is booted
(`FLEET_SIZE=N+1 tests/fleet/fleet.py up`, not timed) and the ansible-playbook run of the
role on all N+1 hosts with network_verify=false is timed (a pure add: every old host only
gains a peer). remove_peer_seconds: the fleet shrunk back to N, the role on N hosts (also
without verification). A second add with network_verify=true (probe image pulled on the new
host, every probe pinging every other) gives add_peer_verified_seconds, then the fleet is
shrunk back again. Every time is ansible-playbook's wall time, start-up and SSH included.

At the end (finally): no bench container left, the fleet at its starting size, and the
overlay removed from every host (dockyard.fleet.overlay_net state=absent, bench/network/clean_up.yml).
"""

import datetime
import importlib.metadata
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from _bench import INVENTORY, REPO, BenchError, run_playbook
from _bench import ssh as fleet_ssh

PLAYS = REPO / "bench/network"
FLEET = ["python3", str(REPO / "tests/fleet/fleet.py")]

NETWORK = yaml.safe_load((PLAYS / "vars/main.yml").read_text())
OVERLAY = NETWORK["network_name"]
BRIDGE_OVERLAY = NETWORK["bench_bridge_overlay"]["network_name"]
NAMES = (OVERLAY, BRIDGE_OVERLAY)
CLIENT_HOST, SERVER_HOST = "host1", "host2"
SERVER_HOST_INDEX = 10  # the overlay server's address: the 10th of host2's subnet
NAT_PORT, IPERF_PORT = 15201, 5201
DURATION, OMIT = 5, 1
IPERF_ARGS = ["-t", str(DURATION), "-O", str(OMIT), "-P", "1", "-J"]
ROUNDS = 5
JUMBO_MTU = 9000
PATHS = ("underlay", "overlay", "nat", "overlay_bridge")
LINK_GBIT, LINK_ROUNDS = 4, 3  # the shaped link: well under the ~13-17 Gbit/s the CPU carries here
TARGETS = {"overlay_ratio": 0.85, "add_peer_seconds": 10.0}
SERVERS = {name: "bench-iperf-%s" % name for name in PATHS}
CLIENT = "bench-iperf-client"


def inventory_hosts():
    inventory = yaml.safe_load(INVENTORY.read_text())
    hosts = inventory["all"]["children"]["docker_hosts"]["hosts"]
    return {name: spec["ansible_host"] for name, spec in hosts.items()}, inventory["all"]["vars"]


def ssh(address, command, check=True, timeout=120):
    """A command on a fleet host (bench._bench.ssh), with this bench's shorter default timeout."""
    return fleet_ssh(address, command, check=check, timeout=timeout)


def playbook(play, extra=None):
    """ansible-playbook PLAY on the fleet's inventory; wall seconds. Fails on a non-zero exit."""
    return run_playbook(PLAYS / play, [extra] if extra else [])[0]


def fleet(*args, size=None):
    env = dict(os.environ)
    if size is not None:
        env["FLEET_SIZE"] = str(size)
    started = time.monotonic()
    run = subprocess.run([*FLEET, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise BenchError("fleet.py %s (FLEET_SIZE=%s) failed:\n%s%s" % (args, size, run.stdout, run.stderr))
    return run.stdout, round(time.monotonic() - started, 2)


def fleet_size():
    return json.loads(fleet("status")[0])["size"]


def overlay_plan(address, name=OVERLAY):
    """The plan the overlay module wrote on a host (subnet, ip_range, mtu, peers...)."""
    return json.loads(ssh(address, "cat /etc/dockyard/overlay/%s.json" % name))


def server_ip(address, name):
    """A fixed address of host2's own part of the overlay: its ip-range (l2) or its subnet (l3)."""
    plan = overlay_plan(address, name)
    return str(ipaddress.ip_network(plan["ip_range"] or plan["subnet"])[SERVER_HOST_INDEX])


# ---------------------------------------------------------------------- iperf3
def start_servers(server, image, overlay_ips):
    specs = {
        "underlay": ["--network", "host"],
        "overlay": ["--network", OVERLAY, "--ip", overlay_ips[OVERLAY]],
        "nat": ["-p", "%d:%d" % (NAT_PORT, IPERF_PORT)],
        "overlay_bridge": ["--network", BRIDGE_OVERLAY, "--ip", overlay_ips[BRIDGE_OVERLAY]],
    }
    for name, args in specs.items():
        command = "docker run -d --name %s %s %s iperf3 -s -p %d" % (SERVERS[name], " ".join(args), image, IPERF_PORT)
        ssh(server, command)


def iperf(client, image, path, target):
    """One iperf3 client run on host1; the parsed JSON. Retries while the server is not up yet."""
    network, address, port = target
    command = "docker run --rm --name %s --network %s %s iperf3 -c %s -p %d %s" % (
        CLIENT,
        network,
        image,
        address,
        port,
        " ".join(IPERF_ARGS),
    )
    for attempt in range(5):
        out = ssh(client, command, check=False, timeout=DURATION + 60)
        try:
            report = json.loads(out)
        except ValueError as exc:
            raise BenchError("%s: iperf3 printed no JSON: %r" % (path, out[-500:])) from exc
        if "error" not in report:
            return report
        if attempt == 4 or "connect" not in report["error"]:
            raise BenchError("%s: iperf3: %s" % (path, report["error"]))
        time.sleep(1)
    raise AssertionError("unreachable")


def summary(report):
    end = report["end"]
    return {
        "gbps": round(end["sum_received"]["bits_per_second"] / 1e9, 3),
        "sender_gbps": round(end["sum_sent"]["bits_per_second"] / 1e9, 3),
        "retransmits": end["sum_sent"].get("retransmits"),
        "client_cpu_percent": round(end["cpu_utilization_percent"]["host_total"], 1),
        "server_cpu_percent": round(end["cpu_utilization_percent"]["remote_total"], 1),
        "mss": report["start"].get("tcp_mss_default"),
    }


def measure_throughput(hosts, image, rounds):
    client, server = hosts[CLIENT_HOST], hosts[SERVER_HOST]
    overlay_ips = {name: server_ip(server, name) for name in NAMES}
    start_servers(server, image, overlay_ips)
    targets = {
        "underlay": ("host", server, IPERF_PORT),
        "overlay": (OVERLAY, overlay_ips[OVERLAY], IPERF_PORT),
        "nat": ("bridge", server, NAT_PORT),
        "overlay_bridge": (BRIDGE_OVERLAY, overlay_ips[BRIDGE_OVERLAY], IPERF_PORT),
    }
    runs = {name: [] for name in PATHS}
    order = list(PATHS)
    for dummy in range(rounds):
        for name in order:
            runs[name].append(summary(iperf(client, image, name, targets[name])))
        order = order[1:] + order[:1]
    medians = {name: round(statistics.median(r["gbps"] for r in runs[name]), 3) for name in PATHS}
    client_mtu = int(ssh(client, "cat /sys/class/net/vx-%s/mtu" % OVERLAY).strip())
    underlay_mtu = int(ssh(client, "cat /sys/class/net/eth0/mtu").strip())
    info = {
        "server_overlay_ip": overlay_ips[OVERLAY],
        "server_overlay_bridge_ip": overlay_ips[BRIDGE_OVERLAY],
        "overlay_mtu": client_mtu,
        "underlay_mtu": underlay_mtu,
    }
    return medians, runs, info


def paths_measured(hosts, image, rounds):
    """The four paths measured on the overlays in place: medians, ratios to the underlay, every run."""
    try:
        medians, runs, info = measure_throughput(hosts, image, rounds)
    finally:
        stop_servers(hosts)
    result = {"%s_gbps" % name: medians[name] for name in PATHS}
    for name in PATHS[1:]:
        result["%s_ratio" % name] = round(medians[name] / medians["underlay"], 3)
    result.update(info)
    result["runs"] = runs
    return result


def throughput(hosts, image):
    """Both overlays applied (timed), then the four paths measured."""
    result = {
        "overlay_apply_seconds": playbook("overlay.yml", {"network_verify": True}),
        "overlay_bridge_apply_seconds": playbook("overlay_bridge.yml"),
    }
    result.update(paths_measured(hosts, image, ROUNDS))
    return result


def throughput_on_shaped_link(hosts, image):
    """The four paths with the client host's eth0 shaped to LINK_GBIT: the link is the limit, not the CPU.

    Run on the overlays throughput() left in place. The shaper is removed whatever happens.
    """
    client = hosts[CLIENT_HOST]
    ssh(client, "tc qdisc replace dev eth0 root tbf rate %dgbit burst 4mb latency 20ms" % LINK_GBIT)
    try:
        result = paths_measured(hosts, image, LINK_ROUNDS)
    finally:
        ssh(client, "tc qdisc del dev eth0 root", check=False)
    mss = {name: statistics.median(run["mss"] for run in result["runs"][name]) for name in ("underlay", "overlay")}
    result["link_gbit"] = LINK_GBIT
    result["payload_ratio"] = round(mss["overlay"] / mss["underlay"], 3)
    return result


def throughput_on_jumbo_frames(hosts, image, start_size, start_mtu):
    """The same on an underlay of MTU 9000 (RFC 7348 4.3: the underlay should carry the VXLAN header), then back.

    Also link-bound there (throughput_on_shaped_link): the overlay's containers get MTU 8950, NAT's
    stay on Docker's default bridge at 1500.

    The fleet's network is switched live (tests/fleet/fleet.py mtu); both overlays are made again
    on it, since a Docker bridge network keeps the MTU it was created with.
    """
    clean_up(start_size)
    fleet("mtu", str(JUMBO_MTU))
    try:
        result = throughput(hosts, image)
        result["link_bound"] = throughput_on_shaped_link(hosts, image)
        return result
    finally:
        try:
            clean_up(start_size)
        finally:
            fleet("mtu", str(start_mtu))


def stop_servers(hosts):
    names = " ".join([*SERVERS.values(), CLIENT])
    for address in (hosts[CLIENT_HOST], hosts[SERVER_HOST]):
        ssh(address, "docker rm -f %s" % names, check=False)


# ---------------------------------------------------------------------- peers
def peers_of(address):
    return sorted(overlay_plan(address)["peers"])


def add_and_remove_peer(size, verify):
    """Boot host size+1 (not timed), time the role on size+1 hosts, shrink back, time the role on size."""
    dummy, boot_seconds = fleet("up", size=size + 1)
    hosts, dummy = inventory_hosts()
    new = sorted(hosts.items(), key=lambda item: ipaddress.ip_address(item[1]))[-1]
    add_seconds = playbook("overlay.yml", {"network_verify": verify})
    for name, address in hosts.items():
        if peers_of(address) != sorted(a for a in hosts.values() if a != address):
            raise BenchError("after the add, %s has peers %s" % (name, peers_of(address)))
    fleet("up", size=size)
    remove_seconds = playbook("overlay.yml", {"network_verify": verify})
    hosts, dummy = inventory_hosts()
    for name, address in hosts.items():
        if new[1] in peers_of(address):
            raise BenchError("after the removal, %s still has peer %s" % (name, new[1]))
    return {
        "new_host": new[0],
        "new_host_address": new[1],
        "boot_seconds": boot_seconds,
        "add_seconds": add_seconds,
        "remove_seconds": remove_seconds,
    }


def measure_peers(size):
    return {
        "without_verify": add_and_remove_peer(size, verify=False),
        "with_verify": add_and_remove_peer(size, verify=True),
    }


# ---------------------------------------------------------------------- main
def left_over(hosts):
    """What the finally block must have removed: containers, overlay device, Docker network, files."""
    problems = []
    names = "|".join(NAMES)
    check = " ".join(
        [
            "docker ps -a --format '{{.Names}}' | grep -E '^(bench-iperf-|(%s)-probe$)' || true;" % names,
            "docker network ls --format '{{.Name}}' | grep -E -x '%s' || true;" % names,
        ]
        + ["ip -br link show dev vx-%s 2>/dev/null || true;" % name for name in NAMES]
        + ["ls /etc/dockyard/overlay/%s.* 2>/dev/null || true;" % name for name in NAMES]
        + ["ls /etc/systemd/system/dockyard-overlay-%s.service 2>/dev/null || true;" % name for name in NAMES]
        + ["tc qdisc show dev eth0 | grep -o '^qdisc tbf' || true;"]  # throughput_on_shaped_link's shaper
    )
    for name, address in hosts.items():
        out = ssh(address, check, check=False).split()
        if out:
            problems.append("%s: %s" % (name, " ".join(out)))
    return problems


def clean_up(start_size):
    if fleet_size() != start_size:
        fleet("up", size=start_size)
    playbook("clean_up.yml")


def throughput_targets(prefix, measured):
    """The issue's two throughput targets for one measurement (paths_measured), keys with `prefix`."""
    return {
        prefix + "overlay_ratio_ge_0_85": measured["overlay_ratio"] >= TARGETS["overlay_ratio"],
        prefix + "overlay_faster_than_nat": measured["overlay_gbps"] > measured["nat_gbps"],
    }


def main(out_path):
    start_size = fleet_size()
    hosts, fleet_vars = inventory_hosts()
    image = "%s/nettools:latest" % fleet_vars["fleet_origin_registry"]
    result = {
        "hosts": {"client": CLIENT_HOST, "server": SERVER_HOST, "fleet_size": start_size},
        "overlay": {k: NETWORK[k] for k in ("network_name", "network_vni", "network_cluster_cidr")},
        "image": image,
        "iperf3": {"args": IPERF_ARGS, "port": IPERF_PORT, "nat_port": NAT_PORT},
        "rounds": ROUNDS,
        "duration": DURATION,
        "omit_seconds": OMIT,
        "ansible_core": importlib.metadata.version("ansible-core"),
    }
    try:
        clean_up(start_size)  # nothing from an earlier run
        result["iperf3"]["version"] = ssh(hosts[CLIENT_HOST], "docker run --rm %s iperf3 --version" % image).split()[1]
        result.update(throughput(hosts, image))
        result["link_bound"] = throughput_on_shaped_link(hosts, image)
        result["jumbo"] = throughput_on_jumbo_frames(hosts, image, start_size, result["underlay_mtu"])
        playbook("overlay.yml", {"network_verify": False})  # the N hosts a host joins (not timed)
        peers = measure_peers(start_size)
        result["add_peer_seconds"] = peers["without_verify"]["add_seconds"]
        result["remove_peer_seconds"] = peers["without_verify"]["remove_seconds"]
        result["add_peer_verified_seconds"] = peers["with_verify"]["add_seconds"]
        result["remove_peer_verified_seconds"] = peers["with_verify"]["remove_seconds"]
        result["peer_changes"] = peers
    finally:
        try:
            stop_servers(inventory_hosts()[0])
        finally:
            clean_up(start_size)
    problems = left_over(inventory_hosts()[0])
    if problems or fleet_size() != start_size:
        raise BenchError("not cleaned up: %s (fleet size %d)" % (problems, fleet_size()))
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: noisy when high
    result["targets"] = {
        **throughput_targets("", result),
        "add_peer_under_10s": result["add_peer_seconds"] < TARGETS["add_peer_seconds"],
        **throughput_targets("jumbo_", result["jumbo"]),
        **throughput_targets("link_bound_", result["link_bound"]),
        **throughput_targets("jumbo_link_bound_", result["jumbo"]["link_bound"]),
    }
    result["measured_at"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n")
    print(
        "underlay %.2f Gbit/s, overlay %.2f (ratio %.2f), nat %.2f, overlay over veth+bridge %.2f; "
        "link-bound (%d Gbit/s): overlay ratio %.3f, nat ratio %.3f; add peer %.2f s"
        % (
            result["underlay_gbps"],
            result["overlay_gbps"],
            result["overlay_ratio"],
            result["nat_gbps"],
            result["overlay_bridge_gbps"],
            LINK_GBIT,
            result["link_bound"]["overlay_ratio"],
            result["link_bound"]["nat_ratio"],
            result["add_peer_seconds"],
        )
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BenchError as exc:
        sys.exit("bench network: %s" % exc)
