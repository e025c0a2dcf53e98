# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Recreate a container with another log configuration (Docker cannot change it in place), keeping
# everything else, and remove the old one only once the shipper has read its whole log: the old
# container's log file goes with it.

from __future__ import annotations

import contextlib

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import DockerException, RequestException
from ansible_collections.dockyard.fleet.plugins.module_utils._log_shipping import wait_until_shipped


def create_body(info, driver, options):
    """The create request of a copy of the container `info` with another log configuration."""
    body = dict(info["Config"])
    host_config = dict(info["HostConfig"])
    host_config["LogConfig"] = {"Type": driver, "Config": {k: str(v) for k, v in options.items()}}
    body["HostConfig"] = host_config
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    mode = host_config.get("NetworkMode") or ""
    if mode in networks:  # the API of engines before 24 takes one network at creation
        endpoint = networks[mode]
        body["NetworkingConfig"] = {
            "EndpointsConfig": {
                mode: {
                    "IPAMConfig": endpoint.get("IPAMConfig"),
                    "Aliases": [a for a in endpoint.get("Aliases") or [] if a != info["Id"][:12]],
                }
            }
        }
    return body, {name: net for name, net in networks.items() if name != mode}


def recreate_with_log_config(client, item, driver, options, stop_timeout, state_dir, shipped_timeout):
    """Rename, create the copy, stop the old, start the new; the old is removed once shipped.

    item: {"id", "name", "running"}. False when the old container was kept (renamed, stopped)
    because the shipper had not read its whole log within shipped_timeout.
    """
    api = client.api
    info = api.inspect_container(item["id"])
    name = item["name"]
    old_name = "%s-logdrift-%s" % (name, item["id"][:12])
    body, extra_networks = create_body(info, driver, options)
    api.rename(item["id"], old_name)
    try:
        new = api.post(api._url("/containers/create"), json=body, params={"name": name})
        new_id = api._result(new, True)["Id"]
        for net_name, endpoint in extra_networks.items():
            api.connect_container_to_network(
                new_id,
                net_name,
                aliases=endpoint.get("Aliases"),
                ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
            )
        if item["running"]:
            api.stop(item["id"], timeout=stop_timeout)
            api.start(new_id)
    except (DockerException, RequestException) as exc:
        rollback(api, item, name)
        client.fail("recreating container %s failed, the old one is back: %s" % (name, exc))
    log_path = info.get("LogPath")
    left = None
    if log_path:
        left = wait_until_shipped(log_path, state_dir, shipped_timeout)
    if left:
        return False  # keep the old container: its log has not been read entirely
    api.remove_container(item["id"])
    return True


def rollback(api, item, name):
    with contextlib.suppress(DockerException, RequestException):
        api.remove_container(name, force=True)
    api.rename(item["id"], name)
    if item["running"]:
        api.start(item["id"])
