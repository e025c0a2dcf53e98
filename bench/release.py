"""make bench B=release: requests dropped during releases, and how long releases take.

A load client on the controller (bench/load_client.py: ~80 req/s of GET /version, half on
keep-alive connections, half on a new connection each) runs against the app on one host
during each phase, from LEAD_SECONDS before the playbook starts to TAIL_SECONDS after it ends:

  ours     dockyard.fleet.docker_release (blue/green), bench/release/ours.yml on port 18090:
           v1_to_v2        release v2 over v1                    -> release_seconds
           v2_to_broken    release the broken build: its health gate fails, v2 keeps serving
           rollback_to_v1  state rolled_back (previous), image present -> rollback_seconds
           plus noop_seconds: the v2 release run again (nothing to do), median of NOOP_ROUNDS
           ansible-playbook runs, next to noop_playbook_overhead_seconds (the same play doing
           only ansible.builtin.ping) and noop_minus_overhead_seconds (median of the paired
           differences), so the module's share can be seen.
  anchor   community.docker.docker_container (from PyPI `ansible`, in a venv under
           ${DOCKYARD_FLEET_CACHE:-~/.cache/dockyard-fleet}/anchor-venv made on demand):
           the same v1 -> v2 change of image (a recreate) on port 18091, and its own
           no-op re-run (anchor.noop_seconds; noop_ratio_ours_to_anchor puts ours beside it).

A keep-alive worker retries once on a fresh connection only when its reused connection was
closed before any response byte (what nginx does to idle keep-alive connections on a graceful
reload); those are counted in retried_on_reused_connection, never hidden.
Times are ansible-playbook wall times (start-up, SSH and the task); `history_record_seconds`
is the module's own record on the host (started_at -> ended_at, after the image check).
Targets of the issue: ours 0 failed requests in all three phases, rollback under 5 s,
no-op under 1.5 s. Images are pulled before the timed phases (not timed); benchapp and
benchanchor are removed at the end.
"""

import datetime
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _bench import INVENTORY, REPO, VENV_BIN, BenchError, changed_count, run_playbook
from load_client import LoadClient

PLAYS = REPO / "bench/release"
CACHE = Path(os.environ.get("DOCKYARD_FLEET_CACHE", Path.home() / ".cache/dockyard-fleet"))
ANCHOR_VENV = CACHE / "anchor-venv"
ANCHOR_REQUIREMENT = "ansible==12.*"
HOST = "host1"
OURS_PORT, ANCHOR_PORT = 18090, 18091
RATE, WORKERS = 80, 8
LEAD_SECONDS, TAIL_SECONDS = 0.5, 1.0
NOOP_ROUNDS = 5
TARGETS = {"rollback_seconds": 5.0, "noop_seconds": 1.5}


def playbook(play, bench_vars, bin_dir=VENV_BIN):
    """Run one play on HOST; (wall seconds, output). Fails on a non-zero exit."""
    return run_playbook(PLAYS / play, [{"bench_host": HOST, **bench_vars}], bin_dir)


def ensure_anchor_venv():
    """A venv with PyPI `ansible` (bundles community.docker), made once outside the repo."""
    marker = ANCHOR_VENV / ".installed"
    if not marker.exists():
        print("creating %s with %s" % (ANCHOR_VENV, ANCHOR_REQUIREMENT), flush=True)
        subprocess.run(["python3", "-m", "venv", str(ANCHOR_VENV)], check=True)
        pip = [str(ANCHOR_VENV / "bin/pip"), "install", "--quiet", ANCHOR_REQUIREMENT]
        subprocess.run(pip, check=True)
        marker.write_text(ANCHOR_REQUIREMENT + "\n")
    probe = (
        "import importlib.metadata as m, json, pathlib, ansible_collections.community.docker as d\n"
        "manifest = json.loads((pathlib.Path(d.__path__[0]) / 'MANIFEST.json').read_text())\n"
        "print(m.version('ansible'), m.version('ansible-core'), manifest['collection_info']['version'])"
    )
    out = subprocess.run([str(ANCHOR_VENV / "bin/python"), "-c", probe], check=True, capture_output=True, text=True)
    ansible, core, docker = out.stdout.split()
    return {"ansible": ansible, "ansible_core": core, "community_docker": docker}


def host_address():
    inventory = yaml.safe_load(INVENTORY.read_text())
    return inventory["all"]["children"]["docker_hosts"]["hosts"][HOST]["ansible_host"]


def wait_serving(client, timeout=30):
    """Block until the port answers GET /version with 200; the version answering."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.start()
        time.sleep(0.3)
        stats = client.stop()
        if stats["failed_requests"] == 0 and stats["total_requests"]:
            return stats["last_version"]
    raise BenchError("nothing answers on %s:%s" % (client.host, client.port))


def under_load(client, play, bench_vars, bin_dir=VENV_BIN):
    """Run the play while the load client runs; the phase's numbers."""
    client.start()
    time.sleep(LEAD_SECONDS)
    began = time.time() - client.started_wall
    try:
        seconds, dummy = playbook(play, bench_vars, bin_dir)
    finally:
        time.sleep(TAIL_SECONDS)
        stats = client.stop()
    # t of the failures is seconds since the load began; the playbook ran from playbook_t[0] to [1].
    return {"playbook_seconds": seconds, "playbook_t": [round(began, 3), round(began + seconds, 3)], **stats}


def expect_version(phase, name, version):
    if phase["last_version"] != version:
        raise BenchError("after %s the app answered %s, not %s: %s" % (name, phase["last_version"], version, phase))


def history_records():
    """benchapp's release records on HOST (its history file), with the module's own seconds."""
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        dest = Path(tmp) / "history.json"
        cmd = [str(VENV_BIN / "ansible"), "-i", str(INVENTORY), HOST, "-m", "ansible.builtin.fetch"]
        cmd += ["-a", "src=/var/lib/dockyard/releases/benchapp.json dest=%s flat=true" % dest]
        env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
        subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
        records = json.loads(dest.read_text())["releases"]
    for record in records:
        if record.get("started_at") and record.get("ended_at"):
            started, ended = (datetime.datetime.fromisoformat(record[k]) for k in ("started_at", "ended_at"))
            record["seconds"] = round((ended - started).total_seconds(), 2)
    return records


def phase_of(record, versions):
    if record.get("rollback_of"):
        return "rollback_to_v1"
    return {versions["good2"]: "v1_to_v2", versions["broken"]: "v2_to_broken"}.get(record.get("version"))


def run_ours(client):
    playbook("ours.yml", {"bench_version": "good"})  # v1, not measured
    served_v1 = wait_serving(client)
    phases = {"v1_to_v2": under_load(client, "ours.yml", {"bench_version": "good2"})}
    served_v2 = phases["v1_to_v2"]["last_version"]
    if served_v2 == served_v1:
        raise BenchError("v1_to_v2: still %s answering" % served_v1)

    noop, overhead = [], []
    for dummy in range(NOOP_ROUNDS):
        seconds, output = playbook("ours.yml", {"bench_version": "good2"})
        if changed_count(output):
            raise BenchError("the no-op re-run changed something:\n%s" % output)
        noop.append(seconds)
        overhead.append(playbook("ping.yml", {})[0])

    module_share = [release - ping for release, ping in zip(noop, overhead, strict=True)]

    phases["v2_to_broken"] = under_load(client, "ours.yml", {"bench_version": "broken", "bench_expect_failure": True})
    expect_version(phases["v2_to_broken"], "v2_to_broken", served_v2)
    phases["rollback_to_v1"] = under_load(client, "ours.yml", {"bench_state": "rolled_back"})
    expect_version(phases["rollback_to_v1"], "rollback_to_v1", served_v1)

    versions = yaml.safe_load(INVENTORY.read_text())["all"]["vars"]["fleet_demo_app_versions"]
    for record in history_records():
        name = phase_of(record, versions)
        if name and "seconds" in record:
            phases[name]["history_record_seconds"] = record["seconds"]
    return {
        "failed_requests": sum(p["failed_requests"] for p in phases.values()),
        "total_requests": sum(p["total_requests"] for p in phases.values()),
        "retried_on_reused_connection": sum(p["retried_on_reused_connection"] for p in phases.values()),
        "release_seconds": phases["v1_to_v2"]["playbook_seconds"],
        "rollback_seconds": phases["rollback_to_v1"]["playbook_seconds"],
        "noop_seconds": round(statistics.median(noop), 2),
        "noop_playbook_overhead_seconds": round(statistics.median(overhead), 2),
        "noop_minus_overhead_seconds": round(statistics.median(module_share), 2),
        "noop_rounds": {"release": noop, "ping": overhead},
        "phases": phases,
    }


def run_anchor(client, anchor_bin):
    playbook("anchor.yml", {"bench_version": "good"}, anchor_bin)  # v1, not measured
    served_v1 = wait_serving(client)
    phase = under_load(client, "anchor.yml", {"bench_version": "good2"}, anchor_bin)
    if phase["last_version"] == served_v1:
        raise BenchError("anchor: still %s answering" % served_v1)
    # The anchor's own no-op re-run (docker_container with nothing to change), for scale:
    # both pay ansible-playbook's start-up and one SSH round trip.
    noop = []
    for dummy in range(NOOP_ROUNDS):
        seconds, output = playbook("anchor.yml", {"bench_version": "good2"}, anchor_bin)
        if changed_count(output):
            raise BenchError("the anchor's no-op re-run changed something:\n%s" % output)
        noop.append(seconds)
    return {
        "failed_requests": phase["failed_requests"],
        "total_requests": phase["total_requests"],
        "retried_on_reused_connection": phase["retried_on_reused_connection"],
        "release_seconds": phase["playbook_seconds"],
        "noop_seconds": round(statistics.median(noop), 2),
        "noop_rounds": noop,
        "phases": {"v1_to_v2": phase},
    }


def clean_up(anchor_bin, pull=False):
    """No benchapp, no benchanchor on HOST (and with pull, every image the phases use present)."""
    playbook("prepare.yml", {"bench_pull": pull})
    playbook("anchor.yml", {"bench_state": "absent"}, anchor_bin)


def main(out_path):
    address = host_address()
    anchor_versions = ensure_anchor_venv()
    anchor_bin = ANCHOR_VENV / "bin"
    result = {"host": HOST, "address": address, "rate_per_second": RATE, "workers": WORKERS}
    result["ansible_core"] = importlib.metadata.version("ansible-core")
    try:
        clean_up(anchor_bin, pull=True)
        result["ours"] = run_ours(LoadClient(address, OURS_PORT, rate=RATE, workers=WORKERS))
        result["anchor"] = run_anchor(LoadClient(address, ANCHOR_PORT, rate=RATE, workers=WORKERS), anchor_bin)
    finally:
        clean_up(anchor_bin)
    ours = result["ours"]
    result["anchor"]["tools"] = anchor_versions
    result["targets"] = {
        "ours_zero_failed_requests": ours["failed_requests"] == 0,
        "rollback_under_5s": ours["rollback_seconds"] < TARGETS["rollback_seconds"],
        "noop_under_1_5s": ours["noop_seconds"] < TARGETS["noop_seconds"],
    }
    result["noop_ratio_ours_to_anchor"] = round(ours["noop_seconds"] / result["anchor"]["noop_seconds"], 2)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: noisy when high
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(out_path).write_text(json.dumps(result, indent=2) + "\n")
    for name in ("ours", "anchor"):
        print("%s: %d failed of %d requests" % (name, result[name]["failed_requests"], result[name]["total_requests"]))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except BenchError as exc:
        sys.exit("bench release: %s" % exc)
