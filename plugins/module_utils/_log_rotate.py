# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# File work of the log_rotate module: thresholds, the names of rotated copies, shifting older
# copies, compressing, and the copy-then-truncate step that measures how many bytes were written
# between the end of the copy and the truncation (the lines copytruncate can lose).

from __future__ import annotations

import gzip
import os
import re
import shutil
import time

SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}


def parse_size(text):
    """'10M' -> 10485760; an int stays as it is. ValueError names the bad value."""
    if isinstance(text, int):
        return text
    match = re.match(r"^\s*(\d+)\s*([A-Za-z]*)\s*$", str(text))
    if not match or match.group(2).upper() not in SIZE_UNITS:
        raise ValueError("size %r is not a number with an optional unit K, M or G" % (text,))
    return int(match.group(1)) * SIZE_UNITS[match.group(2).upper()]


def due(size, mtime_of_newest_copy, min_size, max_age, now):
    """Why a file is due for rotation, or None: at least min_size bytes, or max_age seconds since the last rotation."""
    if size == 0:
        return None
    if min_size and size >= min_size:
        return "size %d >= %d" % (size, min_size)
    if max_age and (mtime_of_newest_copy is None or now - mtime_of_newest_copy >= max_age):
        return "last rotated more than %d s ago" % max_age
    return None


def copy_name(path, index, date_suffix, compress, now=None):
    """path.1 (path.1.gz), or path-YYYYmmdd-HHMMSS(.gz) with date_suffix."""
    suffix = ".gz" if compress else ""
    if date_suffix:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
        return "%s-%s%s" % (path, stamp, suffix)
    return "%s.%d%s" % (path, index, suffix)


def existing_copies(path):
    """Rotated copies of path, newest first (numbered .N or dated -YYYYmmdd-HHMMSS, optionally .gz)."""
    directory, base = os.path.split(path)
    pattern = re.compile(r"^%s(\.\d+|-\d{8}-\d{6})(\.gz)?$" % re.escape(base))
    found = [os.path.join(directory, n) for n in os.listdir(directory or ".") if pattern.match(n)]
    return sorted(found, key=lambda p: os.stat(p).st_mtime, reverse=True)


def shift_numbered(path, keep, compress):
    """Make room for a new .1: .N -> .N+1, dropping what goes beyond keep. Returns bytes freed."""
    freed = 0
    for suffix in (".gz", ""):
        for index in range(keep, 0, -1):
            source = "%s.%d%s" % (path, index, suffix)
            if not os.path.exists(source):
                continue
            if index >= keep:
                freed += os.path.getsize(source)
                os.unlink(source)
            else:
                os.replace(source, "%s.%d%s" % (path, index + 1, suffix))
    return freed


def drop_old_dated(path, keep):
    """Remove dated copies beyond keep. Returns bytes freed."""
    freed = 0
    dated = [p for p in existing_copies(path) if re.search(r"-\d{8}-\d{6}(\.gz)?$", p)]
    for old in dated[keep:]:
        freed += os.path.getsize(old)
        os.unlink(old)
    return freed


def compress_file(source, target):
    with open(source, "rb") as raw, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(raw, packed, 1024 * 1024)
    shutil.copystat(source, target)
    os.unlink(source)


def copy_then_truncate(path, target):
    """Copy path to target, then truncate path. (bytes copied, bytes at risk).

    bytes at risk: what the writer appended after the copy ended and before the truncation; these
    bytes are in neither file. Measured from the file size just before truncating.
    """
    with open(path, "rb") as source, open(target, "wb") as copy:
        shutil.copyfileobj(source, copy, 1024 * 1024)
        copied = copy.tell()
        copy.flush()
        os.fsync(copy.fileno())
    with open(path, "r+b") as live:
        size_before = os.fstat(live.fileno()).st_size
        live.truncate(0)
    shutil.copystat(path, target)
    return copied, max(size_before - copied, 0)


def holds_open(pid, path):
    """True when process pid has path open (a descriptor in /proc/<pid>/fd names it; a renamed file is named by
    its new path there)."""
    wanted = os.path.realpath(path)
    fd_dir = "/proc/%d/fd" % pid
    try:
        descriptors = os.listdir(fd_dir)
    except FileNotFoundError:  # the process is gone: nothing open
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(os.path.join(fd_dir, descriptor)) == wanted:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def wait_released(pid, paths, timeout, interval=0.05):
    """Wait until process pid holds none of paths open, at most timeout seconds. The paths it still holds
    (empty once all are released).

    rsyslog closes its output files when it handles SIGHUP, flushing what it had buffered into them: a renamed
    file may only be compressed (read, then removed) after that, or the lines written meanwhile are lost."""
    deadline = time.monotonic() + timeout
    while True:
        held = [path for path in paths if holds_open(pid, path)]
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(interval)


def _program_of(pid):
    try:
        with open("/proc/%s/comm" % pid, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:  # gone meanwhile
        return None


def _pid_namespace(pid):
    try:
        return os.readlink("/proc/%s/ns/pid" % pid)
    except OSError:
        return None


def program_pid(pidfile, program):
    """The pid of program: from its pid file when there is one, else the one process of that name in this pid
    namespace (rsyslog under systemd writes no pid file: Debian 12 starts it with -iNONE; a container's own
    rsyslogd is in another namespace). LookupError naming what was found when that is not exactly one."""
    try:
        with open(pidfile, encoding="utf-8") as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        ours = _pid_namespace("self")
        pids = sorted(
            int(entry)
            for entry in os.listdir("/proc")
            if entry.isdigit() and _program_of(entry) == program and _pid_namespace(entry) == ours
        )
        if len(pids) != 1:
            found = "%d processes %s" % (len(pids), program) if pids else "no " + program
            raise LookupError("no pid file %s and %s running here: set the pid file" % (pidfile, found)) from None
        return pids[0]
    if not text.isdigit():
        raise LookupError("pid file %s does not hold a pid: %r" % (pidfile, text[:40]))
    return int(text)
