"""`make demo`: the whole stack on the test fleet, as a newcomer would run it.

1. the example app's deploy side (examples/apps/demo-app) goes into a Git repository
   (.fleet/git/demo-app), as a team keeps it;
2. playbooks/site.yml with the prod example inventory: Docker hosts, logging (to the
   test Elasticsearch receiver it starts on the fleet gateway), overlay network, storage,
   demo-app v1 released from Git;
3. demo-app v2 released by site.yml while every host takes HTTP traffic;
4. site.yml --check: nothing left to change;
5. a summary: where to look, what each host runs, how many requests failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from _bench import ssh  # noqa: E402
from load_client import LoadClient  # noqa: E402

FLEET = REPO / ".fleet"
APP = "demo-app"
APP_PORT = 8090  # examples/inventories/*/group_vars/docker_hosts.yml
OVERLAY = "site"  # examples/inventories/*/group_vars/all.yml: network_name


def say(text):
    print(f"\n==> {text}", flush=True)


def make_app_repository() -> Path:
    """The deploy side of demo-app in a Git repository (a team's repo in real life).

    Made on first use; later uses commit what changed in examples/apps/demo-app since, as a
    team would, so the demo always deploys the example as it is in this checkout.
    """
    root = FLEET / "git"
    repo = root / APP
    git = ["git", "-C", str(repo), "-c", "user.name=demo", "-c", "user.email=demo@dockyard.test"]
    if not (repo / ".git").is_dir():
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(REPO / "examples" / "apps" / APP, repo, dirs_exist_ok=True)
    subprocess.run([*git, "add", "-A"], check=True)
    status = subprocess.run([*git, "status", "--porcelain"], check=True, capture_output=True, text=True).stdout
    if status.strip():
        subprocess.run([*git, "commit", "-qm", f"{APP}: deploy side from examples/apps/{APP}"], check=True)
    return root


def site(git_root: Path, version: str, *extra: str) -> subprocess.CompletedProcess:
    argv = [
        str(REPO / ".venv" / "bin" / "ansible-playbook"),
        "-i",
        str(FLEET / "inventory.yml"),
        "-i",
        str(REPO / "examples" / "inventories" / "prod"),
        str(REPO / "playbooks" / "site.yml"),
        "-e",
        f"demo_app_version={version}",
        *extra,
    ]
    env = {**os.environ, "DOCKYARD_GIT_ROOT": str(git_root)}
    shown = " ".join(argv[0:1] + [a.replace(str(REPO) + "/", "") for a in argv[1:]])
    print(f"$ DOCKYARD_GIT_ROOT={git_root} {shown}")
    proc = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    recap = proc.stdout[proc.stdout.rfind("PLAY RECAP") :] if "PLAY RECAP" in proc.stdout else proc.stdout[-3000:]
    print(recap.rstrip())
    if proc.returncode != 0:
        print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"demo: site.yml failed (exit {proc.returncode})")
    return proc


def ask(host: str, path: str):
    with urllib.request.urlopen(f"http://{host}:{APP_PORT}{path}", timeout=5) as answer:
        body = answer.read().decode()
    return json.loads(body) if path != "/config" else body


def overlay_subnet(host: str) -> str:
    command = "docker network inspect %s --format '{{(index .IPAM.Config 0).Subnet}}'" % OVERLAY
    return ssh(host, command, check=False, timeout=30).strip() or "-"


def start_log_receiver(gateway: str) -> str:
    """The test Elasticsearch (_bulk) receiver on the fleet gateway, where the inventories ship logs.

    It keeps running after the demo so its numbers can be looked at; make fleet-down stops it.
    Returns its control URL.
    """
    argv = [sys.executable, str(REPO / "tests/receivers/es_bulk.py"), "--address", gateway, "--daemon"]
    argv += ["--pidfile", str(FLEET / "es-receiver.pid"), "--logfile", str(FLEET / "es-receiver.log")]
    started = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    return started["control"]


def start_object_store() -> None:
    """SeaweedFS (S3) on the first mirror node: the shared storage the prod inventory's registry uses.

    An object store is the environment's, like the log receiver: the demo brings up the test one
    (the registry tests' fixture) before site.yml, which only points the registry at it.
    """
    argv = [
        str(REPO / ".venv" / "bin" / "ansible-playbook"),
        "-i",
        str(FLEET / "inventory.yml"),
        str(REPO / "tests/integration/targets/registry/seaweedfs.yml"),
    ]
    proc = subprocess.run(argv, text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
        raise SystemExit(f"demo: starting the object store failed (exit {proc.returncode})")


def registry_status(host: str, vip: str) -> str:
    """The HTTP status the registry's VIP answers on /v2/ from a Docker host, through the CA it trusts
    (401: up, asking for a token)."""
    ca = "/etc/docker/certs.d/%s/ca.crt" % vip
    command = "curl -s -o /dev/null -w '%%{http_code}' --cacert %s https://%s/v2/" % (ca, vip)
    return ssh(host, command, check=False, timeout=30).strip() or "no answer"


def log_indices(control: str, app: str, wait: float = 30) -> dict:
    """Documents per Elasticsearch index of the app, once some arrived (or after `wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        with urllib.request.urlopen(f"{control}/_dockyard/stats", timeout=5) as answer:
            indices = json.loads(answer.read().decode()).get("indices", {})
        ours = {name: count for name, count in indices.items() if name.startswith(f"logs-{app}-")}
        if ours or time.monotonic() > deadline:
            return ours
        time.sleep(1)


def main():
    fleet = json.loads((FLEET / "fleet.json").read_text())
    fleet_vars = json.loads((FLEET / "fleet-vars.yml").read_text())
    versions = fleet_vars["fleet_demo_app_versions"]
    hosts = fleet["hosts"]
    git_root = make_app_repository()
    control = start_log_receiver(fleet_vars["fleet_gateway"])
    say("the object store of the prod registry (SeaweedFS, S3) on the mirror node")
    start_object_store()

    say("site.yml: Docker hosts, logging, overlay network, registry, storage, demo-app v1 from Git (prod inventory)")
    started = time.monotonic()
    site(git_root, versions["good"])
    converge_seconds = time.monotonic() - started

    say("demo-app v2 with site.yml while every host takes HTTP traffic")
    clients = {name: LoadClient(address, APP_PORT, rate=40, workers=4) for name, address in hosts.items()}
    for client in clients.values():
        client.start()
    time.sleep(2)
    site(git_root, versions["good2"], "-e", "site_apps_only=true")
    time.sleep(2)
    traffic = {name: client.stop() for name, client in clients.items()}

    say("site.yml --check: is anything left to change?")
    check = site(git_root, versions["good2"], "--check")
    left = [line for line in check.stdout.splitlines() if " changed=" in line and " changed=0 " not in line]

    say("summary")
    print(
        f"registry (origin, stands for Docker Hub): {fleet_vars['fleet_origin_registry']} "
        f"(from this machine: {fleet_vars['fleet_origin_registry_local']})"
    )
    vip = fleet_vars["fleet_subnet"].split("/")[0].rsplit(".", 1)[0] + ".250"  # prod: registry_vip
    registry = registry_status(next(iter(hosts.values())), vip)
    print(
        f"private registry (HA, VIP):               https://{vip}/v2/ (answers {registry}; "
        f"CA in /etc/docker/certs.d/{vip}/ on every host)"
    )
    print(f"app config repository:                    {git_root / APP} (deploy/app.yml, deploy/config/)")
    indices = log_indices(control, APP)
    shown = ", ".join(f"{name} ({count} documents)" for name, count in sorted(indices.items())) or "none yet"
    print(f"container logs (Elasticsearch _bulk):     http://{fleet_vars['fleet_gateway']}:9200, index {shown}")
    print(f"                                          counts: {control}/_dockyard/stats")
    print(f"converge of site.yml:                     {converge_seconds:.0f} s")
    print()
    print(
        f"{'host':<7} {'address':<15} {'overlay subnet':<16} {'demo-app':<10} {'color':<6} "
        f"{'requests':>8} {'failed':>6}  versions served during the release"
    )
    for name, address in hosts.items():
        version = ask(address, "/version")
        color = ask(address, "/env").get("DEMO_COLOR", "-")
        load = traffic[name]
        served = ", ".join(f"{v}: {n}" for v, n in sorted(load["versions_served"].items()))
        print(
            f"{name:<7} {address:<15} {overlay_subnet(address):<16} {version['version']:<10} {color:<6} "
            f"{load['total_requests']:>8} {load['failed_requests']:>6}  {served}"
        )
    failed = sum(load["failed_requests"] for load in traffic.values())
    print()
    print(f"requests failed during the v1 -> v2 release: {failed}")
    print(f"site.yml --check after the demo: {'no changes' if not left else 'CHANGES: ' + '; '.join(left)}")
    print(f"try: curl http://{next(iter(hosts.values()))}:{APP_PORT}/config")
    print("     make fleet-down   # when you are done")
    if failed or left or not indices or registry != "401":
        raise SystemExit(
            "demo: requests failed, site.yml is not idempotent, no container log was shipped, or the registry's VIP"
            " does not answer"
        )


if __name__ == "__main__":
    main()
