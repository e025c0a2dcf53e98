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
    if client.image_or_none(helper_image) is None:
        client.sdk.images.pull(helper_image)
    helper = client.sdk.containers.run(
        helper_image,
        ["sleep", "infinity"],
        detach=True,
        volumes=mounts,
        network_mode="none",
        labels={HELPER_LABEL: volume["Name"]},
    )
    try:
        helper.reload()
        yield "/proc/%d/root%s" % (helper.attrs["State"]["Pid"], HELPER_MOUNT)
    finally:
        helper.remove(force=True)


def run_in_helper(client, helper_image, mounts, argv):
    """Run argv in a throw-away helper container with the given volume mounts; (exit code, output)."""
    if client.image_or_none(helper_image) is None:
        client.sdk.images.pull(helper_image)
    container = client.sdk.containers.run(
        helper_image, argv, detach=True, volumes=mounts, network_mode="none", labels={HELPER_LABEL: "copy"}
    )
    try:
        code = container.wait()["StatusCode"]
        return code, container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)


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
