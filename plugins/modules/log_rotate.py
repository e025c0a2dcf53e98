#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_rotate
short_description: Rotate log files Docker's own rotation does not cover, saying what may be lost
version_added: 0.1.0
description:
  - Rotates app log files in volumes and json-file logs of containers created without limits.
  - V(truncate) copies the file then truncates it; the app keeps writing. Lines written between the end of the
    copy and the truncation are lost; the module measures that window and returns it as RV(bytes_at_risk).
  - V(rename_restart) stops the containers writing the file (one after the other, each started again and, when
    it has a health check, healthy before the next), renames the file while nothing writes to it, then starts
    the container, which creates a new file. Nothing is lost; one restart per container.
  - V(syslog) is for files rsyslog writes (apps logging to /dev/log). It renames, then sends SIGHUP to rsyslog, which
    closes the renamed file and creates the new one with its next line; the copy is compressed once rsyslog has
    closed it. Nothing is lost and no container restarts.
  - V(native) recreates the containers with Docker's own rotation (json-file C(max-size)/C(max-file), and C(compress)
    from O(compress)), for legacy containers created without limits; their old log is removed with them once the
    shipper has read it. With C(compress), Docker deletes a rotated file as soon as it has compressed it, so a shipper
    that is behind then loses what it had not read; use O(compress=false) where lines must not be lost.
  - A file the shipper (rsyslog imfile, from its state files) has not finished reading is not rotated unless
    O(force=true), as rotating it would lose what the shipper has not read yet.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    details: Reports which files would rotate and why, and which the shipper has not finished.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: A rotated file is below the thresholds, so a second run rotates nothing (with O(min_size) or O(max_age)).
options:
  path:
    description:
      - Files to rotate; shell patterns allowed. With O(strategy=native), may be empty (the containers are given).
    type: list
    elements: path
    default: []
  strategy:
    description:
      - How to rotate; see the description.
    type: str
    choices: [truncate, rename_restart, syslog, native]
    default: truncate
  containers:
    description:
      - Names of the containers writing the files (O(strategy=rename_restart)) or to recreate (O(strategy=native)).
    type: list
    elements: str
    default: []
  min_size:
    description:
      - Rotate a file of at least this size (bytes, or with unit K, M, G).
    type: str
  max_age:
    description:
      - Rotate a file when its newest rotated copy is older than this many seconds (or it has none).
    type: int
  keep:
    description:
      - Rotated copies to keep.
    type: int
    default: 5
  compress:
    description:
      - Gzip rotated copies.
    type: bool
    default: true
  date_suffix:
    description:
      - Name copies C(<file>-YYYYmmdd-HHMMSS) instead of C(<file>.1), C(<file>.2), ...
    type: bool
    default: false
  force:
    description:
      - Rotate even files the shipper has not finished reading.
    type: bool
    default: false
  shipper_state_dir:
    description:
      - Directory of rsyslog's imfile state files.
    type: path
    default: /var/spool/rsyslog
  shipped_timeout:
    description:
      - Seconds to wait for the shipper to catch up before a file counts as not read.
    type: int
    default: 30
  stop_timeout:
    description:
      - Seconds a container gets to stop (O(strategy=rename_restart) and O(strategy=native)).
    type: int
    default: 10
  healthy_timeout:
    description:
      - Seconds a restarted container with a health check gets to become healthy before the module fails.
    type: int
    default: 120
  rsyslog_pidfile:
    description:
      - Pid file of rsyslogd (O(strategy=syslog)). When there is none (rsyslog under systemd writes none, as on
        Debian 12), the one rsyslogd process of the host's pid namespace.
    type: path
    default: /run/rsyslogd.pid
  reopen_timeout:
    description:
      - Seconds rsyslog gets to close the renamed files after SIGHUP (O(strategy=syslog)). Lines it had buffered
        go into the renamed file when it closes it, so a copy is compressed only after that; one still open then
        is left uncompressed, with a warning.
    type: int
    default: 10
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Rotate app logs in a volume, keeping the app running (reports the bytes possibly lost)
  dockyard.fleet.log_rotate:
    path: [/srv/shop/logs/*.log]
    strategy: truncate
    min_size: 100M
    keep: 7
  register: rotation

- name: Rotate with nothing lost, at the price of one restart
  dockyard.fleet.log_rotate:
    path: [/srv/shop/logs/app.log]
    strategy: rename_restart
    containers: [shop]
    min_size: 100M

- name: Give legacy containers Docker's own rotation
  dockyard.fleet.log_rotate:
    strategy: native
    containers: [legacy-api]
    min_size: 50M
    keep: 5
"""

RETURN = r"""
rotated:
  description: Files rotated (would be, in check mode), with the reason and the copy's name.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/srv/shop/logs/app.log", "copy": "/srv/shop/logs/app.log.1.gz", "bytes": 104857600,
            "reason": "size 104857600 >= 104857600", "bytes_at_risk": 0}]
not_rotated:
  description:
    - Files not rotated and why (below the thresholds, not read by the shipper yet, Docker's rotation already).
    - Not named C(skipped), which Ansible reads as "the task was skipped".
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/srv/shop/logs/app.log", "reason": "the shipper has 2048 bytes left to read"}]
bytes_freed:
  description: Bytes no longer on disk (old copies dropped, compression and truncation).
  returned: always
  type: int
  sample: 52428800
bytes_at_risk:
  description:
    - O(strategy=truncate) only, else 0. Bytes written between the end of the copy and the truncation, in neither
      file (lost unless the shipper had read them already).
  returned: always
  type: int
  sample: 312
recreated:
  description: Containers recreated (O(strategy=native)) or restarted (O(strategy=rename_restart)).
  returned: always
  type: list
  elements: str
  sample: ["legacy-api"]
"""

import glob
import os
import signal
import time

from ansible_collections.dockyard.fleet.plugins.module_utils._container_recreate import recreate_with_log_config
from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._log_rotate import (
    compress_file,
    copy_name,
    copy_then_truncate,
    drop_old_dated,
    due,
    existing_copies,
    parse_size,
    program_pid,
    shift_numbered,
    wait_released,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._log_shipping import wait_until_shipped


def candidates(module, min_size):
    """(path, reason) of the files due, and the ones not due with their reason."""
    paths = sorted({p for pattern in module.params["path"] for p in glob.glob(pattern) if os.path.isfile(p)})
    due_files, not_due = [], []
    now = time.time()
    for path in paths:
        copies = existing_copies(path)
        newest = os.stat(copies[0]).st_mtime if copies else None
        reason = due(os.path.getsize(path), newest, min_size, module.params["max_age"], now)
        if reason is None:
            not_due.append({"path": path, "reason": "below the thresholds"})
        else:
            due_files.append((path, reason))
    return due_files, not_due


def not_shipped(module, path, wait):
    """Bytes the shipper has still to read in path (0 or None = nothing holds the rotation back)."""
    if module.params["force"]:
        return 0
    timeout = module.params["shipped_timeout"] if wait else 0
    return wait_until_shipped(path, module.params["shipper_state_dir"], timeout)


def shipper_behind(path, left):
    """The not_rotated entry of a file the shipper has left bytes of to read."""
    return {"path": path, "reason": "the shipper has %d bytes left to read (force=true rotates anyway)" % left}


def new_copy(module, path):
    """Shift older copies, name the new one. (uncompressed target, final name, bytes freed)."""
    keep, compress, dated = module.params["keep"], module.params["compress"], module.params["date_suffix"]
    freed = drop_old_dated(path, keep - 1) if dated else shift_numbered(path, keep, compress)
    final = copy_name(path, 1, dated, compress)
    return (final[:-3] if compress else final), final, freed


def finish_copy(module, target, final):
    """Compress the copy when asked; the size of the copy left on disk."""
    if module.params["compress"]:
        compress_file(target, final)
    return os.path.getsize(final)


def wait_running(client, name, timeout):
    """Wait until the container runs and, with a health check, is healthy."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.api.inspect_container(name)["State"]
        health = (state.get("Health") or {}).get("Status")
        if state.get("Running") and health in (None, "healthy"):
            return
        if time.monotonic() >= deadline:
            client.fail(
                "container %s is not running and healthy %d s after its restart (state %s, health %s)"
                % (name, timeout, state.get("Status"), health)
            )
        time.sleep(0.5)


def rotate_truncate(module, path):
    target, final, freed = new_copy(module, path)
    copied, at_risk = copy_then_truncate(path, target)
    freed += copied + at_risk - finish_copy(module, target, final)  # the live file shrank by copied + at_risk
    return final, freed, at_risk


def rotate_rename(module, path):
    target, final, freed = new_copy(module, path)
    os.rename(path, target)
    size = os.path.getsize(target)
    return final, freed + size - finish_copy(module, target, final)


def run_rename_restart(module, client, due_files, result):
    """Per container, one at a time: stop it, let the shipper finish, rename its files, start it, wait healthy."""
    for name in module.params["containers"]:
        client.api.stop(name, timeout=module.params["stop_timeout"])
        try:
            for path, reason in due_files:
                left = not_shipped(module, path, wait=True)
                if left:
                    result["not_rotated"].append(shipper_behind(path, left))
                    continue
                final, freed = rotate_rename(module, path)
                result["rotated"].append({"path": path, "copy": final, "reason": reason, "bytes_at_risk": 0})
                result["bytes_freed"] += freed
            due_files = []  # the files were renamed while the first container was stopped
        finally:
            client.api.start(name)
        wait_running(client, name, module.params["healthy_timeout"])
        result["recreated"].append(name)


def run_syslog(module, due_files, result):
    """Rename the files, SIGHUP rsyslog (it closes them, flushing its buffers, and creates each new file with
    its next line), then compress each copy once rsyslog has let go of it."""
    try:  # before anything is renamed: a file renamed without the SIGHUP would stay rsyslog's file
        pid = program_pid(module.params["rsyslog_pidfile"], "rsyslogd")
    except LookupError as exc:
        module.fail_json(msg="strategy=syslog needs rsyslogd: %s" % exc)
    renamed = []
    for path, reason in due_files:
        left = not_shipped(module, path, wait=True)
        if left:
            result["not_rotated"].append(shipper_behind(path, left))
            continue
        target, final, freed = new_copy(module, path)
        os.rename(path, target)
        renamed.append((path, target, final, freed, reason))
    if not renamed:
        return
    os.kill(pid, signal.SIGHUP)
    held = wait_released(pid, [item[1] for item in renamed], module.params["reopen_timeout"])
    for path, target, final, freed, reason in renamed:
        if target in held:  # compressing it now would lose what rsyslog still writes into it
            module.warn(
                "rsyslog (pid %d) still holds %s open %d s after SIGHUP: left uncompressed"
                % (pid, target, module.params["reopen_timeout"])
            )
            final = target
        else:
            freed += os.path.getsize(target) - finish_copy(module, target, final)
        result["rotated"].append({"path": path, "copy": final, "reason": reason, "bytes_at_risk": 0})
        result["bytes_freed"] += freed


def run_native(module, client, min_size, result):
    options = {"max-size": str(min_size or 100 * 1024 * 1024), "max-file": str(module.params["keep"] + 1)}
    if module.params["compress"]:
        options["compress"] = "true"
    for name in module.params["containers"]:
        info = client.api.inspect_container(name)
        log_config = info["HostConfig"].get("LogConfig") or {}
        if log_config.get("Type") == "json-file" and all(
            (log_config.get("Config") or {}).get(k) == v for k, v in options.items()
        ):
            result["not_rotated"].append(
                {"path": info.get("LogPath"), "reason": "%s has Docker's rotation already" % name}
            )
            continue
        size = os.path.getsize(info["LogPath"]) if info.get("LogPath") and os.path.exists(info["LogPath"]) else 0
        result["rotated"].append(
            {"path": info.get("LogPath"), "copy": None, "reason": "recreated with %s" % options, "bytes_at_risk": 0}
        )
        result["recreated"].append(name)
        if module.check_mode:
            continue
        item = {"id": info["Id"], "name": name, "running": bool(info["State"].get("Running"))}
        if recreate_with_log_config(
            client,
            item,
            "json-file",
            options,
            module.params["stop_timeout"],
            module.params["shipper_state_dir"],
            module.params["shipped_timeout"],
        ):
            result["bytes_freed"] += size


def main():
    argument_spec = {
        "path": {"type": "list", "elements": "path", "default": []},
        "strategy": {
            "type": "str",
            "default": "truncate",
            "choices": ["truncate", "rename_restart", "syslog", "native"],
        },
        "containers": {"type": "list", "elements": "str", "default": []},
        "min_size": {"type": "str"},
        "max_age": {"type": "int"},
        "keep": {"type": "int", "default": 5},
        "compress": {"type": "bool", "default": True},
        "date_suffix": {"type": "bool", "default": False},
        "force": {"type": "bool", "default": False},
        "shipper_state_dir": {"type": "path", "default": "/var/spool/rsyslog"},
        "shipped_timeout": {"type": "int", "default": 30},
        "stop_timeout": {"type": "int", "default": 10},
        "healthy_timeout": {"type": "int", "default": 120},
        "rsyslog_pidfile": {"type": "path", "default": "/run/rsyslogd.pid"},
        "reopen_timeout": {"type": "int", "default": 10},
    }
    module = docker_module(
        argument_spec,
        supports_check_mode=True,
        required_if=[("strategy", "rename_restart", ["containers"]), ("strategy", "native", ["containers"])],
    )
    strategy = module.params["strategy"]
    try:
        min_size = parse_size(module.params["min_size"]) if module.params["min_size"] else None
    except ValueError as exc:
        module.fail_json(msg="min_size: %s" % exc)
    if module.params["keep"] < 1:
        module.fail_json(msg="keep must be 1 or more, got %d" % module.params["keep"])
    if strategy != "native" and not module.params["path"]:
        module.fail_json(msg="strategy=%s needs path (the files to rotate)" % strategy)
    result = {"rotated": [], "not_rotated": [], "bytes_freed": 0, "bytes_at_risk": 0, "recreated": []}
    client = DockerClient(module) if strategy in ("rename_restart", "native") else None
    try:
        if strategy == "native":
            run_native(module, client, min_size, result)
            module.exit_json(changed=bool(result["recreated"]), **result)
        due_files, result["not_rotated"] = candidates(module, min_size)
        if module.check_mode:
            for path, reason in due_files:
                left = not_shipped(module, path, wait=False)
                if left:
                    result["not_rotated"].append(
                        {"path": path, "reason": "the shipper has %d bytes left to read" % left}
                    )
                else:
                    result["rotated"].append({"path": path, "copy": None, "reason": reason, "bytes_at_risk": 0})
            module.exit_json(changed=bool(result["rotated"]), **result)
        if strategy == "truncate":
            for path, reason in due_files:
                left = not_shipped(module, path, wait=True)
                if left:
                    result["not_rotated"].append(shipper_behind(path, left))
                    continue
                final, freed, at_risk = rotate_truncate(module, path)
                result["rotated"].append({"path": path, "copy": final, "reason": reason, "bytes_at_risk": at_risk})
                result["bytes_freed"] += freed
                result["bytes_at_risk"] += at_risk
        elif strategy == "rename_restart" and due_files:
            run_rename_restart(module, client, due_files, result)
        elif strategy == "syslog":
            run_syslog(module, due_files, result)
    except (DockerException, RequestException) as exc:
        client.fail("talking to the Docker engine failed: %s" % exc)
    except OSError as exc:
        module.fail_json(msg="rotating failed on %s: %s" % (getattr(exc, "filename", None) or "a file", exc), **result)
    module.exit_json(changed=bool(result["rotated"]), **result)


if __name__ == "__main__":
    main()
