# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# What the volume_backup module does, written against a small interface so the
# same code runs from Ansible (the module) and from the systemd timers of the
# storage role (roles/storage/files/dockyard-volume-backup, no Ansible on the
# host): `module` has params, check_mode, _diff and fail_json(**result);
# `client` has api (docker.APIClient), sdk (docker.DockerClient) and
# image_or_none(reference).

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import subprocess
import tempfile
import time

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_archive as archive
from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_passphrase as passphrase
from ansible_collections.dockyard.fleet.plugins.module_utils import _volume_access as access
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import (
    MANIFEST_FORMAT,
    backup_id,
    compare_entries,
    host_tag,
    scan,
    stream_sha256,
    summary,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_retention import select
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_s3 import S3Store
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_ssh import SSHStore
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_store import DirectoryStore
from ansible_collections.dockyard.fleet.plugins.module_utils._docker_api import DockerException, NotFound
from ansible_collections.dockyard.fleet.plugins.module_utils._lock import HostLock, LockTimeoutError

DEFAULT_LEVEL = {"zstd": 3, "gzip": 6, "none": 0}
RESTORE_LABEL = "dockyard.fleet.restore-of"


def mb_per_s(nbytes, seconds):
    return round(nbytes / 1e6 / seconds, 1) if seconds > 0 else 0.0


class VolumeBackup:
    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.name = self.params["volume"]
        self.store = self.make_store()
        self.result = {
            "changed": False,
            "bytes_in": 0,
            "bytes_out": 0,
            "duration": 0.0,
            "throughput_mb_s": 0.0,
            "ratio": 0.0,
            "containers": [],
            "pruned": [],
        }
        self.identity_files = []  # age identities for reading encrypted backups (0600, removed at the end)
        self.passphrase_kdf = None  # the scrypt salt and cost of a passphrase-encrypted backup being written

    # --- helpers -------------------------------------------------------------------------------
    def make_store(self):
        spec = self.params.get("s3")
        if not spec:
            if self.params.get("ssh"):
                return SSHStore(self.params["ssh"], self.name)
            return DirectoryStore(self.params["destination"], self.name)
        return S3Store(spec, self.name)

    def fail(self, msg, **extra):
        self.cleanup()
        self.module.fail_json(msg=msg, **dict(self.result, **extra))

    def cleanup(self):
        self.store.close()
        while self.identity_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.identity_files.pop())

    def volume_or_none(self, name=None):
        try:
            return self.client.api.inspect_volume(name or self.name)
        except NotFound:
            return None

    def encode_filters(self):
        """The compressor, and age to every recipient: those given, the passphrase's, the identity's."""
        compression = self.params["compression"]
        level = self.params["compression_level"] or DEFAULT_LEVEL[compression]
        filters = archive.compress_argv(compression, level)
        encryption = self.params["encryption"]
        if encryption:
            recipients = list(encryption.get("recipients") or [])
            if encryption.get("passphrase"):
                self.passphrase_kdf = passphrase.new_kdf()
                recipients.append(
                    self.recipient_of(passphrase.derive_identity(encryption["passphrase"], self.passphrase_kdf))
                )
            if not recipients and encryption.get("identity"):
                recipients.append(self.recipient_of(encryption["identity"]))
            argv = ["age"]
            for recipient in recipients:
                argv += ["-r", recipient]
            filters.append(argv)
        return filters

    def recipient_of(self, identity):
        """The age public key of a secret key (age-keygen -y, the key on its stdin: never on a command line)."""
        proc = subprocess.run(
            ["age-keygen", "-y"], input=identity.strip() + "\n", capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            self.fail(
                "encryption: age-keygen -y refused the key: %s" % proc.stderr.strip().replace(identity.strip(), "***")
            )
        return proc.stdout.strip()

    def decode_filters(self, manifest):
        filters = []
        if manifest.get("encrypted"):
            encryption = self.params["encryption"] or {}
            identities = [encryption["identity"].strip()] if encryption.get("identity") else []
            if encryption.get("passphrase") and manifest.get("passphrase_kdf"):
                identities.append(passphrase.derive_identity(encryption["passphrase"], manifest["passphrase_kdf"]))
            if not identities:
                self.fail(
                    "backup %s of %s is encrypted: give encryption.identity%s to read it"
                    % (manifest["id"], self.name, " or encryption.passphrase" if manifest.get("passphrase_kdf") else "")
                )
            fd, path = tempfile.mkstemp(prefix=".age-identity-")  # 0600
            self.identity_files.append(path)
            with os.fdopen(fd, "w") as handle:
                handle.write("".join(identity + "\n" for identity in identities))
            filters.append(["age", "-d", "-i", path])
        return filters + archive.decompress_argv(manifest["compression"])

    def chosen_backup(self):
        wanted = self.params["backup_id"]
        if wanted == "latest":
            backup, manifest = self.store.latest_good()
            if backup is None:
                self.fail("no good backup of volume %s under %s" % (self.name, self.store.location))
            return backup, manifest
        manifest = self.store.manifest(wanted)
        if manifest is None:
            known = self.store.ids()[-5:]
            self.fail(
                "backup_id %s of volume %s not found under %s (newest: %s)"
                % (wanted, self.name, self.store.location, known)
            )
        return wanted, manifest

    def describe_backup(self, backup, manifest):
        self.result["backup_id"] = backup
        self.result["archive"] = self.store.archive_ref(manifest)
        self.result["manifest"] = self.store.manifest_ref(backup)

    def timing(self, started, nbytes_in, nbytes_out):
        seconds = time.monotonic() - started
        self.result.update(
            duration=round(seconds, 3),
            bytes_in=nbytes_in,
            bytes_out=nbytes_out,
            throughput_mb_s=mb_per_s(nbytes_in, seconds),
            ratio=round(nbytes_out / nbytes_in, 4) if nbytes_in else 0.0,
        )

    def locked(self):
        self.store.ensure()
        return HostLock(self.store.lock_path, "volume_backup %s" % self.name, self.params["lock_timeout"])

    # --- backup --------------------------------------------------------------------------------
    def backup(self, volume):
        checked = time.monotonic()
        last_id, last = self.store.latest_good()
        containers = access.mounting_containers(self.client, self.name)
        mode = self.params["consistency"]
        if mode == "exec" and not self.module.check_mode:
            for name in containers:
                code, output = access.exec_in(self.client, name, self.params["consistency_command"])
                self.result["containers"].append(name)
                if code != 0:
                    self.fail(
                        "consistency_command exited %d in container %s: %s" % (code, name, output.strip()[-2000:])
                    )
        with access.volume_root(self.client, volume, self.params["access"], self.params["helper_image"]) as root:
            if last is not None:
                entries, dummy = scan(root, last["entries"], hash_mode="confirm")
                changes = compare_entries(last["entries"], entries)
                self.result["changes"] = self.change_report(changes)
                if not any(changes.values()):
                    self.describe_backup(last_id, last)
                    self.result["duration"] = round(time.monotonic() - checked, 3)  # the no-op check itself
                    return False
            else:
                self.result["changes"] = {"first_backup": True}
            new_id = backup_id(datetime.datetime.now(datetime.timezone.utc), socket.gethostname())
            self.result["backup_id"] = new_id
            self.result["diff"] = {
                "before": {"newest_backup": last_id},
                "after": {"newest_backup": new_id},
            }
            if self.module.check_mode:
                self.result["containers"] = containers if mode in ("stop", "pause") else self.result["containers"]
                return True
            self.write_backup(volume, root, new_id, containers, last)
        return True

    @staticmethod
    def change_report(changes):
        report = {key: paths[:20] for key, paths in changes.items()}
        report.update({"%s_count" % key: len(paths) for key, paths in changes.items()})
        return report

    def write_backup(self, volume, root, new_id, containers, last):
        mode = self.params["consistency"]
        compression = self.params["compression"]
        encrypted = bool(self.params["encryption"])
        name = new_id + archive.archive_suffix(compression, encrypted)
        started = time.monotonic()
        quiet = containers if mode in ("stop", "pause") else []
        touched = [] if mode in ("stop", "pause") else self.result["containers"]
        try:
            with self.store.writer(new_id, name) as out:  # noqa: SIM117 - one with-statement needs Python 3.10
                with access.quiesced(self.client, quiet, mode, self.params["stop_timeout"], touched):
                    entries, stats = archive.write_archive(
                        root,
                        out,
                        self.encode_filters(),
                        previous=last["entries"] if last else None,
                        # nothing in a container writes: those that mount the volume are stopped or paused
                        quiescent=mode in ("stop", "pause") or not containers,
                    )
        except (OSError, archive.ArchiveError, RuntimeError, DockerException) as exc:
            if mode in ("stop", "pause"):
                self.result["containers"] = touched
            self.fail("backup of volume %s to %s failed, nothing kept: %s" % (self.name, self.store.location, exc))
        if mode in ("stop", "pause"):
            self.result["containers"] = touched
        self.timing(started, stats["bytes_in"], stats["bytes_out"])
        manifest = {
            "format": MANIFEST_FORMAT,
            "id": new_id,
            "volume": self.name,
            "driver": volume.get("Driver"),
            "driver_options": volume.get("Options") or {},
            "labels": volume.get("Labels") or {},
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "host": socket.gethostname(),
            "consistency": mode,
            "containers": self.result["containers"],
            "compression": compression,
            "encrypted": encrypted,
            "passphrase_kdf": self.passphrase_kdf,
            "archive": {"name": name, "size": stats["bytes_out"], "sha256": stats["sha256"]},
            "bytes": stats["bytes_in"],
            "duration": self.result["duration"],
            "summary": summary(entries),
            "skipped": stats["skipped"],
            "entries": entries,
        }
        self.store.write_manifest(manifest)
        self.describe_backup(new_id, manifest)
        # not "skipped": Ansible reads a truthy "skipped" in a result as a skipped task
        self.result["skipped_paths"] = stats["skipped"]
        if self.params["verify"] != "none":
            self.verify_one(new_id, manifest, self.params["verify"], timed=False)

    # --- verify --------------------------------------------------------------------------------
    def verify_one(self, backup, manifest, how, timed=True):
        started = time.monotonic()
        detail = None
        try:
            if how == "full":
                archive.read_archive(lambda: self.store.open_archive(manifest), self.decode_filters(manifest), manifest)
            else:
                size = self.store.archive_size(manifest)
                if size != manifest["archive"]["size"]:
                    raise archive.ArchiveError(
                        None, "archive is %d bytes, the manifest says %d" % (size, manifest["archive"]["size"])
                    )
                with self.store.open_archive(manifest) as handle:
                    digest, size = stream_sha256(handle)
                if size != manifest["archive"]["size"]:
                    raise archive.ArchiveError(
                        None, "archive read gave %d bytes, the manifest says %d" % (size, manifest["archive"]["size"])
                    )
                if digest != manifest["archive"]["sha256"]:
                    raise archive.ArchiveError(
                        None,
                        "archive sha256 %s differs from the manifest's %s" % (digest, manifest["archive"]["sha256"]),
                    )
        except (OSError, archive.ArchiveError) as exc:
            detail = {"path": getattr(exc, "path", None), "reason": getattr(exc, "reason", str(exc))}
        if timed:
            self.timing(started, manifest.get("bytes", 0), manifest["archive"]["size"])
        ok = detail is None
        if not self.module.check_mode:
            self.result["verified"] = self.store.record_verification(backup, ok, how, detail)
        if not ok:
            where = ("first bad path: %s; " % detail["path"]) if detail["path"] else ""
            self.fail(
                "backup %s of volume %s failed %s verification: %s%s"
                % (backup, self.name, how, where, detail["reason"]),
                bad_path=detail["path"],
            )

    def verify(self):
        backup, manifest = self.chosen_backup()
        self.describe_backup(backup, manifest)
        how = self.params["verify"] if self.params["verify"] != "none" else "digest"
        self.verify_one(backup, manifest, how)
        return False

    # --- restore -------------------------------------------------------------------------------
    def restore(self):
        backup, manifest = self.chosen_backup()
        self.describe_backup(backup, manifest)
        volume = self.volume_or_none()
        if volume is not None:
            with access.volume_root(self.client, volume, self.params["access"], self.params["helper_image"]) as root:
                if not access.is_empty(root):
                    current, dummy = scan(root, manifest["entries"], hash_mode="confirm")
                    if not any(compare_entries(manifest["entries"], current).values()):
                        return False  # already holds exactly this backup
                    if not self.params["force"]:
                        self.fail(
                            "volume %s is not empty and differs from backup %s: refusing to replace its data; "
                            "set force=true to do so (nothing was changed)" % (self.name, backup)
                        )
        containers = access.mounting_containers(self.client, self.name) if volume else []
        self.result["diff"] = {
            "before": {"volume": self.name, "exists": volume is not None},
            "after": {"restored": backup},
        }
        if self.module.check_mode:
            self.result["containers"] = containers
            return True
        started = time.monotonic()
        temp_name = "%s-restore-%s" % (self.name, backup.split("-")[-1])
        labels = dict(manifest["labels"] or {}, **{RESTORE_LABEL: self.name})
        if self.volume_or_none(temp_name) is not None:
            self.client.api.remove_volume(temp_name, force=True)  # a leftover of a crashed restore
        temp = self.client.api.create_volume(
            temp_name, driver=manifest["driver"], driver_opts=manifest["driver_options"] or None, labels=labels
        )
        created = False
        try:
            stats = self.extract(manifest, temp)
            if volume is None:  # made only once the data checked out: a failed restore leaves no empty volume
                volume = self.client.api.create_volume(
                    self.name,
                    driver=manifest["driver"],
                    driver_opts=manifest["driver_options"] or None,
                    labels=manifest["labels"] or None,
                )
                created = True
            touched = []
            try:
                with access.quiesced(self.client, containers, "stop", self.params["stop_timeout"], touched):
                    self.swap(volume, temp)
            finally:
                self.result["containers"] = touched
        except (OSError, archive.ArchiveError, RuntimeError, DockerException) as exc:
            if created:  # it did not exist before the restore, and does not after
                with contextlib.suppress(DockerException):
                    self.client.api.remove_volume(self.name, force=True)
            self.fail("restore of %s into volume %s failed; its data is unchanged: %s" % (backup, self.name, exc))
        finally:
            if self.volume_or_none(temp_name) is not None:
                self.client.api.remove_volume(temp_name, force=True)
        self.timing(started, stats["bytes"], manifest["archive"]["size"])
        return True

    def extract(self, manifest, temp):
        with access.volume_root(self.client, temp, self.params["access"], self.params["helper_image"]) as root:
            return archive.read_archive(
                lambda: self.store.open_archive(manifest), self.decode_filters(manifest), manifest, extract_root=root
            )

    def swap(self, volume, temp):
        """Put the checked data of the temporary volume into the target volume."""
        in_place = self.params["access"] != "helper" and access.reads_in_place(volume) and access.reads_in_place(temp)
        if in_place:
            target, restored = volume["Mountpoint"], temp["Mountpoint"]
            parked = os.path.join(os.path.dirname(restored), "old")
            os.rename(target, parked)
            os.rename(restored, target)
            os.rename(parked, restored)  # the old data leaves with the temporary volume
            return
        mounts = {volume["Name"]: {"bind": "/target", "mode": "rw"}, temp["Name"]: {"bind": "/restore", "mode": "ro"}}
        code, output = access.run_in_helper(
            self.client,
            self.params["helper_image"],
            mounts,
            ["sh", "-c", "find /target -mindepth 1 -delete && cp -a /restore/. /target/"],
        )
        if code != 0:
            raise RuntimeError(
                "copying the restored data into %s failed (exit %d): %s" % (volume["Name"], code, output.strip())
            )

    # --- retention -----------------------------------------------------------------------------
    def prune(self, extra_good=None):
        policy = self.params["retention"]
        if not policy:
            return
        catalogue = self.store.catalogue()
        if extra_good:
            catalogue.append(extra_good)
        keep, prune = select(catalogue, policy)
        self.result["kept"] = keep
        prune = [b for b in prune if not extra_good or b != extra_good["id"]]
        self.result["pruned"] = prune
        if prune:
            self.result["changed"] = True
        if not self.module.check_mode:
            for backup in prune:
                self.store.remove(backup)

    def run(self):
        state = self.params["state"]
        volume = None
        if state == "backup":
            volume = self.volume_or_none()
            if volume is None:
                self.fail("volume %s does not exist on this host" % self.name)
        try:
            if self.module.check_mode and not self.store.exists():
                return self.run_unlocked(state, volume)
            with self.locked():
                partials = self.store.leftover_partials(host_tag(socket.gethostname()))
                if partials and not self.module.check_mode:
                    # under the lock, nobody is writing them: a crashed run's leftovers
                    self.store.remove_partials(partials)
                self.result["removed_partials"] = partials
                return self.run_unlocked(state, volume)
        except LockTimeoutError as exc:
            self.fail(str(exc))
        except OSError as exc:  # the destination itself: a directory that cannot be made, S3 refusing
            self.fail("volume %s: destination %s: %s" % (self.name, self.store.location, exc))
        return None

    def run_unlocked(self, state, volume):
        if state == "backup":
            wrote = self.backup(volume)
            self.result["changed"] = wrote
            extra = None
            if wrote and self.module.check_mode:
                stamp = self.result["backup_id"]
                extra = {"id": stamp, "time": datetime.datetime.now(datetime.timezone.utc), "good": True}
            self.prune(extra)
        elif state == "verify":
            self.verify()
        elif state == "restore":
            self.result["changed"] = self.restore()
        else:
            self.prune()
        if not self.module._diff:
            self.result.pop("diff", None)
        self.cleanup()
        return self.result
