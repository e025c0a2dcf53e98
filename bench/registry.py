"""make bench B=registry: pulls from the origin vs. the HA registry vs. the pull-through mirror, and
the VIP's failover gap under a pull loop.

On the test fleet, one run: the registry role as the integration target `registry` applies it
(SeaweedFS on the first mirror node as the shared S3 store, the nodes of `registry_nodes` behind
the VIP at .250 of the fleet subnet, a mirror of the origin on the first mirror node). The origin
registry stands for the internet: its link is rate-limited (tc tbf on the origin container's
eth0, BENCH_ORIGIN_MBIT, default 100 Mbit/s); the fleet's own network is left alone.

An image of BENCH_LAYERS (default 5) layers of BENCH_LAYER_MB (default 45) MB of random data each,
FROM scratch (no layer shared with anything on the hosts), made on host1, pushed to the origin and
through the VIP. Each pull is `docker pull` of that image on every Docker host at once; the time
is the wall time until the last host has it (the image removed from every host before each pull):

  pull_seconds.origin        from the origin directly (rate-limited link)
  pull_seconds.ha_cold       through the VIP, nothing of the image in the front's cache
  pull_seconds.ha_warm       through the VIP again (the front's cache of immutable content)
  pull_seconds.mirror_cold   through the mirror, which fetches from the origin (rate-limited)
  pull_seconds.mirror_warm   through the mirror again (served from its own storage)

failover: on a Docker host that is no registry node, two loops at once pull a small image each
through the VIP (removed before each pull) and a probe asks the VIP's /v2/ every 0.1 s; the node
holding the VIP is frozen (`docker pause`, a hung node) 8 s into the loops (BENCH_LOOP_SECONDS,
default 40) and thawed when they have ended (a thawed holder takes the VIP back: VRRP, it never
saw itself lose it); BENCH_FAILOVER_ROUNDS (default 3) such freezes. One loop pulls the way
the collection does (dockyard.fleet.docker_image_pull, the pull of docker_release too: a pull
that the move reset is pulled again), the other with the plain `docker pull` CLI, which has no
such retry (Docker retries layer downloads, not manifest requests).
  failover.gap_seconds                the longest time without a successful probe through the VIP
  failover.failed_pulls               pulls of the collection's loop that failed (all rounds)
  failover.docker_cli_failed_pulls    pulls of the `docker pull` loop that failed (all rounds)

At the end (finally): no rate limit, no node paused, the bench images removed from the hosts,
their manifests deleted from the origin and its storage garbage-collected.
"""

import datetime
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import yaml
from _bench import INVENTORY, REPO, BenchError, run_playbook, ssh

LAYERS = int(os.environ.get("BENCH_LAYERS", "5"))
LAYER_MB = int(os.environ.get("BENCH_LAYER_MB", "45"))
ORIGIN_MBIT = int(os.environ.get("BENCH_ORIGIN_MBIT", "100"))
LOOP_SECONDS = int(os.environ.get("BENCH_LOOP_SECONDS", "40"))
# freezes in a run: a move resets only what is in flight at that instant, so one freeze says little
FAILOVER_ROUNDS = int(os.environ.get("BENCH_FAILOVER_ROUNDS", "3"))
FREEZE_AFTER_SECONDS = 8
VIP_MOVE_WAIT_SECONDS = 6
TARGET_VARS = REPO / "tests/integration/targets/registry/vars.yml"
CONTAINER_BY_IP = REPO / "tests/integration/targets/registry/container_by_ip.sh"
REPOSITORY = "bench/registry-big"
SMALL_REPOSITORY = "bench/registry-small"
MODULE_REPOSITORY = "bench/registry-small-module"
PULL_LOOP = REPO / "tests/integration/targets/registry/pull_loop.yml"


def in_parallel(calls):
    """Each (function, args) in its own thread (not concurrent.futures: it imports the standard
    `logging`, which bench/logging.py shadows here); their results in order, the first error raised."""
    results, errors = [None] * len(calls), []

    def call(index, function, args):
        try:
            results[index] = function(*args)
        except (BenchError, subprocess.SubprocessError, OSError) as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(i, f, a)) for i, (f, a) in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def outer(*args):
    """A command on the machine that runs the fleet; its stdout."""
    run = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise BenchError("%s failed (exit %d): %s" % (" ".join(args), run.returncode, run.stderr.strip()))
    return run.stdout.strip()


class Fleet:
    """Addresses and names from the fleet's inventory."""

    def __init__(self):
        inventory = yaml.safe_load(INVENTORY.read_text())
        fleet_vars = inventory["all"]["vars"]
        children = inventory["all"]["children"]
        self.address = {name: host["ansible_host"] for name, host in children["docker_hosts"]["hosts"].items()}
        self.docker_hosts = list(children["docker_hosts"]["hosts"])
        self.nodes = list(children["registry_nodes"]["hosts"])
        self.mirror_node = next(iter(children["mirror_nodes"]["hosts"]))
        self.origin = fleet_vars["fleet_origin_registry"]
        self.origin_ip = fleet_vars["fleet_origin_registry_ip"]
        self.origin_local = fleet_vars["fleet_origin_registry_local"]
        self.ca = fleet_vars["fleet_ca_cert"]
        self.vip = fleet_vars["fleet_subnet"].split("/")[0].rsplit(".", 1)[0] + ".250"
        target_vars = yaml.safe_load(TARGET_VARS.read_text())
        self.mirror = "%s:%d" % (self.address[self.mirror_node], target_vars["registry_mirrors"][0]["port"])
        self.loop_host = next(h for h in self.docker_hosts if h not in self.nodes)

    def container(self, address):
        """The outer engine's container at a fleet address (this fleet's own subnet)."""
        return outer("bash", str(CONTAINER_BY_IP), address)

    def on(self, host, command, timeout=1800):
        return ssh(self.address[host], command, timeout=timeout)


def origin_rate_limit(fleet, on):
    """tbf on the origin's own eth0 (its egress: what the hosts download), inside its namespace."""
    pid = outer("docker", "inspect", "-f", "{{.State.Pid}}", fleet.container(fleet.origin_ip))
    tc = ["nsenter", "-t", pid, "-n", "tc", "qdisc"]
    if on:
        outer(
            *tc,
            "replace",
            "dev",
            "eth0",
            "root",
            "tbf",
            "rate",
            "%dmbit" % ORIGIN_MBIT,
            "burst",
            "256kb",
            "latency",
            "400ms",
        )
    else:
        subprocess.run([*tc, "del", "dev", "eth0", "root"], capture_output=True, check=False)


def build_images(fleet, tag):
    """The big image (random layers FROM scratch) and a small one, made on the first host."""
    builder = fleet.docker_hosts[0]
    copies = "".join("COPY layer%d /layer%d\n" % (n, n) for n in range(LAYERS))
    fleet.on(
        builder,
        "set -e; rm -rf /tmp/bench-registry; mkdir -p /tmp/bench-registry/small; cd /tmp/bench-registry;"
        " for n in $(seq 0 %d); do head -c %d /dev/urandom > layer$n; done;"
        " printf 'FROM scratch\\n%s' > Dockerfile; docker build -q -t %s/%s:%s . >/dev/null;"
        " head -c 2000000 /dev/urandom > small/blob; printf 'FROM scratch\\nCOPY blob /blob\\n' > small/Dockerfile;"
        " docker build -q -t %s/%s:%s small >/dev/null;"
        " head -c 2000000 /dev/urandom > small/blob; docker build -q -t %s/%s:%s small >/dev/null;"
        " rm -rf /tmp/bench-registry"
        % (
            LAYERS - 1,
            LAYER_MB * 1000000,
            copies,
            fleet.origin,
            REPOSITORY,
            tag,
            fleet.origin,
            SMALL_REPOSITORY,
            tag,
            fleet.origin,
            MODULE_REPOSITORY,
            tag,
        ),
    )
    pushes = [
        "docker push -q {o}/{r}:{t} >/dev/null",
        "docker tag {o}/{r}:{t} {v}/{r}:{t} && docker push -q {v}/{r}:{t} >/dev/null",
        "docker tag {o}/{s}:{t} {v}/{s}:{t} && docker push -q {v}/{s}:{t} >/dev/null",
        "docker tag {o}/{m}:{t} {v}/{m}:{t} && docker push -q {v}/{m}:{t} >/dev/null",
    ]
    for push in pushes:
        fleet.on(
            builder,
            push.format(o=fleet.origin, v=fleet.vip, r=REPOSITORY, s=SMALL_REPOSITORY, m=MODULE_REPOSITORY, t=tag),
        )


def references(fleet, tag):
    return ["%s/%s:%s" % (where, REPOSITORY, tag) for where in (fleet.origin, fleet.vip, fleet.mirror)]


def remove_everywhere(fleet, refs):
    """The image gone from every host (every tag of it, so its layers too)."""
    command = "docker rmi -f %s >/dev/null 2>&1; docker image prune -f >/dev/null; true" % " ".join(refs)
    in_parallel([(fleet.on, (host, command)) for host in fleet.docker_hosts])


def pull_everywhere(fleet, ref):
    """docker pull REF on every host at once; seconds until the last one has it."""
    started = time.monotonic()
    in_parallel([(fleet.on, (host, "docker pull -q %s >/dev/null" % ref)) for host in fleet.docker_hosts])
    return round(time.monotonic() - started, 2)


LOOP = r"""
end=$((SECONDS+{loop}))
( while [ $SECONDS -lt $end ]; do
    if curl -s -o /dev/null -m 1 --cacert /etc/docker/certs.d/{vip}/ca.crt -w '%{{http_code}}' \
        https://{vip}/v2/ | grep -q 401
    then echo "$(date +%s.%N) up"; else echo "$(date +%s.%N) down"; fi
    sleep 0.1
  done > /tmp/bench-registry-probe.log ) &
while [ $SECONDS -lt $end ]; do
  docker rmi -f {vip}/{small} >/dev/null 2>&1
  if timeout 90 docker pull -q {vip}/{small} >/dev/null 2>>/tmp/bench-registry-loop.err
  then echo "$(date +%s.%N) ok"; else echo "$(date +%s.%N) fail"; fi
done > /tmp/bench-registry-loop.log
wait
"""


def module_loop(fleet, tag, rounds_file):
    """The collection's pull in a loop on the loop host until the deadline (a playbook run)."""
    run_playbook(
        PULL_LOOP,
        [
            {
                "pull_loop_host": fleet.loop_host,
                "pull_loop_image": "%s/%s:%s" % (fleet.vip, MODULE_REPOSITORY, tag),
                "pull_loop_deadline": time.time() + LOOP_SECONDS,
                "pull_loop_max_rounds": LOOP_SECONDS * 4,
                "pull_loop_rounds_file": str(rounds_file),
            }
        ],
    )
    return json.loads(rounds_file.read_text())


def failovers(fleet, tag):
    """FAILOVER_ROUNDS freezes of whichever node holds the VIP: the keys summed (the gap: the longest),
    and each round's details."""
    keys, rounds = {"gap_seconds": 0.0, "failed_pulls": 0, "docker_cli_failed_pulls": 0}, []
    for dummy in range(FAILOVER_ROUNDS):
        found, details = failover(fleet, tag)
        if not details["vip_moved_to"]:
            frozen = details["frozen_node"]
            raise BenchError("the VIP did not move away from the frozen %s: no failover measured" % frozen)
        keys["gap_seconds"] = max(keys["gap_seconds"], found["gap_seconds"])
        keys["failed_pulls"] += found["failed_pulls"]
        keys["docker_cli_failed_pulls"] += found["docker_cli_failed_pulls"]
        rounds.append({**found, **details})
        time.sleep(5)  # the thawed holder takes the VIP back (VRRP): let that settle before the next freeze
    totals = {
        "rounds": FAILOVER_ROUNDS,
        "pulls": sum(r["pulls"] for r in rounds),
        "pulls_retried": sum(r["pulls_retried"] for r in rounds),
        "docker_cli_pulls": sum(r["docker_cli_pulls"] for r in rounds),
    }
    return keys, {**totals, "per_round": rounds}


def vip_holders(fleet, nodes):
    """Which of NODES have the VIP on an interface. Never pass the frozen node: its sshd is paused
    and the read would hang (the timeout makes that a failure, not a hung benchmark)."""
    return [h for h in nodes if "%s/" % fleet.vip in fleet.on(h, "ip -4 -o addr show", timeout=30)]


def failover(fleet, tag):
    """Freeze the VIP holder while both loops and the probe run on a host that is no node; the keys
    of the results, and what happened (pulls, retries, the frozen node, the last pull errors)."""
    holder = vip_holders(fleet, fleet.nodes)[0]
    container = fleet.container(fleet.address[holder])
    script = LOOP.format(loop=LOOP_SECONDS, vip=fleet.vip, small="%s:%s" % (SMALL_REPOSITORY, tag))
    fleet.on(
        fleet.loop_host,
        "rm -f /tmp/bench-registry-*; docker pull -q %s/%s:%s >/dev/null" % (fleet.vip, SMALL_REPOSITORY, tag),
    )
    rounds_file = REPO / "tests/output/bench-registry-module-rounds.json"
    rounds_file.parent.mkdir(parents=True, exist_ok=True)
    rounds_file.unlink(missing_ok=True)
    errors, module_rounds = [], []

    def run_loop():
        try:
            fleet.on(fleet.loop_host, script, LOOP_SECONDS + 200)
        except (BenchError, subprocess.SubprocessError, OSError) as error:
            errors.append(error)

    def run_module_loop():
        try:
            module_rounds.extend(module_loop(fleet, tag, rounds_file))
        except (BenchError, subprocess.SubprocessError, OSError, ValueError) as error:
            errors.append(error)

    loops = [threading.Thread(target=run_loop), threading.Thread(target=run_module_loop)]
    for loop in loops:
        loop.start()
    time.sleep(FREEZE_AFTER_SECONDS)
    frozen_at = time.time()
    outer("docker", "pause", container)
    try:
        time.sleep(VIP_MOVE_WAIT_SECONDS)  # keepalived's peers miss 3 adverts (advert_int 1), then take it
        moved_to = vip_holders(fleet, [h for h in fleet.nodes if h != holder])
        for loop in loops:
            loop.join()
    finally:
        outer("docker", "unpause", container)
    if errors:
        raise errors[0]
    pulls = fleet.on(fleet.loop_host, "cat /tmp/bench-registry-loop.log").split("\n")
    probes = [line.split() for line in fleet.on(fleet.loop_host, "cat /tmp/bench-registry-probe.log").splitlines()]
    errors = fleet.on(fleet.loop_host, "cat /tmp/bench-registry-loop.err; rm -f /tmp/bench-registry-*")
    ups = [float(stamp) for stamp, state in probes if state == "up"]
    gap = max((b - a for a, b in itertools.pairwise(ups)), default=float(LOOP_SECONDS))
    return {
        "gap_seconds": round(gap, 2),
        "failed_pulls": sum(1 for r in module_rounds if not r["ok"]),
        "docker_cli_failed_pulls": sum(1 for line in pulls if line.endswith(" fail")),
    }, {
        "pulls": len(module_rounds),
        "pulls_retried": sum(1 for r in module_rounds if r["ok"] and r["attempts"] > 1),
        "pulls_after_the_freeze": sum(1 for r in module_rounds if r["at"] > frozen_at),
        "module_pull_errors": [r["msg"] for r in module_rounds if not r["ok"]][-5:],
        "docker_cli_pulls": sum(1 for line in pulls if line.endswith((" ok", " fail"))),
        "docker_cli_pull_errors": errors.strip().splitlines()[-5:],
        "frozen_node": holder,
        "vip_moved_to": moved_to,  # the nodes holding the VIP 6 s into the freeze: the move happened
        "frozen_after_seconds": FREEZE_AFTER_SECONDS,
        "loop_seconds": LOOP_SECONDS,
    }


def clean_origin(fleet, tag):
    """The bench's manifests deleted from the origin, its storage collected (it lives in the cache dir)."""
    for repository in (REPOSITORY, SMALL_REPOSITORY, MODULE_REPOSITORY):
        url = "https://%s/v2/%s/manifests/" % (fleet.origin_local, repository)
        accept = "Accept: application/vnd.docker.distribution.manifest.v2+json"
        digest = subprocess.run(
            ["curl", "-sfI", "--cacert", fleet.ca, "-H", accept, url + tag], capture_output=True, text=True, check=False
        ).stdout
        for line in digest.splitlines():
            if line.lower().startswith("docker-content-digest:"):
                subprocess.run(
                    ["curl", "-sf", "--cacert", fleet.ca, "-X", "DELETE", url + line.split(":", 1)[1].strip()],
                    capture_output=True,
                    check=False,
                )
    subprocess.run(
        [
            "docker",
            "exec",
            fleet.container(fleet.origin_ip),
            "registry",
            "garbage-collect",
            "--delete-untagged",
            "/etc/docker/registry/config.yml",
        ],
        capture_output=True,
        check=False,
    )


def main(out_path):
    fleet = Fleet()
    tag = uuid.uuid4().hex[:12]
    extra = ["@%s" % TARGET_VARS]
    run_playbook(REPO / "tests/integration/targets/registry/seaweedfs.yml", extra)
    run_playbook(REPO / "playbooks/registry.yml", extra)
    refs = references(fleet, tag)
    try:
        build_images(fleet, tag)
        remove_everywhere(fleet, refs)
        origin_rate_limit(fleet, True)
        pulls = {}
        for name, ref in (
            ("origin", refs[0]),
            ("ha_cold", refs[1]),
            ("ha_warm", refs[1]),
            ("mirror_cold", refs[2]),
            ("mirror_warm", refs[2]),
        ):
            pulls[name] = pull_everywhere(fleet, ref)
            remove_everywhere(fleet, refs)
        origin_rate_limit(fleet, False)
        gap, gap_details = failovers(fleet, tag)
        results = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "image_mb": LAYERS * LAYER_MB,
            "layers": LAYERS,
            "hosts": len(fleet.docker_hosts),
            "origin_mbit": ORIGIN_MBIT,
            "pull_seconds": pulls,
            "failover": gap,
            "failover_details": gap_details,
            "speedup": {
                "ha_warm": round(pulls["origin"] / pulls["ha_warm"], 1),
                "mirror_warm": round(pulls["origin"] / pulls["mirror_warm"], 1),
            },
            "load_average": fleet.on(fleet.docker_hosts[0], "cat /proc/loadavg").split()[:3],
            "targets": {"warm_speedup_min": 3.0, "failover_gap_seconds_max": 5.0, "failover_failed_pulls": 0},
        }
        with open(out_path, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
            handle.write("\n")
    finally:
        origin_rate_limit(fleet, False)
        for node in fleet.nodes:
            subprocess.run(
                ["docker", "unpause", fleet.container(fleet.address[node])], capture_output=True, check=False
            )
        remove_everywhere(
            fleet,
            [
                *refs,
                "%s/%s:%s" % (fleet.origin, SMALL_REPOSITORY, tag),
                "%s/%s:%s" % (fleet.vip, SMALL_REPOSITORY, tag),
                "%s/%s:%s" % (fleet.origin, MODULE_REPOSITORY, tag),
                "%s/%s:%s" % (fleet.vip, MODULE_REPOSITORY, tag),
            ],
        )
        clean_origin(fleet, tag)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(REPO / "bench/results/registry.json"))
