"""Shared by the benchmarks: where things are, a command on a fleet host over SSH, and one
timed ansible-playbook run on the fleet."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INVENTORY = REPO / ".fleet/inventory.yml"
VENV_BIN = REPO / ".venv/bin"

# The fleet's key and options (tests/fleet/fleet.py ssh_command has the same). Not imported from
# there: importing it pulls in the standard `logging`, which bench/logging.py shadows here.
SSH = ["ssh", "-i", str(REPO / ".fleet/id_ed25519"), "-o", "StrictHostKeyChecking=no"]
SSH += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"]


class BenchError(Exception):
    pass


def ssh(address, command, check=True, timeout=600, stdin=None):
    """Run a shell command on a fleet host as root; its stdout. Fails on a non-zero exit when `check`."""
    cmd = [*SSH, "root@%s" % address, command]
    run = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False, timeout=timeout)
    if check and run.returncode != 0:
        raise BenchError("on %s: %s failed (exit %d): %s" % (address, command, run.returncode, run.stderr.strip()))
    return run.stdout


def run_playbook(play, extra_vars=(), bin_dir=VENV_BIN, env_extra=None, inventories=()):
    """ansible-playbook PLAY on the fleet's inventory; (wall seconds, stdout). Fails on a non-zero exit.

    extra_vars: each item is passed with -e, strings as they are, dicts as JSON.
    inventories: more inventory sources after the fleet's (e.g. an environment's group_vars).
    """
    cmd = [str(bin_dir / "ansible-playbook"), "-i", str(INVENTORY)]
    for source in inventories:
        cmd += ["-i", str(source)]
    cmd.append(str(play))
    for item in extra_vars:
        cmd += ["-e", item if isinstance(item, str) else json.dumps(item)]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", **(env_extra or {})}
    started = time.monotonic()
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - started, 2)
    if run.returncode != 0:
        raise BenchError("%s %s failed (exit %d):\n%s%s" % (play, extra_vars, run.returncode, run.stdout, run.stderr))
    return seconds, run.stdout


def changed_count(output):
    """The sum of changed= over the PLAY RECAP."""
    return sum(int(n) for n in re.findall(r"\bchanged=(\d+)", output.split("PLAY RECAP")[-1]))
