# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The host-side steps of a release, on one Docker engine: release directories
# (config files, env file 0600, spec), containers, the health gate, the edge
# proxy switch and draining, pruning. docker_release composes these.

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import time

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerException,
    NotFound,
    RequestException,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._edge_proxy import (
    EDGE_CONF_DIR,
    EDGE_CONF_IN_CONTAINER,
    render_edge_config,
    wait_for_release_header,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._files import write_atomically

APPS_DIR = "/var/lib/dockyard/apps"
LABEL_APP = "dockyard.release.app"
LABEL_ID = "dockyard.release.id"
LABEL_VERSION = "dockyard.release.version"
LABEL_ROLE = "dockyard.release.role"


class ReleaseError(Exception):
    """A step failed; `details` carries what the operator needs (logs, health output)."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.details = details


def app_network(app):
    return "dockyard-%s" % app


def edge_name(app):
    return "%s-edge" % app


def container_name(app, release_id):
    return "%s-%s" % (app, release_id)


# ----------------------------------------------------------------------------- release directories
def release_dir(app, release_id):
    return os.path.join(APPS_DIR, app, release_id)


def write_release_dir(app, release_id, spec, env, config):
    """Everything needed to start this release again later: spec.json, env (0600), config files."""
    directory = release_dir(app, release_id)
    os.makedirs(os.path.join(directory, "config"), mode=0o755, exist_ok=True)
    os.chmod(os.path.join(APPS_DIR, app), 0o700)  # env files of every release live below
    mounts = []
    for index, entry in enumerate(config):
        name = "%02d-%s" % (index, os.path.basename(entry["dest"]) or "config")
        path = os.path.join(directory, "config", name)
        write_atomically(path, entry["content"], int(entry["mode"], 8))
        mounts.append({"dest": entry["dest"], "mode": entry["mode"], "file": path})
    write_atomically(os.path.join(directory, "env"), json.dumps(env, sort_keys=True), 0o600)
    stored = dict(spec, config_mounts=mounts)
    write_atomically(os.path.join(directory, "spec.json"), json.dumps(stored, indent=2, sort_keys=True), 0o600)
    return stored


def read_release_dir(app, release_id):
    """(spec, env, config entries) of a stored release; raises ReleaseError when it is gone."""
    directory = release_dir(app, release_id)
    try:
        with open(os.path.join(directory, "spec.json"), encoding="utf-8") as handle:
            spec = json.load(handle)
        with open(os.path.join(directory, "env"), encoding="utf-8") as handle:
            env = json.load(handle)
        config = []
        for mount in spec.get("config_mounts", []):
            with open(mount["file"], encoding="utf-8") as handle:
                config.append({"dest": mount["dest"], "mode": mount["mode"], "content": handle.read()})
    except (OSError, ValueError) as exc:
        raise ReleaseError("release %s of %s cannot be restored: %s" % (release_id, app, exc)) from None
    return spec, env, config


def remove_release_dir(app, release_id):
    shutil.rmtree(release_dir(app, release_id), ignore_errors=True)


# ----------------------------------------------------------------------------- engine operations
class ReleaseRunner:
    def __init__(self, client, app):
        self.client = client
        self.api = client.api
        self.app = app

    # --- reading
    def containers(self, release_id=None, role="app", all_states=True):
        labels = ["%s=%s" % (LABEL_APP, self.app), "%s=%s" % (LABEL_ROLE, role)]
        if release_id:
            labels.append("%s=%s" % (LABEL_ID, release_id))
        return self.api.containers(all=all_states, filters={"label": labels})

    def running_container(self, release_id):
        for container in self.containers(release_id, all_states=False):
            return container
        return None

    def inspect(self, name_or_id):
        try:
            return self.api.inspect_container(name_or_id)
        except NotFound:
            return None

    def logs_tail(self, name_or_id, lines=20):
        try:
            return self.api.logs(name_or_id, tail=lines).decode("utf-8", "replace").splitlines()
        except (DockerException, RequestException):
            return []

    # --- network
    def ensure_network(self, name):
        if not self.api.networks(names=[name]):
            self.api.create_network(name, driver="bridge", labels={LABEL_APP: self.app})

    def port_free(self, host_ip, port):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host_ip or "0.0.0.0", port))
            except OSError:
                return False
        return True

    # --- app containers
    def start_container(self, spec, env, mounts, release_id, publish):
        """Create and start the release's container; publish=True binds the ports on the host (recreate)."""
        name = container_name(self.app, release_id)
        old = self.inspect(name)
        if old is not None:  # a leftover of an interrupted run with the same id
            self.api.remove_container(name, force=True)
        binds = list(spec.get("volumes") or [])
        binds += ["%s:%s:ro" % (m["file"], m["dest"]) for m in mounts]
        port_bindings = {}
        exposed = []
        for port in spec["ports"]:
            exposed.append(port["container_port"])
            if publish:
                port_bindings[port["container_port"]] = (port["host_ip"] or "0.0.0.0", port["host_port"])
        restart = {"Name": spec["restart_policy"]} if spec["restart_policy"] != "no" else None
        host_config = self.api.create_host_config(
            binds=binds or None,
            port_bindings=port_bindings or None,
            restart_policy=restart,
            mem_limit=spec.get("memory") or None,
            nano_cpus=int(float(spec["cpus"]) * 1e9) if spec.get("cpus") else None,
            network_mode=app_network(self.app),
        )
        labels = dict(spec.get("labels") or {})
        labels.update({LABEL_APP: self.app, LABEL_ID: release_id, LABEL_VERSION: spec["version"], LABEL_ROLE: "app"})
        container = self.api.create_container(
            image="%s@%s" % (spec["image"], spec["digest"]),
            name=name,
            command=spec.get("command"),
            environment=env,
            ports=exposed or None,
            labels=labels,
            host_config=host_config,
            stop_signal=spec.get("stop_signal"),
            stop_timeout=spec.get("stop_timeout"),
            networking_config=self.api.create_networking_config(
                {app_network(self.app): self.api.create_endpoint_config(aliases=[self.app])}
            ),
        )
        for network in spec.get("networks") or []:
            self.api.connect_container_to_network(container["Id"], network)
        self.api.start(container["Id"])
        return name

    def stop_and_remove(self, name, timeout):
        try:
            self.api.stop(name, timeout=timeout)
            self.api.remove_container(name, force=True)
        except NotFound:
            pass

    def container_ip(self, name):
        info = self.inspect(name)
        return info["NetworkSettings"]["Networks"][app_network(self.app)]["IPAddress"]

    # --- health gate
    def probe(self, name, check):
        """(healthy, output) of one health check of the container."""
        info = self.inspect(name)
        if info is None or not info["State"]["Running"]:
            state = info["State"] if info else {}
            return False, "container is not running (status %s, exit code %s)" % (
                state.get("Status", "gone"),
                state.get("ExitCode"),
            )
        if check["type"] == "http":
            return self._probe_http(info, check)
        if check["type"] == "command":
            return self._probe_command(name, check)
        health = info["State"].get("Health")
        if not health:
            return False, "the image declares no HEALTHCHECK: set healthcheck.type to http or command"
        output = (health.get("Log") or [{}])[-1].get("Output", "").strip()
        return health.get("Status") == "healthy", "image health %s: %s" % (health.get("Status"), output)

    def _probe_http(self, info, check):
        ip = info["NetworkSettings"]["Networks"][app_network(self.app)]["IPAddress"]
        conn = http.client.HTTPConnection(ip, check["port"], timeout=2)
        headers = {"Connection": "close"}
        if check.get("host_header"):
            headers["Host"] = check["host_header"]
        try:
            conn.request("GET", check["path"], headers=headers)
            response = conn.getresponse()
            body = response.read(200).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException) as exc:
            return False, "GET http://%s:%s%s: %s" % (ip, check["port"], check["path"], exc)
        finally:
            conn.close()
        ok = response.status == check["status"]
        return ok, "GET %s -> %d %s" % (check["path"], response.status, body)

    def _probe_command(self, name, check):
        command = check["command"]
        exec_id = self.api.exec_create(name, command if isinstance(command, list) else ["sh", "-c", command])
        output = self.api.exec_start(exec_id).decode("utf-8", "replace").strip()
        code = self.api.exec_inspect(exec_id)["ExitCode"]
        return code == 0, "command exit %s: %s" % (code, output[-300:])

    def health_gate(self, name, check, timeout, soak, interval=0.5):
        """Healthy within `timeout`, then healthy at every probe for `soak` seconds; else ReleaseError."""
        deadline = time.monotonic() + timeout
        ok, output = False, "no probe ran"
        while time.monotonic() < deadline:
            ok, output = self.probe(name, check)
            if ok or output.startswith("container is not running"):
                break
            time.sleep(interval)
        if ok:
            soak_end = time.monotonic() + soak
            while time.monotonic() < soak_end:
                time.sleep(interval)
                ok, output = self.probe(name, check)
                if not ok:
                    output = "failed during the %ss soak: %s" % (soak, output)
                    break
        if not ok:
            raise ReleaseError(
                "health gate failed for %s: %s" % (name, output),
                health_output=output,
                container_logs=self.logs_tail(name),
            )

    # --- edge proxy (blue/green)
    def ensure_edge(self, image, ports, upstream_ip, release_id, drain_timeout):
        """Start the edge proxy if missing (pointing at upstream_ip), or leave it running."""
        conf_dir = os.path.join(EDGE_CONF_DIR, self.app)
        name = edge_name(self.app)
        info = self.inspect(name)
        if info is not None and info["State"]["Running"]:
            return False
        if info is not None:
            self.api.remove_container(name, force=True)
        write_atomically(
            os.path.join(conf_dir, "nginx.conf"), render_edge_config(ports, upstream_ip, release_id, drain_timeout)
        )
        port_bindings = {p["host_port"]: (p["host_ip"] or "0.0.0.0", p["host_port"]) for p in ports}
        container = self.api.create_container(
            image=image,
            name=name,
            command=["nginx", "-c", EDGE_CONF_IN_CONTAINER + "/nginx.conf", "-g", "daemon off;"],
            ports=list(port_bindings),
            labels={LABEL_APP: self.app, LABEL_ROLE: "edge"},
            host_config=self.api.create_host_config(
                binds=["%s:%s:ro" % (conf_dir, EDGE_CONF_IN_CONTAINER)],
                port_bindings=port_bindings,
                restart_policy={"Name": "unless-stopped"},
                network_mode=app_network(self.app),
            ),
            stop_signal="SIGQUIT",
        )
        self.api.start(container["Id"])
        return True

    def edge_exec(self, *command):
        exec_id = self.api.exec_create(edge_name(self.app), list(command))
        output = self.api.exec_start(exec_id).decode("utf-8", "replace").strip()
        return self.api.exec_inspect(exec_id)["ExitCode"], output

    def switch_edge(self, ports, upstream_ip, release_id, drain_timeout, probe_path):
        """Point the edge at the new container: write, test, graceful reload, then see it answer."""
        conf = os.path.join(EDGE_CONF_DIR, self.app, "nginx.conf")
        with open(conf, encoding="utf-8") as handle:
            previous = handle.read()
        write_atomically(conf, render_edge_config(ports, upstream_ip, release_id, drain_timeout))
        code, output = self.edge_exec("nginx", "-t", "-c", EDGE_CONF_IN_CONTAINER + "/nginx.conf")
        if code == 0:
            code, output = self.edge_exec("nginx", "-s", "reload", "-c", EDGE_CONF_IN_CONTAINER + "/nginx.conf")
        switched = False
        seen = None
        if code == 0:
            switched, seen = self.wait_edge(ports, probe_path, release_id, timeout=10)
        if not switched:
            write_atomically(conf, previous)
            self.edge_exec("nginx", "-s", "reload", "-c", EDGE_CONF_IN_CONTAINER + "/nginx.conf")
            raise ReleaseError(
                "switching the edge proxy of %s to %s failed: %s"
                % (self.app, release_id, output or "answered %s" % seen)
            )

    def wait_edge(self, ports, probe_path, release_id, timeout):
        port = ports[0]
        host = port["host_ip"] if port["host_ip"] not in ("", "0.0.0.0") else "127.0.0.1"
        return wait_for_release_header(host, port["host_port"], probe_path, release_id, timeout)

    def wait_drained(self, timeout):
        """Wait until the edge's old nginx workers have finished their in-flight requests (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                top = self.api.top(edge_name(self.app), ps_args="-eo pid,args")
            except (DockerException, RequestException):
                return
            if not any("shutting down" in " ".join(proc) for proc in top.get("Processes") or []):
                return
            time.sleep(0.2)

    def remove_edge(self):
        name = edge_name(self.app)
        if self.inspect(name) is not None:
            self.api.remove_container(name, force=True)
        shutil.rmtree(os.path.join(EDGE_CONF_DIR, self.app), ignore_errors=True)

    def remove_image_if_unused(self, reference):
        # Still used by a container or another tag: the engine refuses, and the image stays.
        with contextlib.suppress(DockerException, RequestException):
            self.api.remove_image(reference)
