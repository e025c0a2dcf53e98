# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The directories and small files a role keeps on a host (configs, units, keys), checked and
# written in one module run (module host_files). With ansible.builtin.copy/template/file each file
# is two module runs even when nothing changes (a stat, then the file module for its mode), and a
# module run costs about 0.2 s of CPU on the host: a role with ten files and nine directories paid
# several seconds of every no-change run for them. Plan first (what differs, and why), then apply:
# check mode is the plan alone.

from __future__ import annotations

import grp
import os
import pwd
import stat

from ansible_collections.dockyard.fleet.plugins.module_utils._files import read_text, write_atomically

DIFF_MAX = 64 << 10  # bigger files are reported as changed without their text in the diff


class HostFilesError(Exception):
    """Bad input or a path in the way, naming the path and the value."""


def resolve_owner(owner, group):
    """(uid, gid) for names or numbers; -1 where not given (keep / the process's own)."""
    return _resolve(owner, pwd.getpwnam, "owner"), _resolve(group, grp.getgrnam, "group")


def _resolve(value, lookup, what):
    if value is None or value == "":
        return -1
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        entry = lookup(text)
    except KeyError:
        raise HostFilesError("%s %r does not exist on this host" % (what, text)) from None
    return entry[2]


def parse_mode(mode, path):
    """An octal mode string (V("0644")) as an int; refuses anything else, naming the path."""
    text = str(mode)
    try:
        value = int(text, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise HostFilesError("%s: mode %r is not an octal mode such as '0644'" % (path, text))
    return value


def _metadata_changes(found, mode, uid, gid):
    changes = []
    if stat.S_IMODE(found.st_mode) != mode:
        changes.append("mode %04o -> %04o" % (stat.S_IMODE(found.st_mode), mode))
    if uid != -1 and found.st_uid != uid:
        changes.append("owner %d -> %d" % (found.st_uid, uid))
    if gid != -1 and found.st_gid != gid:
        changes.append("group %d -> %d" % (found.st_gid, gid))
    return changes


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _wanted(item):
    """(path, mode, uid, gid) the item asks for; HostFilesError naming a bad mode or owner."""
    path = item["path"]
    return (path, parse_mode(item["mode"], path), *resolve_owner(item.get("owner"), item.get("group")))


def plan_directory(item):
    """What making the directory item needs: [] when it is as wanted."""
    path, mode, uid, gid = _wanted(item)
    found = _lstat(path)
    if found is None:
        return ["created"]
    if not stat.S_ISDIR(found.st_mode):
        raise HostFilesError("%s: wanted a directory, found something else there (not replaced)" % path)
    return _metadata_changes(found, mode, uid, gid)


def plan_file(item):
    """(changes, text before or None) for the file item: no changes when it is as wanted."""
    path, mode, uid, gid = _wanted(item)
    found = _lstat(path)
    if found is None:
        return ["created"], None
    if not stat.S_ISREG(found.st_mode):
        raise HostFilesError("%s: wanted a regular file, found something else there (not replaced)" % path)
    if not item.get("force", True):
        return [], None  # only made when missing: what is there now is the host's
    before = read_text(path)
    changes = [] if before == item["content"] else ["content"]
    return changes + _metadata_changes(found, mode, uid, gid), before


def apply_directory(item, changes):  # changes: unused, the same call as apply_file
    path, mode, uid, gid = _wanted(item)
    if not os.path.isdir(path):
        os.makedirs(path, mode=mode)
    os.chmod(path, mode)  # makedirs' mode is filtered by the umask
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)


def apply_file(item, changes):
    path, mode, uid, gid = _wanted(item)
    if "created" in changes or "content" in changes:
        write_atomically(path, item["content"], mode, uid, gid)
        return
    os.chmod(path, mode)
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)


def diff_entry(item, changes, before):
    """One entry of the module's diff list: the text before and after (not for secret files)."""
    path = item["path"]
    entry = {"before_header": path, "after_header": path}
    if item.get("secret"):
        entry.update(before="(secret: %s)\n" % ", ".join(changes), after="(secret)\n")
    elif "content" in changes or "created" in changes:
        after = item["content"]
        too_big = len(after) > DIFF_MAX or (before is not None and len(before) > DIFF_MAX)
        entry.update(
            before="(%d bytes)\n" % len(before) if too_big and before is not None else (before or ""),
            after="(%d bytes)\n" % len(after) if too_big else after,
        )
    else:
        entry.update(before="%s\n" % ", ".join(changes), after="")
    return entry


def sync(directories, files, check_mode):
    """Plan every item, then (unless check_mode) apply: bad input fails before anything is written.

    Returns the changed paths, their tags, what changed per path, and the diff entries.
    """
    planned = []  # (item, changes, apply, diff entry) of each item that differs
    for item in directories:
        changes = plan_directory(item)
        if changes:
            entry = {"before_header": item["path"], "after_header": item["path"]}
            entry.update(before="", after="directory: %s\n" % ", ".join(changes))
            planned.append((item, changes, apply_directory, entry))
    for item in files:
        item["content"] = _content(item)
        changes, before = plan_file(item)
        if changes:
            planned.append((item, changes, apply_file, diff_entry(item, changes, before)))
    if not check_mode:
        for step in planned:
            item, changes, apply = step[:3]
            apply(item, changes)
    return {
        "changed_paths": [item["path"] for item, *_rest in planned],
        "changed_tags": sorted({tag for item, *_rest in planned for tag in item.get("tags") or []}),
        "changes": {item["path"]: changes for item, changes, *_rest in planned},
        "diff": [entry for *_rest, entry in planned],
    }


def _content(item):
    """The item's text: `content`, or `secret_content` (a secret file), exactly one of them."""
    given = [key for key in ("content", "secret_content") if item.get(key) is not None]
    if len(given) != 1:
        raise HostFilesError("%s: give exactly one of content and secret_content" % item["path"])
    if given[0] == "secret_content":
        item["secret"] = True
    return item[given[0]]
