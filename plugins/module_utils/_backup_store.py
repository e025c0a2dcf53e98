# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# A directory of backups: <destination>/<volume>/<id><suffix> (the archive),
# <id>.manifest.json beside it, and <id>.verify.json once verified. An archive
# is written as .<id>.partial and renamed only when complete; the manifest is
# written last, so a backup without a manifest never counts ("good" means:
# manifest present, archive present with the manifest's size, and no failed
# verification on record). Leftover partials are removed under the lock.
#
# StoreBase holds what every store shares (good / catalogue / latest); a store
# gives ids, manifests, verifications, archive sizes, a writer (commit on success,
# nothing left on failure) and a reader of archives. _backup_s3.S3Store is the
# same on an S3 bucket.

from __future__ import annotations

import contextlib
import datetime
import json
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import backup_time
from ansible_collections.dockyard.fleet.plugins.module_utils._direct_io import DirectWriter, enable_direct
from ansible_collections.dockyard.fleet.plugins.module_utils._files import read_text, write_atomically

MANIFEST_SUFFIX = ".manifest.json"
VERIFY_SUFFIX = ".verify.json"
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"
# An archive is handed to the disk in steps of this size while it is written (see WritebackFile).
WRITEBACK_BYTES = 32 << 20


class WritebackFile:
    """A file being written whose finished parts are handed to the disk at once.

    Without this the whole archive sits dirty in the page cache (far below the kernel's writeback
    threshold on a host with memory) and the final fsync writes all of it after the archive is
    done: on a 2 GB volume that is half a second of nothing but waiting. POSIX_FADV_DONTNEED on a
    written range starts its writeback without waiting, and its pages then leave the cache instead
    of pushing out the applications' hot data (a backup is not read again soon).
    """

    def __init__(self, handle, step=WRITEBACK_BYTES):
        self.handle = handle
        self.step = step
        self.written = 0
        self.handed = 0

    def write(self, data):
        count = self.handle.write(data)
        self.written += len(data)
        if self.written - self.handed >= self.step and hasattr(os, "posix_fadvise"):
            self.handle.flush()
            with contextlib.suppress(OSError):  # advice only: a file system without it still works
                os.posix_fadvise(self.handle.fileno(), self.handed, self.written - self.handed, os.POSIX_FADV_DONTNEED)
            self.handed = self.written
        return count

    def flush(self):
        self.handle.flush()

    def fileno(self):
        return self.handle.fileno()


def ids_among(names):
    """Backup ids with a manifest among a store's file names, oldest first."""
    return sorted(n[: -len(MANIFEST_SUFFIX)] for n in names if n.endswith(MANIFEST_SUFFIX))


def verification_record(ok, mode, detail=None):
    return {
        "ok": ok,
        "mode": mode,
        "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": detail,
    }


class StoreBase:
    """What every store shares; subclasses give ids, manifest, verification and archive_size."""

    def is_good(self, backup_id, manifest=None):
        manifest = manifest or self.manifest(backup_id)
        if not manifest:
            return False
        try:
            if self.archive_size(manifest) != manifest["archive"]["size"]:
                return False
        except OSError:
            return False
        verification = self.verification(backup_id)
        return not (verification and not verification.get("ok"))

    def catalogue(self):
        """[{"id", "time", "good", "verified"}] oldest first."""
        items = []
        for backup_id in self.ids():
            verification = self.verification(backup_id) or {}
            items.append(
                {
                    "id": backup_id,
                    "time": backup_time(backup_id),
                    "good": self.is_good(backup_id),
                    "verified": bool(verification.get("ok")),
                    "verified_at": verification.get("at"),
                }
            )
        return items

    def backup_names(self, backup_id):
        """The files of a backup, manifest first: removed in this order, a half-removed one never counts as good."""
        manifest = self.manifest(backup_id)
        names = [backup_id + MANIFEST_SUFFIX, backup_id + VERIFY_SUFFIX]
        if manifest:
            names.append(manifest["archive"]["name"])
        return names

    def close(self):
        """Release what the store keeps open between calls (the SSH store: its master connection)."""

    def latest_good(self):
        for backup_id in reversed(self.ids()):
            manifest = self.manifest(backup_id)
            if self.is_good(backup_id, manifest):
                return backup_id, manifest
        return None, None


class DirectoryStore(StoreBase):
    def __init__(self, destination, volume, direct=True):
        self.root = os.path.join(destination, volume)
        self.location = self.root
        self.direct = direct  # archives written with O_DIRECT where possible (False: always buffered)

    def exists(self):
        return os.path.isdir(self.root)

    def ensure(self):
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    @property
    def lock_path(self):
        return os.path.join(self.root, ".lock")

    def manifest_path(self, backup_id):
        return os.path.join(self.root, backup_id + MANIFEST_SUFFIX)

    manifest_ref = manifest_path

    def verify_path(self, backup_id):
        return os.path.join(self.root, backup_id + VERIFY_SUFFIX)

    def archive_path(self, manifest):
        return os.path.join(self.root, manifest["archive"]["name"])

    archive_ref = archive_path

    def partial_path(self, backup_id):
        return os.path.join(self.root, PARTIAL_PREFIX + backup_id + PARTIAL_SUFFIX)

    def ids(self):
        """Backup ids with a manifest, oldest first."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return ids_among(names)

    def manifest(self, backup_id):
        text = read_text(self.manifest_path(backup_id))
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    def verification(self, backup_id):
        text = read_text(self.verify_path(backup_id))
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    def archive_size(self, manifest):
        return os.path.getsize(self.archive_path(manifest))

    def open_archive(self, manifest):
        return open(self.archive_path(manifest), "rb")

    @contextlib.contextmanager
    def writer(self, backup_id, name):
        """A file to stream the archive into: renamed into place when the block ends well, removed if not.

        Written past the page cache (O_DIRECT, _direct_io) where the file system allows it, else
        buffered with its writeback started as it goes (WritebackFile); fsynced before the rename.
        """
        partial = self.partial_path(backup_id)
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        try:
            if self.direct and enable_direct(fd):
                out = DirectWriter(fd)
                try:
                    yield out
                    out.finish()
                finally:
                    out.close()
                os.fsync(fd)
                os.close(fd)
            else:
                handle, fd = os.fdopen(fd, "wb"), None  # the file object owns (and closes) the descriptor now
                with handle:
                    yield WritebackFile(handle)
                    handle.flush()
                    os.fsync(handle.fileno())
            fd = None
            os.rename(partial, os.path.join(self.root, name))
        except BaseException:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise

    def write_manifest(self, manifest):
        write_atomically(self.manifest_path(manifest["id"]), json.dumps(manifest, separators=(",", ":")), mode=0o600)

    def record_verification(self, backup_id, ok, mode, detail=None):
        record = verification_record(ok, mode, detail)
        write_atomically(self.verify_path(backup_id), json.dumps(record), mode=0o600)
        return record

    def remove(self, backup_id):
        for name in self.backup_names(backup_id):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.root, name))

    def leftover_partials(self, host_tag=None):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(
            os.path.join(self.root, n) for n in names if n.startswith(PARTIAL_PREFIX) and n.endswith(PARTIAL_SUFFIX)
        )

    def remove_partials(self, partials):
        for path in partials:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
