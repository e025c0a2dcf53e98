# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# host_files' check from the controller: one shell command reads the type, mode, owner and group of
# every path (stat) and the sha256 of every file whose content matters (sha256sum); the controller
# compares them with the items. When everything is as wanted, the module need not run: a no-change
# run costs the host a stat instead of a Python module run (about 0.2 s of CPU). The check only
# ever answers "all as wanted" or "not sure": anything it cannot read or parse (no GNU stat, a
# missing file, an odd path, bad input) leaves the decision, and the error messages, to the module.

from __future__ import annotations

import hashlib
import stat

from ansible_collections.dockyard.fleet.plugins.module_utils._host_files import HostFilesError, _content, parse_mode
from ansible_collections.dockyard.fleet.plugins.plugin_utils._remote_read import shell_words

SEPARATOR = "--dockyard-host-files--"


def check_command(directories, files):
    """The shell command reading every item's state, or None when the items cannot be checked this way."""
    items = list(directories) + list(files)
    paths = [item.get("path") if isinstance(item, dict) else None for item in items]
    if not paths or not all(isinstance(path, str) and path.startswith("/") for path in paths):
        return None
    if any(char in path for path in paths for char in "\n\\"):
        return None  # sha256sum escapes such names; the module handles them
    hashed = [item["path"] for item in files if item.get("force", True)]
    command = "LC_ALL=C stat -c '%f %u %g %U %G %n' -- " + shell_words(paths) + " 2>/dev/null; echo " + SEPARATOR
    if hashed:
        command += "; LC_ALL=C sha256sum -- " + shell_words(hashed) + " 2>/dev/null"
    return command


def parse_check(output):
    """({path: (mode bits, uid, gid, user, group)}, {path: sha256}) from the check command's output."""
    stats, sums = {}, {}
    head, found, tail = output.partition(SEPARATOR)
    if not found:
        return None
    for line in head.splitlines():
        fields = line.split(" ", 5)
        if len(fields) == 6:
            raw_mode, uid, gid, user, group, path = fields
            stats[path] = (int(raw_mode, 16), uid, gid, user, group)
    for line in tail.splitlines():
        digest, found, path = line.partition("  ")
        if found and len(digest) == 64:
            sums[path] = digest
    return stats, sums


def _owner_matches(wanted, number, name):
    if wanted is None or wanted == "":
        return True
    wanted = str(wanted)
    return wanted == number if wanted.isdigit() else wanted == name


def _metadata_as_wanted(item, found, type_check):
    raw_mode, uid, gid, user, group = found
    return (
        type_check(raw_mode)
        and stat.S_IMODE(raw_mode) == parse_mode(item["mode"], item["path"])
        and _owner_matches(item.get("owner"), uid, user)
        and _owner_matches(item.get("group"), gid, group)
    )


def _file_content_as_wanted(item, digest):
    if not item.get("force", True):
        return True  # only made when missing: what is there now is the host's
    content, kind = _content(item)
    data = content if kind == "binary" else content.encode("utf-8")
    return digest == hashlib.sha256(data).hexdigest()


def all_as_wanted(directories, files, output):
    """True when the check's output shows every directory and file as the items want them."""
    parsed = parse_check(output)
    if parsed is None:
        return False
    stats, sums = parsed
    try:
        for item in directories:
            found = stats.get(item["path"])
            if found is None or not _metadata_as_wanted(item, found, stat.S_ISDIR):
                return False
        for item in files:
            found = stats.get(item["path"])
            if found is None or not _metadata_as_wanted(item, found, stat.S_ISREG):
                return False
            if not _file_content_as_wanted(item, sums.get(item["path"])):
                return False
    except (HostFilesError, KeyError, TypeError, ValueError, AttributeError, UnicodeEncodeError):
        return False  # bad input: the module names it
    return True
