# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# What the logging role and log_rotate share: how a container's log configuration differs from the
# engine's defaults (Docker applies changed defaults only to new containers), and how far the shipper
# (rsyslog imfile) has read a file, from imfile's state files, so nothing is removed or truncated
# before it has been shipped.

from __future__ import annotations

import json
import os
import time

# Log drivers whose files grow without bound unless max-size is set.
UNBOUNDED_WITHOUT_MAX_SIZE = ("json-file",)


def log_config_drift(log_config, default_driver, default_options):
    """Reasons why a container's HostConfig.LogConfig differs from the defaults ([] = none).

    Docker copies the default options into a container at creation only when its driver is the
    default one, so a container created with `--log-driver json-file` under another default driver
    carries no options at all: an unbounded log (the "driver set, no options" trap).
    """
    driver = (log_config or {}).get("Type") or ""
    options = (log_config or {}).get("Config") or {}
    reasons = []
    if driver != default_driver:
        reasons.append("driver %s, default %s" % (driver or "(none)", default_driver))
    else:
        for key in sorted(default_options):
            wanted = str(default_options[key])
            if key not in options:
                reasons.append("%s not set (default %s)" % (key, wanted))
            elif str(options[key]) != wanted:
                reasons.append("%s=%s (default %s)" % (key, options[key], wanted))
    if driver in UNBOUNDED_WITHOUT_MAX_SIZE and "max-size" not in options:
        reasons.append("%s without max-size: the log grows without bound" % driver)
    return reasons


def imfile_state_offsets(state_dir):
    """{file name: (inode, offset read)} from rsyslog imfile state files (imfile-state:<inode>:<hash>)."""
    offsets = {}
    try:
        names = os.listdir(state_dir)
    except OSError:
        return offsets
    for name in names:
        if not name.startswith("imfile-state:"):
            continue
        try:
            with open(os.path.join(state_dir, name), encoding="utf-8") as handle:
                state = json.load(handle)
            inode = int(name.split(":")[1])
            offset = int(state["curr_offs"])
        except (OSError, ValueError, KeyError, IndexError):
            continue
        filename = state.get("filename")
        if filename:
            previous = offsets.get(filename)
            if previous is None or previous[0] != inode or previous[1] < offset:
                offsets[filename] = (inode, offset)
    return offsets


def unshipped_bytes(path, state_dir):
    """Bytes of `path` the shipper has not read yet: size - offset in its state file for this inode.

    None when no state file names this file (the shipper does not follow it, or has not started).
    """
    stat = os.stat(path)
    state = imfile_state_offsets(state_dir).get(path)
    if state is None:
        return None
    inode, offset = state
    if inode != stat.st_ino:
        return None  # a state of an older file of the same name
    return max(stat.st_size - offset, 0)


def wait_until_shipped(path, state_dir, timeout, poll=0.5, clock=time.monotonic, sleep=time.sleep):
    """Wait until the shipper has read all of `path`; the bytes still unread (0 = shipped, None = not followed)."""
    deadline = clock() + timeout
    while True:
        left = unshipped_bytes(path, state_dir)
        if left is None or left == 0 or clock() >= deadline:
            return left
        sleep(poll)
