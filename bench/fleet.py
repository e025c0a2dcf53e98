"""make bench B=fleet: how long the test fleet takes to come up, and SSH round-trips.

Measures, on this machine, side by side in one run:
  cold_up_seconds    fleet-down, then fleet-up: everything on the engine is new, the
                     image caches outside the repo (base tarball, origin storage) are used
  warm_up_seconds    fleet-up again right after: nothing to do
  ping_seconds       per host, `ansible HOST -m ping` over SSH: first call and median of 5
  ssh_true_seconds   per host, median of 5 plain `ssh HOST true` (no Ansible start-up)
With BENCH_FLEET_BUILD=1 it first measures build_up_seconds: fleet-up from an empty
cache (debootstrap and every image build), in a temporary cache directory.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests/fleet"))
import fleet  # noqa: E402 - the harness's own ssh options, not a copy of them

FLEET = [sys.executable, str(REPO / "tests/fleet/fleet.py")]
ANSIBLE = str(REPO / ".venv/bin/ansible")
PING_ROUNDS = 5


def timed(cmd, env=None):
    started = time.monotonic()
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    return round(time.monotonic() - started, 2)


def ping_seconds(host):
    rounds = []
    for dummy in range(PING_ROUNDS):
        started = time.monotonic()
        subprocess.run([ANSIBLE, host, "-m", "ansible.builtin.ping"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        rounds.append(time.monotonic() - started)
    return {"first": round(rounds[0], 3), "median": round(statistics.median(rounds), 3)}


def ssh_seconds(state, host):
    """A bare `ssh host true`, to tell Ansible's own start-up cost from the SSH round-trip."""
    cmd = fleet.ssh_command(fleet.Settings.from_env(), state["hosts"][host], "true")
    rounds = []
    for dummy in range(PING_ROUNDS):
        started = time.monotonic()
        subprocess.run(cmd, check=True)
        rounds.append(time.monotonic() - started)
    return round(statistics.median(rounds), 3)


def main(out_path):
    result = {"fleet_size": int(os.environ.get("FLEET_SIZE", "3"))}
    if os.environ.get("BENCH_FLEET_BUILD") == "1":
        with tempfile.TemporaryDirectory(prefix="dockyard-bench-cache-") as cache:
            env = {**os.environ, "DOCKYARD_FLEET_CACHE": cache}
            timed([*FLEET, "down"], env)
            result["build_up_seconds"] = timed([*FLEET, "up"], env)
            timed([*FLEET, "down"], env)
    timed([*FLEET, "down"])
    result["cold_up_seconds"] = timed([*FLEET, "up"])
    result["warm_up_seconds"] = timed([*FLEET, "up"])
    result["warm_to_cold_ratio"] = round(result["warm_up_seconds"] / result["cold_up_seconds"], 3)
    state = json.loads((REPO / ".fleet/fleet.json").read_text())
    result["ping_seconds"] = {host: ping_seconds(host) for host in sorted(state["hosts"])}
    result["ssh_true_seconds"] = {host: ssh_seconds(state, host) for host in sorted(state["hosts"])}
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
