# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The merge rules of /etc/docker/daemon.json, which several roles write (log
# defaults, mirrors, registry trust, network options): keys a caller gives are
# merged into what is there, everything else is kept, and the result is checked
# the way dockerd would check it, because dockerd refuses to start at all on a
# bad file - and on a fleet that is every host at once.

from __future__ import annotations

import copy
import json

# dockerd re-reads these on SIGHUP ("Configuration reload behavior" in the dockerd
# reference); any other changed key needs a restart, which live-restore makes safe.
RELOADABLE_KEYS = frozenset(
    {
        "allow-nondistributable-artifacts",
        "authorization-plugins",
        "builder",
        "debug",
        "default-runtime",
        "features",
        "insecure-registries",
        "labels",
        "live-restore",
        "max-concurrent-downloads",
        "max-concurrent-uploads",
        "max-download-attempts",
        "registry-mirrors",
        "runtimes",
        "shutdown-timeout",
    }
)

BOOL_KEYS = frozenset(
    {
        "debug",
        "experimental",
        "icc",
        "init",
        "ip-forward",
        "ip-masq",
        "ip6tables",
        "iptables",
        "ipv6",
        "live-restore",
        "no-new-privileges",
        "selinux-enabled",
        "userland-proxy",
        "userns-remap-enabled",
    }
)
INT_KEYS = frozenset(
    {"max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "mtu", "shutdown-timeout"}
)
STRING_KEYS = frozenset(
    {
        "bip",
        "bridge",
        "cgroup-parent",
        "containerd",
        "containerd-namespace",
        "data-root",
        "default-cgroupns-mode",
        "default-gateway",
        "default-gateway-v6",
        "default-ipc-mode",
        "default-runtime",
        "default-shm-size",
        "exec-root",
        "fixed-cidr",
        "fixed-cidr-v6",
        "group",
        "init-path",
        "ip",
        "log-driver",
        "log-format",
        "log-level",
        "pidfile",
        "seccomp-profile",
        "storage-driver",
        "userland-proxy-path",
        "userns-remap",
    }
)
STRING_LIST_KEYS = frozenset(
    {
        "allow-nondistributable-artifacts",
        "authorization-plugins",
        "dns",
        "dns-opts",
        "dns-search",
        "exec-opts",
        "hosts",
        "insecure-registries",
        "labels",
        "node-generic-resources",
        "registry-mirrors",
        "storage-opts",
    }
)
STRING_MAP_KEYS = frozenset({"log-opts"})  # dockerd: "cannot unmarshal number into ... string"
OTHER_KEYS = frozenset(
    {
        "builder",
        "default-address-pools",
        "default-ulimits",
        "features",
        "metrics-addr",
        "proxies",
        "runtimes",
        "tls",
        "tlscacert",
        "tlscert",
        "tlskey",
        "tlsverify",
    }
)
KNOWN_KEYS = BOOL_KEYS | INT_KEYS | STRING_KEYS | STRING_LIST_KEYS | STRING_MAP_KEYS | OTHER_KEYS

# Short dockerd flags that stand for a daemon.json key: a key given both ways stops dockerd.
SHORT_FLAGS = {"-H": "hosts", "-D": "debug", "-G": "group", "-l": "log-level", "-p": "pidfile", "-b": "bridge"}


class DaemonConfigError(ValueError):
    """Input dockerd would refuse; the message names the key and the value."""


def parse(text, path):
    """The daemon.json content as a dict ({} for a missing or empty file)."""
    if text is None or not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise DaemonConfigError("%s is not valid JSON (%s): fix or remove it first" % (path, exc)) from exc
    if not isinstance(config, dict):
        raise DaemonConfigError("%s holds a JSON %s, dockerd expects an object" % (path, type(config).__name__))
    return config


def deep_merge(current, wanted):
    """`wanted` laid over `current`: nested dicts merged key by key, every other value replaced."""
    merged = copy.deepcopy(current)
    for key, value in wanted.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge(current, settings, remove=(), live_restore=True):
    """The new config: settings merged in, `remove` keys dropped, live-restore on when asked."""
    merged = deep_merge(current, settings or {})
    for key in remove or ():
        merged.pop(key, None)
    if live_restore:
        merged["live-restore"] = True
    return merged


def changed_keys(before, after):
    """Top-level keys whose value differs, sorted."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def restart_or_reload(keys):
    """(restart_needed, reload_needed) for a set of changed keys."""
    restart = any(k not in RELOADABLE_KEYS for k in keys)
    return restart, bool(keys) and not restart


def reload_first(before, after, keys):
    """Whether dockerd must be reloaded before the restart a change needs.

    True when the change turns live-restore on and also needs a restart: dockerd reads
    live-restore on SIGHUP, so a reload first makes the restart keep the running containers.
    A restart alone would start dockerd with live-restore on, but stop every container first.
    """
    restart_needed = restart_or_reload(keys)[0]
    return restart_needed and after.get("live-restore") is True and before.get("live-restore") is not True


def outcome(path, before_text, before, after, after_text):
    """The module's result for merging `after` over `before` (the file's text before_text, None when missing).

    Same keys but other formatting (a hand-edited file) is not a change: dockerd reads the same thing.
    """
    keys = changed_keys(before, after)
    restart, reload = restart_or_reload(keys)
    return {
        "changed": bool(keys),
        "config": after,
        "changed_keys": keys,
        "restart_needed": restart,
        "reload_needed": reload,
        "reload_first": reload_first(before, after, keys),
        "diff": {
            "before": before_text or "",
            "after": after_text if keys else before_text or "",
            "before_header": path,
            "after_header": path,
        },
    }


def _is_string_list(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def validate(config, allow_unknown=False):
    """Raise DaemonConfigError for what dockerd would refuse."""
    for key, value in config.items():
        if key not in KNOWN_KEYS and not allow_unknown:
            raise DaemonConfigError(
                "daemon.json key %r is not a dockerd option (dockerd would not start); "
                "check the spelling or set allow_unknown_keys" % key
            )
        _validate_value(key, value)
    for mirror in config.get("registry-mirrors") or []:
        if not mirror.startswith(("http://", "https://")):
            raise DaemonConfigError("registry-mirrors entry %r needs a scheme: https://%s" % (mirror, mirror))


def _validate_value(key, value):
    if key in BOOL_KEYS and not isinstance(value, bool):
        raise DaemonConfigError("daemon.json key %r must be true or false, got %r" % (key, value))
    if key in INT_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
        raise DaemonConfigError("daemon.json key %r must be an integer, got %r" % (key, value))
    if key in STRING_KEYS and not isinstance(value, str):
        raise DaemonConfigError("daemon.json key %r must be a string, got %r" % (key, value))
    if key in STRING_LIST_KEYS and not _is_string_list(value):
        raise DaemonConfigError("daemon.json key %r must be a list of strings, got %r" % (key, value))
    if key in STRING_MAP_KEYS:
        if not isinstance(value, dict):
            raise DaemonConfigError("daemon.json key %r must be a mapping, got %r" % (key, value))
        for option, option_value in value.items():
            if not isinstance(option_value, str):
                raise DaemonConfigError(
                    "%s.%s must be a string (dockerd refuses %r): quote it, e.g. %s: %r"
                    % (key, option, option_value, option, str(option_value).lower())
                )


def flag_conflicts(config, cmdline):
    """Keys also given as flags on dockerd's command line: dockerd refuses to start with both."""
    flags = set()
    for arg in cmdline:
        name = arg.split("=", 1)[0]
        if name.startswith("--"):
            flags.add(name[2:])
        elif name in SHORT_FLAGS:
            flags.add(SHORT_FLAGS[name])
    return sorted(k for k in config if k in flags)


def render(config):
    return json.dumps(config, indent=2, sort_keys=True) + "\n"
