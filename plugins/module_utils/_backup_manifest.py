# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The manifest of a volume backup: one entry per path (type, size, mode, owner,
# mtime in ns, sha256, link target, xattrs), in a stable walk order. Two
# manifests are "the same data" when their entries are equal on the content
# fields; inode and ctime are kept only as a cache key, so an unchanged file's
# sha256 is reused (like git's index) and a no-op backup reads no file data.

from __future__ import annotations

import datetime
import hashlib
import os
import stat

MANIFEST_FORMAT = 1
HASH_CHUNK = 1 << 20
# The fields that say what the data is; "ino"/"ctime_ns" only tell whether a cached hash is still valid.
CONTENT_FIELDS = ("type", "size", "mode", "uid", "gid", "mtime_ns", "sha256", "target", "xattrs")


def backup_id(now, host):
    """A sortable backup id: UTC time to the microsecond plus a short host tag (two hosts, one destination)."""
    tag = hashlib.sha256(host.encode("utf-8")).hexdigest()[:6]
    return "%s-%s" % (now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ"), tag)


def backup_time(backup_id_text):
    """The UTC datetime a backup id was made at."""
    stamp = backup_id_text.split("-", 1)[0]
    return datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(HASH_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def read_xattrs(path):
    """{name: hex value} of a path's extended attributes (not followed through symlinks); {} where unsupported."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    values = {}
    for name in sorted(names):
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=False).hex()
        except OSError:
            continue  # removed between list and get
    return values


def entry_type(st):
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISFIFO(st.st_mode):
        return "fifo"
    return None  # sockets and device nodes are not volume data; they are left out (and reported)


def stat_entry(root, relpath, st):
    """An entry from lstat alone (no sha256 yet)."""
    full = os.path.join(root, relpath)
    kind = entry_type(st)
    entry = {
        "path": relpath,
        "type": kind,
        "size": st.st_size if kind == "file" else 0,
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
        "sha256": None,
        "target": os.readlink(full) if kind == "symlink" else None,
        "xattrs": read_xattrs(full),
        "ino": st.st_ino,
        "ctime_ns": st.st_ctime_ns,
    }
    return entry


def walk(root):
    """(relpath, lstat) for the volume root (".") and everything below it, parents before children, sorted."""
    yield ".", os.lstat(root)
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as entries:
            children = sorted(entries, key=lambda e: e.name)
        subdirs = []
        for child in children:
            rel = os.path.join(rel_dir, child.name) if rel_dir else child.name
            st = child.stat(follow_symlinks=False)
            yield rel, st
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(rel)
        stack.extend(reversed(subdirs))


def same_stat(entry, cached):
    """True when a cached entry describes the same unchanged file (same inode, ctime, size, mtime)."""
    return (
        cached is not None
        and cached.get("sha256") is not None
        and cached.get("ino") == entry["ino"]
        and cached.get("ctime_ns") == entry["ctime_ns"]
        and cached.get("size") == entry["size"]
        and cached.get("mtime_ns") == entry["mtime_ns"]
    )


def iter_entries(root, previous=None, hash_mode="all", skipped=None):
    """Entries of the tree at root, in walk order; files take their sha256 from `previous` when unchanged.

    hash_mode "all" hashes every other file; "none" hashes nothing (the archive writer hashes while it
    reads); "confirm" (the cheap "has anything changed?" pass) hashes a file only when everything but its
    inode/ctime matches `previous` (a restored or chmod-ed but identical file): other changed files keep
    sha256 None, which already makes them differ. A second name of a hard-linked file becomes a
    "hardlink" entry whose target is the first name. Paths of unsupported types go to `skipped`.
    """
    cache = {e["path"]: e for e in (previous or [])}
    first_names = {}
    for relpath, st in walk(root):
        entry = stat_entry(root, relpath, st)
        if entry["type"] is None:
            if skipped is not None:
                skipped.append(relpath)
            continue
        if entry["type"] == "file" and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in first_names:
                entry.update({"type": "hardlink", "size": 0, "target": first_names[key]})
                yield entry
                continue
            first_names[key] = relpath
        if entry["type"] == "file":
            cached = cache.get(relpath)
            if same_stat(entry, cached):
                entry["sha256"] = cached["sha256"]
            elif hash_mode == "all" or (hash_mode == "confirm" and cached is not None and same_but_hash(entry, cached)):
                entry["sha256"] = file_sha256(os.path.join(root, relpath))
        yield entry


def scan(root, previous=None, hash_mode="all"):
    """(entries, skipped paths) of the tree at root; see iter_entries."""
    skipped = []
    entries = list(iter_entries(root, previous, hash_mode, skipped))
    return entries, skipped


def same_but_hash(entry, cached):
    return all(entry.get(f) == cached.get(f) for f in CONTENT_FIELDS if f != "sha256")


def content(entry):
    return tuple(entry.get(field) for field in CONTENT_FIELDS)


def compare_entries(old, new):
    """What differs between two entry lists: {"added": [...], "removed": [...], "changed": [...]} (paths)."""
    old_by_path = {e["path"]: e for e in old}
    new_by_path = {e["path"]: e for e in new}
    return {
        "added": [p for p in new_by_path if p not in old_by_path],
        "removed": [p for p in old_by_path if p not in new_by_path],
        "changed": [p for p, e in new_by_path.items() if p in old_by_path and content(e) != content(old_by_path[p])],
    }


def differs(old, new):
    return any(compare_entries(old, new).values())


def first_mismatch(expected, found):
    """The first field (by CONTENT_FIELDS order) in which `found` differs from `expected`, else None."""
    for field in CONTENT_FIELDS:
        if expected.get(field) != found.get(field):
            return field
    return None


def summary(entries):
    """Counts and total bytes of an entry list, for reports and diffs."""
    files = [e for e in entries if e["type"] == "file"]
    return {
        "entries": len(entries),
        "files": len(files),
        "bytes": sum(e["size"] for e in files),
    }
