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

import base64
import binascii
import grp
import os
import pwd
import shlex
import stat
import subprocess

from ansible_collections.dockyard.fleet.plugins.module_utils._files import read_bytes, read_text, write_atomically

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
    before = read_bytes(path) if item.get("binary") else read_text(path)
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
        check = (lambda tmp: run_validate(item["validate"], tmp, path)) if item.get("validate") else None
        write_atomically(path, item["content"], mode, uid, gid, check=check)
        return
    os.chmod(path, mode)
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)


def run_validate(command, tmp_path, path):
    """Run the item's validate command (%s: the new file, complete, beside the target) without a shell;
    a non-zero exit fails naming the path, the command and its output, and the target is left as it was."""
    if "%s" not in command:
        raise HostFilesError("%s: validate %r has no %%s for the file to check" % (path, command))
    argv = [word.replace("%s", tmp_path) for word in shlex.split(command)]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise HostFilesError("%s: validate %r could not run: %s" % (path, command, exc.strerror or exc)) from None
    if run.returncode != 0:
        output = (run.stderr.strip() or run.stdout.strip())[-2000:]
        raise HostFilesError(
            "%s: validate %r failed (exit %d), the file was not changed: %s" % (path, command, run.returncode, output)
        )


def diff_entry(item, changes, before):
    """One entry of the module's diff list: the text before and after (not for secret files)."""
    path = item["path"]
    entry = {"before_header": path, "after_header": path}
    if item.get("secret"):
        entry.update(before="(secret: %s)\n" % ", ".join(changes), after="(secret)\n")
    elif ("content" in changes or "created" in changes) and item.get("binary"):
        size_before = "" if before is None else "(binary, %d bytes)\n" % len(before)
        entry.update(before=size_before, after="(binary, %d bytes)\n" % len(item["content"]))
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
    for given in files:
        # a copy: the decoded content (bytes for content_base64) must not go back into the module's
        # arguments, which Ansible returns as `invocation` (JSON text)
        content, kind = _content(given)
        item = dict(given, content=content, secret=kind == "secret", binary=kind == "binary")
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


CONTENT_KEYS = ("content", "secret_content", "content_base64")


def _content(item):
    """(content, kind) of the item: text for `content`, text of kind "secret" for `secret_content` (a
    file holding a secret), bytes of kind "binary" for `content_base64`; exactly one of them."""
    given = [key for key in CONTENT_KEYS if item.get(key) is not None]
    if len(given) != 1:
        raise HostFilesError("%s: give exactly one of content, secret_content and content_base64" % item["path"])
    if given[0] == "content_base64":
        try:
            return base64.b64decode(item["content_base64"], validate=True), "binary"
        except (binascii.Error, ValueError):
            start = item["content_base64"][:20]
            raise HostFilesError("%s: content_base64 is not base64 (%r...)" % (item["path"], start)) from None
    return item[given[0]], "secret" if given[0] == "secret_content" else "text"
