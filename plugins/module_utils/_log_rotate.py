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
