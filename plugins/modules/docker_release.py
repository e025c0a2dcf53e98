#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_release
short_description: Health-gated, zero-downtime release of an app container, with rollback and history
version_added: 0.1.0
description:
  - Releases one version of an app on the Docker engine of the managed host.
  - The image is pulled by tag, its digest resolved, and the container runs B(by digest). The release
    identity is the digest, the config files, the env and the run options; a release with the identity of
    the current one changes nothing.
  - With O(strategy=blue_green) a per-app nginx edge proxy container (C(<name>-edge)) holds the published
    ports. The new container starts beside the old one on the app's network, must pass the health gate and
    the soak, then the proxy switches with a graceful reload (no connection dropped), the old container
    drains and stops.
  - With O(strategy=recreate) (workers without traffic) the old container stops, the new one starts with the
    ports published directly; if it fails its health gate the old release is started again.
  - If the health gate fails the new container is removed, the old one keeps serving, the release is
    recorded as failed, and the task fails with the new container's last log lines and health output.
  - Every attempt is recorded in a host-side history C(/var/lib/dockyard/releases/<name>.json) (version,
    digest, config and env hashes, deployer, times, outcome). Env values are never written there, never
    returned and never shown in diffs; they are kept for rollback in a 0600 file under
    C(/var/lib/dockyard/apps/<name>/).
  - O(state=rolled_back) restores image B(and) config files B(and) env of an earlier release.
  - A host-side lock makes a second run for the same app wait (up to O(lock_timeout)) or fail.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    details: Reports the plan (pull, start, switch, stop, prune) in RV(plan) and touches nothing.
  diff_mode:
    support: full
    details: Shows the current release record before and after.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the app. Containers are named C(<name>-<release id>), the edge proxy C(<name>-edge).
    type: str
    required: true
  image:
    description:
      - Image repository, with registry host and port. Required with O(state=present).
    type: str
  version:
    description:
      - The version to release; the image tag (for app images, the Git SHA). Required with O(state=present).
    type: str
  env:
    description:
      - Environment of the container. Values may be secrets; they are never logged or returned.
    type: dict
    default: {}
  env_files:
    description:
      - Files on the managed host with C(KEY=VALUE) lines, read in order before O(env), which wins.
    type: list
    elements: path
    default: []
  config_files:
    description:
      - Files mounted read-only into the container. Part of the release identity, restored on rollback.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path in the container.
        type: str
        required: true
      content:
        description: The file's content (use a C(template) lookup to render one from Git).
        type: str
      src:
        description: A file on the managed host to read the content from.
        type: path
      mode:
        description: File mode, as an octal string.
        type: str
        default: "0444"
  ports:
    description:
      - Published ports as V(CONTAINER), V(HOST:CONTAINER) or V(IP:HOST:CONTAINER).
      - With O(strategy=blue_green) the edge proxy publishes them and forwards HTTP to the container port.
    type: list
    elements: str
    default: []
  networks:
    description:
      - Extra networks to connect the container to, besides the app network C(dockyard-<name>).
    type: list
    elements: str
    default: []
  volumes:
    description:
      - Volumes and bind mounts, as in C(docker run -v) (V(NAME:/path[:ro])).
    type: list
    elements: str
    default: []
  labels:
    description:
      - Labels of the container.
    type: dict
    default: {}
  command:
    description:
      - Command of the container; the image's when not given.
    type: list
    elements: str
  restart_policy:
    description:
      - Restart policy of the container.
    type: str
    default: unless-stopped
    choices: ["no", on-failure, always, unless-stopped]
  memory:
    description:
      - Memory limit, such as V(512m).
    type: str
  cpus:
    description:
      - CPU limit in CPUs, such as V(1.5).
    type: float
  healthcheck:
    description:
      - The health gate a new container must pass before it takes traffic.
    type: dict
    suboptions:
      type:
        description:
          - V(http) GETs O(healthcheck.path) on the container, V(command) runs a command in it,
            V(image) waits for the image's own C(HEALTHCHECK) to report healthy.
        type: str
        default: http
        choices: [http, command, image]
      path:
        description: Path of the HTTP check.
        type: str
        default: /healthz
      port:
        description: Container port of the HTTP check; the first of O(ports) when not given.
        type: int
      status:
        description: Expected HTTP status.
        type: int
        default: 200
      host_header:
        description: Host header of the HTTP check.
        type: str
      command:
        description: Command of a V(command) check; healthy when it exits 0.
        type: list
        elements: str
  health_timeout:
    description:
      - Seconds the new container has to become healthy.
    type: int
    default: 60
  soak:
    description:
      - Seconds the new container must stay healthy (checked every half second) before traffic switches.
    type: int
    default: 0
  strategy:
    description:
      - V(blue_green) starts the new container beside the old one and switches the edge proxy.
      - V(recreate) stops the old container first; for workers without traffic.
    type: str
    default: blue_green
    choices: [blue_green, recreate]
  proxy_image:
    description:
      - Image of the edge proxy (nginx) for O(strategy=blue_green).
    type: str
    default: nginx:1.25
  drain_timeout:
    description:
      - Seconds the old container may finish in-flight requests after the switch, before it is stopped.
    type: int
    default: 10
  stop_signal:
    description:
      - Signal that stops the container; the image's when not given.
    type: str
  stop_timeout:
    description:
      - Seconds between the stop signal and SIGKILL.
    type: int
    default: 10
  retain:
    description:
      - Succeeded releases kept on the host (containers stopped, images and config kept) for rollback.
      - The current release and the last good one are never pruned.
    type: int
    default: 3
  state:
    description:
      - V(present) releases O(version); V(rolled_back) goes back to O(rollback_to); V(absent) removes the
        app's containers, edge proxy and network (the history stays).
    type: str
    default: present
    choices: [present, rolled_back, absent]
  rollback_to:
    description:
      - With O(state=rolled_back), V(previous) (the newest good release before the current one), a version,
        or a release id.
    type: str
    default: previous
  lock_timeout:
    description:
      - Seconds to wait for another run releasing the same app on this host.
    type: int
    default: 300
  deployer:
    description:
      - Who releases, recorded in the history (for example the AWX user or C($USER) on the controller).
    type: str
    default: unknown
  backup_id:
    description:
      - Id of a data backup taken just before this release, recorded in the history.
    type: str
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Release the web app by Git SHA, with its config from Git
  dockyard.fleet.docker_release:
    name: web
    image: registry.example.com:5000/shop/web
    version: "{{ web_git_sha }}"
    ports: ["80:8080"]
    env:
      DATABASE_URL: "{{ vault_database_url }}"
    config_files:
      - dest: /etc/web/app.conf
        content: "{{ lookup('ansible.builtin.template', 'web/app.conf.j2') }}"
    healthcheck:
      path: /healthz
    soak: 5
    deployer: "{{ awx_user_name | default(lookup('ansible.builtin.env', 'USER')) }}"

- name: Roll back to the previous good release (image, config and env)
  dockyard.fleet.docker_release:
    name: web
    state: rolled_back
"""

RETURN = r"""
release:
  description: The current release record after the run (no secret values).
  returned: success
  type: dict
  sample:
    id: 20261128T174455-3f9c2a1e
    version: 3f9c2a1e4b7d8c6f5a0e9d8c7b6a5f4e3d2c1b0a
    digest: sha256:5a8c3fd3a5de1b7a6a8e4a0e7e1c2d3b4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c
    outcome: succeeded
previous:
  description: The release record that was current before the run, if any.
  returned: success
  type: dict
plan:
  description: The steps taken, or in check mode the steps that would be taken.
  returned: always
  type: list
  elements: str
  sample: [pull, start, health, switch, drain, stop, prune]
container:
  description: Name of the container serving the current release.
  returned: success, when a release is current
  type: str
  sample: web-20261128T174455-3f9c2a1e
pruned:
  description: Ids of releases pruned by this run.
  returned: success
  type: list
  elements: str
lock_waited_seconds:
  description: Seconds this run waited for another run of the same app on this host.
  returned: success
  type: float
  sample: 0.0
health_output:
  description: Output of the last health check of a new container that failed its health gate.
  returned: failure of the health gate
  type: str
container_logs:
  description: Last log lines of a new container that failed its health gate.
  returned: failure of the health gate
  type: list
  elements: str
"""

import datetime
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_pull import ImagePuller
from ansible_collections.dockyard.fleet.plugins.module_utils._lock import HostLock, LockTimeoutError
from ansible_collections.dockyard.fleet.plugins.module_utils._release_history import (
    FAILED,
    HISTORY_DIR,
    IN_PROGRESS,
    REMOVED,
    SUCCEEDED,
    current_record,
    find_record,
    load_history,
    public_record,
    releases_to_prune,
    rollback_target,
    save_history,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._release_runner import (
    ReleaseError,
    ReleaseRunner,
    app_network,
    read_release_dir,
    remove_release_dir,
    write_release_dir,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._release_spec import (
    SpecError,
    config_entries,
    config_hash,
    env_hash,
    identity_options,
    merged_env,
    normalize_healthcheck,
    parse_port,
    release_identity,
    validate_app_name,
)

HMAC_KEY_FILE = os.path.join(HISTORY_DIR, ".env-hash-key")
LOCK_DIR = "/var/lib/dockyard/locks"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_hmac_key(create):
    """A random per-host key for env hashes, made once (0600). Check mode never writes: it uses a throwaway key."""
    try:
        with open(HMAC_KEY_FILE, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        if not create:
            return os.urandom(32)
        os.makedirs(HISTORY_DIR, mode=0o755, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(HMAC_KEY_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key


class Release:
    """One run of the module for one app."""

    def __init__(self, module, client):
        self.module = module
        self.params = module.params
        self.app = module.params["name"]
        self.check_mode = module.check_mode
        self.runner = ReleaseRunner(client, self.app)
        self.client = client
        self.history_path = os.path.join(HISTORY_DIR, "%s.json" % self.app)
        self.history = load_history(self.history_path, self.app)
        self.plan = []
        self.pruned = []
        self._hmac_key = None

    @property
    def hmac_key(self):
        if self._hmac_key is None:
            self._hmac_key = host_hmac_key(create=not self.check_mode)
        return self._hmac_key

    # ------------------------------------------------------------------ desired state
    def desired_from_params(self):
        """(spec, env, config) of the release the task asks for, with the image pulled and its digest known."""
        params = self.params
        ports = [parse_port(p) for p in params["ports"]]
        if params["strategy"] == "blue_green" and not ports:
            raise SpecError("strategy blue_green needs at least one port for the edge proxy; use recreate for workers")
        env_texts = []
        for path in params["env_files"]:
            try:
                with open(path, encoding="utf-8") as handle:
                    env_texts.append((path, handle.read()))
            except OSError as exc:
                raise SpecError("cannot read env file %s: %s" % (path, exc)) from None
        env = merged_env(env_texts, params["env"])
        config = config_entries(params["config_files"], self.read_host_file)
        spec = {
            "image": params["image"],
            "version": params["version"],
            "command": params["command"],
            "ports": ports,
            "networks": params["networks"],
            "volumes": params["volumes"],
            "labels": params["labels"],
            "restart_policy": params["restart_policy"],
            "memory": params["memory"],
            "cpus": params["cpus"],
            "stop_signal": params["stop_signal"],
            "stop_timeout": params["stop_timeout"],
            "healthcheck": normalize_healthcheck(params["healthcheck"], ports),
            "strategy": params["strategy"],
        }
        spec["digest"] = self.resolve_digest(spec["image"], spec["version"])
        return spec, env, config

    def read_host_file(self, path):
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise SpecError("cannot read config file src %s: %s" % (path, exc)) from None

    def resolve_digest(self, image, version):
        puller = ImagePuller(self.client, image, tag=version)
        result = puller.run(self.check_mode)
        if result["changed"]:
            self.plan.append("pull")
        if not result["digest"]:
            raise SpecError("%s:%s has no digest from its registry (was it pushed?)" % (image, version))
        return result["digest"]

    def identity_of(self, spec, env, config):
        identity, options_sha = release_identity(
            spec["digest"], config_hash(config), env_hash(env, self.hmac_key), identity_options(spec)
        )
        return identity, options_sha

    # ------------------------------------------------------------------ history
    def new_record(self, spec, env, config, identity, rollback_of=None):
        started = datetime.datetime.now(datetime.timezone.utc)
        record = {
            "id": "%s-%s" % (started.strftime("%Y%m%dT%H%M%S%f")[:-3], identity[:8]),
            "version": spec["version"],
            "image": spec["image"],
            "digest": spec["digest"],
            "identity": identity,
            "config_hash": config_hash(config),
            "env_hash": env_hash(env, self.hmac_key),
            "strategy": spec["strategy"],
            "deployer": self.params["deployer"],
            "started_at": now_iso(),
            "ended_at": None,
            "outcome": IN_PROGRESS,
        }
        if rollback_of:
            record["rollback_of"] = rollback_of
        if self.params.get("backup_id"):
            record["backup_id"] = self.params["backup_id"]
        return record

    def finish(self, record, outcome, message=None):
        record["outcome"] = outcome
        record["ended_at"] = now_iso()
        if message:
            record["message"] = message[:500]
        if outcome == SUCCEEDED:
            self.history["current"] = record["id"]
        save_history(self.history_path, self.history)

    # ------------------------------------------------------------------ present / rolled_back
    def deploy(self, spec, env, config, rollback_of=None):
        current = current_record(self.history)
        identity, dummy = self.identity_of(spec, env, config)
        current_container = self.runner.running_container(current["id"]) if current else None
        if current and current["identity"] == identity and current_container:
            return self.result(False, current, current)
        self.plan_steps(spec, current_container)
        if self.check_mode:
            after = {"id": "(new)", "version": spec["version"], "digest": spec["digest"], "outcome": "planned"}
            return self.result(True, current, after)
        self.preflight_ports(spec, current_container)
        if spec["strategy"] == "blue_green" and not self.client.image_or_none(self.params["proxy_image"]):
            ImagePuller(self.client, self.params["proxy_image"]).run(check_mode=False)
        record = self.new_record(spec, env, config, identity, rollback_of)
        self.history["releases"].append(record)
        save_history(self.history_path, self.history)
        stored = write_release_dir(self.app, record["id"], spec, env, config)
        try:
            if spec["strategy"] == "blue_green":
                self.blue_green(stored, env, record, current_container)
            else:
                self.recreate(stored, env, record, current, current_container)
        except ReleaseError as exc:
            remove_release_dir(self.app, record["id"])
            self.finish(record, FAILED, str(exc))
            self.fail_release(exc, record, current)
        except (DockerException, RequestException) as exc:
            self.runner.stop_and_remove(self.runner_container(record), 0)
            remove_release_dir(self.app, record["id"])
            self.finish(record, FAILED, str(exc))
            self.fail_release(ReleaseError("Docker engine error: %s" % exc), record, current)
        self.finish(record, SUCCEEDED)
        self.prune()
        return self.result(True, current, record)

    def runner_container(self, record):
        return "%s-%s" % (self.app, record["id"])

    def plan_steps(self, spec, current_container):
        if spec["strategy"] == "blue_green":
            self.plan += ["start", "health", "switch"]
            if current_container:
                self.plan += ["drain", "stop"]
        else:
            self.plan += (["stop"] if current_container else []) + ["start", "health"]
        self.plan.append("prune")

    def preflight_ports(self, spec, current_container):
        """A published port held by something else fails the release before anything is touched."""
        ours = self.runner.inspect("%s-edge" % self.app) if spec["strategy"] == "blue_green" else current_container
        if ours:
            return
        for port in spec["ports"]:
            if not self.runner.port_free(port["host_ip"], port["host_port"]):
                raise SpecError(
                    "port %s is already in use on this host (not by %s): free it or choose another"
                    % (port["host_port"], self.app)
                )

    def blue_green(self, spec, env, record, current_container):
        runner = self.runner
        runner.ensure_network(app_network(self.app))
        name = runner.start_container(spec, env, spec["config_mounts"], record["id"], publish=False)
        try:
            runner.health_gate(name, spec["healthcheck"], self.params["health_timeout"], self.params["soak"])
            upstream_ip = runner.container_ip(name)
            probe = spec["healthcheck"].get("path", "/") if spec["healthcheck"]["type"] == "http" else "/"
            started = runner.ensure_edge(
                self.params["proxy_image"], spec["ports"], upstream_ip, record["id"], self.params["drain_timeout"]
            )
            if started:
                ok, seen = runner.wait_edge(spec["ports"], probe, record["id"], timeout=15)
                if not ok:
                    raise ReleaseError("the edge proxy of %s did not come up (answered %s)" % (self.app, seen))
            else:
                runner.switch_edge(spec["ports"], upstream_ip, record["id"], self.params["drain_timeout"], probe)
        except ReleaseError:
            runner.stop_and_remove(name, 0)
            raise
        if current_container:
            runner.wait_drained(self.params["drain_timeout"])
            runner.stop_and_remove(current_container["Id"], self.params["stop_timeout"])

    def recreate(self, spec, env, record, current, current_container):
        runner = self.runner
        runner.ensure_network(app_network(self.app))
        if current_container:
            runner.stop_and_remove(current_container["Id"], self.params["stop_timeout"])
        name = runner.start_container(spec, env, spec["config_mounts"], record["id"], publish=True)
        try:
            runner.health_gate(name, spec["healthcheck"], self.params["health_timeout"], self.params["soak"])
        except ReleaseError:
            runner.stop_and_remove(name, 0)
            if current_container:
                # Put the previous release back as it was (image, config, env).
                old_spec, old_env, dummy = read_release_dir(self.app, current["id"])
                runner.start_container(old_spec, old_env, old_spec["config_mounts"], current["id"], publish=True)
            raise

    def rollback(self):
        target = rollback_target(self.history, self.params["rollback_to"])
        if target is None:
            self.module.fail_json(
                msg="no succeeded release of %s matches rollback_to=%r; releases: %s"
                % (
                    self.app,
                    self.params["rollback_to"],
                    ", ".join("%s (%s, %s)" % (r["id"], r["version"], r["outcome"]) for r in self.history["releases"])
                    or "none",
                ),
                plan=self.plan,
            )
        current = current_record(self.history)
        if current and current["id"] == target["id"] and self.runner.running_container(target["id"]):
            return self.result(False, current, current)
        try:
            spec, env, config = read_release_dir(self.app, target["id"])
        except ReleaseError as exc:
            self.module.fail_json(msg=str(exc), plan=self.plan)
        spec.pop("config_mounts", None)
        # Retention keeps the image of the last good release; pull it by digest if someone removed it.
        ImagePuller(self.client, spec["image"], digest=spec["digest"]).run(self.check_mode)
        return self.deploy(spec, env, config, rollback_of=target["id"])

    # ------------------------------------------------------------------ absent / prune
    def absent(self):
        current = current_record(self.history)
        containers = self.runner.containers() + self.runner.containers(role="edge")
        if not containers and not current:
            return self.result(False, None, None)
        self.plan.append("remove")
        if not self.check_mode:
            for container in containers:
                self.runner.stop_and_remove(container["Id"], self.params["stop_timeout"])
            self.runner.remove_edge()
            for network in self.client.api.networks(names=[app_network(self.app)]):
                self.client.api.remove_network(network["Id"])
            if current:
                self.history["releases"].append(
                    {"id": "removed-%s" % now_iso(), "outcome": REMOVED, "version": None, "ended_at": now_iso()}
                )
                self.history["current"] = None
                save_history(self.history_path, self.history)
        return self.result(True, current, None)

    def prune(self):
        for release_id in releases_to_prune(self.history, self.params["retain"]):
            record = find_record(self.history, release_id)
            for container in self.runner.containers(release_id):
                self.runner.stop_and_remove(container["Id"], self.params["stop_timeout"])
            remove_release_dir(self.app, release_id)
            kept_digests = {
                r.get("digest") for r in self.history["releases"] if not r.get("pruned") and r["id"] != release_id
            }
            if record.get("digest") and record["digest"] not in kept_digests:
                self.runner.remove_image_if_unused("%s@%s" % (record["image"], record["digest"]))
            record["pruned"] = True
            self.pruned.append(release_id)
        if self.pruned:
            save_history(self.history_path, self.history)

    # ------------------------------------------------------------------ output
    def result(self, changed, before, after):
        result = {
            "changed": changed,
            "plan": self.plan,
            "pruned": self.pruned,
            "release": public_record(after) if after else None,
            "previous": public_record(before) if before else None,
            "diff": {
                "before": public_record(before) if before else {},
                "after": public_record(after) if after else {},
                "before_header": self.history_path,
                "after_header": self.history_path,
            },
        }
        if after and after.get("id") and after["id"] != "(new)":
            result["container"] = "%s-%s" % (self.app, after["id"])
        return result

    def fail_release(self, exc, record, current):
        details = getattr(exc, "details", {})
        logs = details.get("container_logs") or []
        msg = "release %s of %s failed: %s" % (record["version"], self.app, exc)
        if current:
            msg += "; release %s (%s) keeps serving" % (current["id"], current["version"])
        if logs:
            msg += "\nlast log lines of the new container:\n" + "\n".join(logs)
        self.module.fail_json(
            msg=msg,
            plan=self.plan,
            release=public_record(record),
            previous=public_record(current) if current else None,
            health_output=details.get("health_output"),
            container_logs=logs,
        )


def main():
    argument_spec = {
        "name": {"type": "str", "required": True},
        "image": {"type": "str"},
        "version": {"type": "str"},
        "env": {"type": "dict", "default": {}, "no_log": True},
        "env_files": {"type": "list", "elements": "path", "default": []},
        "config_files": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "dest": {"type": "str", "required": True},
                "content": {"type": "str"},
                "src": {"type": "path"},
                "mode": {"type": "str", "default": "0444"},
            },
            "mutually_exclusive": [["content", "src"]],
            "required_one_of": [["content", "src"]],
        },
        "ports": {"type": "list", "elements": "str", "default": []},
        "networks": {"type": "list", "elements": "str", "default": []},
        "volumes": {"type": "list", "elements": "str", "default": []},
        "labels": {"type": "dict", "default": {}},
        "command": {"type": "list", "elements": "str"},
        "restart_policy": {
            "type": "str",
            "default": "unless-stopped",
            "choices": ["no", "on-failure", "always", "unless-stopped"],
        },
        "memory": {"type": "str"},
        "cpus": {"type": "float"},
        "healthcheck": {
            "type": "dict",
            "options": {
                "type": {"type": "str", "default": "http", "choices": ["http", "command", "image"]},
                "path": {"type": "str", "default": "/healthz"},
                "port": {"type": "int"},
                "status": {"type": "int", "default": 200},
                "host_header": {"type": "str"},
                "command": {"type": "list", "elements": "str"},
            },
        },
        "health_timeout": {"type": "int", "default": 60},
        "soak": {"type": "int", "default": 0},
        "strategy": {"type": "str", "default": "blue_green", "choices": ["blue_green", "recreate"]},
        "proxy_image": {"type": "str", "default": "nginx:1.25"},
        "drain_timeout": {"type": "int", "default": 10},
        "stop_signal": {"type": "str"},
        "stop_timeout": {"type": "int", "default": 10},
        "retain": {"type": "int", "default": 3},
        "state": {"type": "str", "default": "present", "choices": ["present", "rolled_back", "absent"]},
        "rollback_to": {"type": "str", "default": "previous"},
        "lock_timeout": {"type": "int", "default": 300},
        "deployer": {"type": "str", "default": "unknown"},
        "backup_id": {"type": "str"},
    }
    module = docker_module(
        argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ["image", "version"])],
    )
    try:
        validate_app_name(module.params["name"])
    except SpecError as exc:
        module.fail_json(msg=str(exc))
    client = DockerClient(module)
    release = Release(module, client)
    lock = HostLock(
        os.path.join(LOCK_DIR, "%s.lock" % module.params["name"]),
        owner="docker_release %s" % module.params["deployer"],
        timeout=module.params["lock_timeout"],
    )
    try:
        with lock:
            release.history = load_history(release.history_path, release.app)  # re-read under the lock
            if module.params["state"] == "absent":
                result = release.absent()
            elif module.params["state"] == "rolled_back":
                result = release.rollback()
            else:
                result = release.deploy(*release.desired_from_params())
    except LockTimeoutError as exc:
        module.fail_json(msg="another release of %s is running on this host: %s" % (module.params["name"], exc))
    except SpecError as exc:
        module.fail_json(msg=str(exc), plan=release.plan)
    except (DockerException, RequestException) as exc:
        client.fail("release of %s failed talking to the Docker engine: %s" % (module.params["name"], exc))
    result["lock_waited_seconds"] = round(lock.waited, 2)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
