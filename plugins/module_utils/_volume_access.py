# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Getting at a volume's files from the host, and keeping its containers quiet
# while they are read. A plain `local` volume is read in place through its
# Mountpoint (no container, no copy). Any other volume (another driver, or a
# local volume with a mount `type` such as tmpfs/nfs, whose Mountpoint is only
# mounted while a container uses it) is mounted into a small helper container
# and read through /proc/<pid>/root of that container: the same code path,
# whatever the driver. Containers stopped or paused are always started or
# unpaused again (quiesced() is a context manager; its exit runs on failure).

from __future__ import annotations

import contextlib
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._image_pull import with_pull_retries
from ansible_collections.dockyard.fleet.plugins.module_utils._image_ref import split_reference

HELPER_LABEL = "dockyard.fleet.volume-helper"
HELPER_MOUNT = "/volume"


def reads_in_place(volume):
    """True when the volume's data is a plain directory on this host (its Mountpoint)."""
    options = volume.get("Options") or {}
    return volume.get("Driver") == "local" and not options.get("type") and not options.get("device")


def mounting_containers(client, volume_name):
    """Running containers that mount the volume (names, sorted)."""
    found = client.api.containers(filters={"volume": volume_name})
    return sorted(c["Names"][0].lstrip("/") for c in found)


@contextlib.contextmanager
def volume_root(client, volume, access, helper_image, extra_mounts=None):
    """The host path of the volume's data, for the duration of the block."""
    if access == "mountpoint" or (access == "auto" and reads_in_place(volume)):
        yield volume["Mountpoint"]
        return
    mounts = {volume["Name"]: {"bind": HELPER_MOUNT, "mode": "rw"}}
    mounts.update(extra_mounts or {})
    helper = start_helper(client, helper_image, ["sleep", "infinity"], mounts, volume["Name"])
    try:
        pid = client.api.inspect_container(helper)["State"]["Pid"]
        yield "/proc/%d/root%s" % (pid, HELPER_MOUNT)
    finally:
        client.api.remove_container(helper, force=True)


def start_helper(client, helper_image, argv, mounts, label):
    """Start a helper container (no network, the mounts given, pulled when missing); its id.

    The pull is retried past a registry failover, like every pull of the collection (_image_pull).
    """
    if client.image_or_none(helper_image) is None:
        repository, tag, digest = split_reference(helper_image)
        with_pull_retries(lambda: client.api.pull(repository, tag=digest or tag or "latest"))
    host_config = client.api.create_host_config(binds=mounts, network_mode="none")
    helper = client.api.create_container(helper_image, argv, labels={HELPER_LABEL: label}, host_config=host_config)
    client.api.start(helper["Id"])
    return helper["Id"]


def run_in_helper(client, helper_image, mounts, argv):
    """Run argv in a throw-away helper container with the given volume mounts; (exit code, output)."""
    helper = start_helper(client, helper_image, argv, mounts, "copy")
    try:
        code = client.api.wait(helper)["StatusCode"]
        return code, client.api.logs(helper).decode("utf-8", "replace")
    finally:
        client.api.remove_container(helper, force=True)


def exec_in(client, container_name, argv):
    """Run argv in a running container (consistency=exec); (exit code, output)."""
    exec_id = client.api.exec_create(container_name, argv)
    output = client.api.exec_start(exec_id)
    return client.api.exec_inspect(exec_id)["ExitCode"], output.decode("utf-8", "replace")


@contextlib.contextmanager
def quiesced(client, names, mode, timeout, touched):
    """Stop or pause the containers for the block; always start/unpause them again, even on failure.

    `touched` (a list) receives each container as it is stopped/paused, so a report is possible even
    when the block fails. Errors while resuming are collected and raised after every container was tried.
    """
    done = []
    try:
        for name in names:
            if mode == "stop":
                client.api.stop(name, timeout=timeout)
            elif mode == "pause":
                client.api.pause(name)
            done.append(name)
            touched.append(name)
        yield
    finally:
        problems = []
        for name in done:
            try:
                if mode == "stop":
                    client.api.start(name)
                else:
                    client.api.unpause(name)
            except Exception as exc:
                problems.append("%s: %s" % (name, exc))
        if problems:
            raise RuntimeError("could not resume containers after the backup: %s" % "; ".join(problems))


def is_empty(root):
    with os.scandir(root) as entries:
        return next(entries, None) is None
