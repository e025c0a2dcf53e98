# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The one way the collection writes a file on a host: a temporary file beside
# the target, flushed to disk, given its mode, then renamed over the target.
# A crash leaves the old file or the new one, never half of one.

from __future__ import annotations

import os
import tempfile


def write_atomically(path, text, mode=0o644, uid=-1, gid=-1, check=None):
    """Write `text` (str as UTF-8, or bytes) to `path` atomically. `check(tmp_path)`, when given, runs on
    the complete temporary file before the rename; whatever it raises leaves the target untouched."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # created 0600: secrets never readable
    try:
        binary = isinstance(text, bytes)  # bytes as they are, text as UTF-8
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)  # before the rename: the file is never there with the wrong owner
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_bytes(path):
    """The file's bytes, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def read_text(path):
    """The file's text, or None when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None
