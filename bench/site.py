"""make bench B=site: playbooks/site.yml wall time on a fresh fleet of 3 and of 6 hosts.

For each size, side by side in one run:
  converge_seconds_N  fleet-down, fleet-up with N hosts, then site.yml (prod example
                      inventory: daemon.json, logging to the test receiver, overlay network with
                      its verification, the HA registry on two nodes with a mirror on the last host,
                      storage, demo-app released from Git) on hosts that have none of it
  noop_seconds_N      site.yml again right after: nothing to change (checked: changed=0)
  cpu_seconds         per run, the CPU of the controller (ansible-playbook and its forks) and of
                      the fleet's host containers (cgroups): where the time goes
Targets: converge_seconds_6 / converge_seconds_3 < 1.4 (hosts run in parallel, forks=10);
noop_seconds_N / converge_seconds_N < 0.4. The fleet is left fresh (down, then up) at FLEET_SIZE
(default 3), without the site's registry, object store or apps.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _bench import REPO, changed_count, run_playbook

sys.path.insert(0, str(REPO / "scripts"))
from demo import make_app_repository, start_log_receiver, start_object_store  # the demo's fixtures

FLEET = [sys.executable, str(REPO / "tests/fleet/fleet.py")]
SITE = REPO / "playbooks/site.yml"
PROD = REPO / "examples/inventories/prod"


def fleet(command, size):
    subprocess.run([*FLEET, command], check=True, cwd=REPO, env={**os.environ, "FLEET_SIZE": str(size)})


def fleet_hosts_cpu_seconds():
    """CPU seconds the fleet's host containers have used (cgroup cpu.stat), or None without cgroups."""
    fleet_name = os.environ.get("FLEET_NAME") or "dockyard-fleet"  # tests/fleet/fleet.py's prefix
    ids = subprocess.run(
        [
            "docker",
            "ps",
            "--no-trunc",
            "--filter",
            "label=dockyard.fleet.name=" + fleet_name,
            "--filter",
            "name=%s-host" % fleet_name,
            "--format",
            "{{.ID}}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not ids:
        return None  # no fleet hosts found: no figure rather than a false 0
    total = 0
    for cid in ids:
        for path in (
            "/sys/fs/cgroup/unified/docker/%s/cpu.stat" % cid,  # cgroup v1 hybrid (this machine)
            "/sys/fs/cgroup/system.slice/docker-%s.scope/cpu.stat" % cid,  # cgroup v2
        ):
            if os.path.exists(path):
                with open(path) as stat:
                    total += int(stat.readline().split()[1])  # usage_usec
                break
        else:
            return None
    return total / 1e6


def controller_cpu_seconds():
    """CPU seconds of this process's finished children (ansible-playbook and its forks)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_site(extra, env):
    """(wall seconds, output, controller CPU seconds, fleet hosts' CPU seconds or None) of one site.yml run."""
    controller, hosts = controller_cpu_seconds(), fleet_hosts_cpu_seconds()
    seconds, out = run_playbook(SITE, extra, env_extra=env, inventories=[PROD])
    hosts_after = fleet_hosts_cpu_seconds()
    hosts_used = None if hosts is None or hosts_after is None else round(hosts_after - hosts, 1)
    return seconds, out, round(controller_cpu_seconds() - controller, 1), hosts_used


def measure(size, checkouts):
    fleet("down", size)
    fleet("up", size)
    fleet_vars = json.loads((REPO / ".fleet/fleet-vars.yml").read_text())
    start_log_receiver(fleet_vars["fleet_gateway"])  # where the example inventories ship container logs
    start_object_store()  # the prod registry's S3 store (the environment's, like the receiver: not timed)
    git_root = make_app_repository()
    env = {"DOCKYARD_GIT_ROOT": str(git_root)}
    extra = ["site_checkout_root=%s/%d" % (checkouts, size)]
    converge, out, converge_controller, converge_hosts = timed_site(extra, env)
    noop, out_noop, noop_controller, noop_hosts = timed_site(extra, env)
    if changed_count(out_noop):
        changed = changed_count(out_noop)
        raise SystemExit("site.yml re-run on %d hosts changed %d things:\n%s" % (size, changed, out_noop))
    print("site: %d hosts: converge %.1f s (changed %d), no-op %.1f s" % (size, converge, changed_count(out), noop))
    cpu = {
        "converge_controller_cpu_seconds_%d" % size: converge_controller,
        "converge_hosts_cpu_seconds_%d" % size: converge_hosts,
        "noop_controller_cpu_seconds_%d" % size: noop_controller,
        "noop_hosts_cpu_seconds_%d" % size: noop_hosts,
    }
    return converge, noop, cpu


def main(out_path):
    result = {}
    # Where the time goes: the fleet's hosts share this machine's cores with the controller, so
    # work on the hosts (image pulls, module runs) grows with their number here, unlike on a real
    # fleet where each host has its own CPU.
    cpu = {}
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-site-") as checkouts:
        for size in (3, 6):
            converge, noop, cpu_of_size = measure(size, checkouts)
            result["converge_seconds_%d" % size] = converge
            result["noop_seconds_%d" % size] = noop
            cpu.update(cpu_of_size)
    # A fresh fleet again: the site's registry, object store and apps would meet the next test's own.
    fleet("down", 6)
    fleet("up", int(os.environ.get("FLEET_SIZE", "3")))
    scale = result["converge_seconds_6"] / result["converge_seconds_3"]
    noop = {size: result["noop_seconds_%d" % size] / result["converge_seconds_%d" % size] for size in (3, 6)}
    result["scale_ratio_6_to_3"] = round(scale, 3)
    result["noop_ratio_3"] = round(noop[3], 3)
    result["noop_ratio_6"] = round(noop[6], 3)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: noisy when high
    # The targets on the ratios as measured, not as rounded for the report.
    result["targets"] = {
        "scale_ratio_under_1_4": scale < 1.4,
        "noop_under_40_percent": max(noop.values()) < 0.4,
    }
    result["cpu_seconds"] = cpu
    result["forks"] = 10
    result["machine"] = "2 cores; every fleet host is a container on this one kernel"
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
