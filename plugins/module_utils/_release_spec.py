# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# What a release is: image digest + config files + env + run options, and the
# identity hash over them. Pure functions, unit-tested. Env values are only
# ever hashed with a per-host key (HMAC), so a hash never reveals a secret.

from __future__ import annotations

import hashlib
import hmac
import json
import re

APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Run options that make a release differ (the rest, such as timeouts, only steer how it is rolled out).
IDENTITY_OPTIONS = (
    "command",
    "ports",
    "networks",
    "volumes",
    "labels",
    "restart_policy",
    "memory",
    "cpus",
    "stop_signal",
    "healthcheck",
    "strategy",
)


class SpecError(ValueError):
    pass


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def validate_app_name(name):
    if not APP_NAME_RE.match(name or ""):
        raise SpecError(
            "invalid app name %r: use lowercase letters, digits, '.', '_' or '-' (63 at most), starting with "
            "a letter or digit" % name
        )


def parse_port(spec):
    """'8080', '80:8080' or '127.0.0.1:80:8080' -> {'host_ip', 'host_port', 'container_port'}."""
    parts = str(spec).split(":")
    if len(parts) == 1:
        host_ip, host_port, container_port = "", parts[0], parts[0]
    elif len(parts) == 2:
        host_ip, (host_port, container_port) = "", parts
    elif len(parts) == 3:
        host_ip, host_port, container_port = parts
    else:
        raise SpecError("invalid port %r: expected CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER" % spec)
    try:
        ports = int(host_port), int(container_port)
    except ValueError:
        raise SpecError("invalid port %r: ports must be numbers" % spec) from None
    if not all(1 <= p <= 65535 for p in ports):
        raise SpecError("invalid port %r: ports must be between 1 and 65535" % spec)
    return {"host_ip": host_ip, "host_port": ports[0], "container_port": ports[1]}


def parse_env_file(text, source):
    """KEY=VALUE lines as docker --env-file reads them (no quotes processing, # comments)."""
    env = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not ENV_NAME_RE.match(key):
            raise SpecError("%s line %d: expected KEY=VALUE, got a line starting %r" % (source, number, key[:20]))
        env[key] = value
    return env


def merged_env(env_file_texts, env):
    """Env files in order, then `env` on top (like docker run --env-file ... -e ...)."""
    result = {}
    for source, text in env_file_texts:
        result.update(parse_env_file(text, source))
    for key, value in (env or {}).items():
        if not ENV_NAME_RE.match(str(key)):
            raise SpecError("invalid env variable name %r" % key)
        result[str(key)] = "" if value is None else str(value)
    return result


def env_hash(env, key):
    """HMAC of the whole env with a per-host secret key: equal envs compare equal, values stay unknown."""
    return hmac.new(key, canonical(env).encode("utf-8"), hashlib.sha256).hexdigest()


def config_entries(config_files, read_src):
    """[{dest, content, mode}] from the module's config_files (content given, or read from src on the host)."""
    entries = []
    seen = set()
    for item in config_files or []:
        dest = item["dest"]
        if not dest.startswith("/"):
            raise SpecError("config file dest %r must be an absolute path in the container" % dest)
        if dest in seen:
            raise SpecError("config file dest %r is given twice" % dest)
        seen.add(dest)
        content = item.get("content")
        if content is None:
            content = read_src(item["src"])
        entries.append({"dest": dest, "content": content, "mode": item.get("mode") or "0444"})
    return entries


def config_hash(entries):
    return sha256_text(canonical([[e["dest"], e["mode"], sha256_text(e["content"])] for e in entries]))


def identity_options(params):
    return {name: params.get(name) for name in IDENTITY_OPTIONS}


def release_identity(digest, config_sha, env_sha, options):
    """The release identity: same identity as the current release means nothing to do."""
    options_sha = sha256_text(canonical(options))
    return sha256_text(canonical([digest, config_sha, env_sha, options_sha])), options_sha


def normalize_healthcheck(healthcheck, ports):
    """Fill defaults and check that the health check can run; raises SpecError naming the bad value."""
    check = dict(healthcheck or {})
    kind = check.get("type") or "http"
    check["type"] = kind
    if kind == "http":
        path = check.get("path") or "/healthz"
        if not path.startswith("/"):
            raise SpecError("healthcheck path %r must start with '/'" % path)
        check["path"] = path
        if not check.get("port"):
            if not ports:
                raise SpecError("healthcheck of type http needs healthcheck.port when the release has no ports")
            check["port"] = ports[0]["container_port"]
        check["status"] = int(check.get("status") or 200)
    elif kind == "command":
        if not check.get("command"):
            raise SpecError("healthcheck of type command needs healthcheck.command")
    elif kind != "image":
        raise SpecError("invalid healthcheck type %r: expected http, command or image" % kind)
    return check
