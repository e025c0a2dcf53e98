# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The one host-side lock helper: an atomically created file holding its owner
# (who, pid, since). Two runs never hold the same lock; a lock whose owner
# process is gone, or that is older than `stale_after` seconds, is taken over.

from __future__ import annotations

import json
import os
import socket
import time


class LockTimeoutError(Exception):
    def __init__(self, path, holder, waited):
        self.path = path
        self.holder = holder
        self.waited = waited
        super().__init__(
            "%s is held by %s (pid %s on %s) since %s; gave up after %.0f s"
            % (
                path,
                holder.get("owner", "?"),
                holder.get("pid", "?"),
                holder.get("host", "?"),
                holder.get("since_iso", "?"),
                waited,
            )
        )


def lock_is_stale(holder, now, stale_after, this_host, pid_alive):
    """A lock is stale when older than stale_after, or when its process on this host is gone."""
    if not holder:
        return True  # unreadable or half-written: its writer died between create and write
    if now - float(holder.get("since", 0)) > stale_after:
        return True
    return holder.get("host") == this_host and not pid_alive(int(holder.get("pid", 0)))


def _pid_alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostLock:
    """with HostLock(path, owner, timeout): ...  (raises LockTimeoutError)"""

    def __init__(self, path, owner, timeout, stale_after=3600, poll=0.2):
        self.path = path
        self.owner = owner
        self.timeout = timeout
        self.stale_after = stale_after
        self.poll = poll
        self.waited = 0.0
        self._held = False

    def _read_holder(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def _try_create(self):
        now = time.time()
        record = {
            "owner": self.owner,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": now,
            "since_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        return True

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        started = time.monotonic()
        while True:
            if self._try_create():
                self._held = True
                self.waited = time.monotonic() - started
                return self
            holder = self._read_holder()
            if lock_is_stale(holder, time.time(), self.stale_after, socket.gethostname(), _pid_alive):
                # Rename first so that two runs taking over the same stale lock cannot both win.
                try:
                    os.rename(self.path, "%s.stale.%d" % (self.path, os.getpid()))
                    os.unlink("%s.stale.%d" % (self.path, os.getpid()))
                except OSError:
                    pass
                continue
            waited = time.monotonic() - started
            if waited >= self.timeout:
                raise LockTimeoutError(self.path, holder, waited)
            time.sleep(self.poll)

    def release(self):
        if self._held and self._read_holder().get("pid") == os.getpid():
            os.unlink(self.path)
        self._held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
