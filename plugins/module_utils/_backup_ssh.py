# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Backups of one volume in a directory on a backup host, reached with the host's own OpenSSH
# client (no Python on the backup host: a POSIX shell, cat, mv, rm, sync and GNU find). The
# archive pipe (tar -> zstd -> age) is written straight into `ssh host 'cat > .partial'`: no
# staging copy. The partial is fsynced there and renamed into place by a second command only
# once our side of the pipe finished well, so a broken backup never leaves an archive that
# counts. Manifests and verification records are written beside it (temporary name, fsync,
# rename), the manifest last. The lock is host-local, as for S3: give each host its own path.
# Every command of one module run goes through one SSH connection (a ControlMaster in a private
# directory, closed at the end): a backup runs a dozen commands, and each would otherwise pay a
# TCP and SSH handshake and a login on the backup host.

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_s3 import LOCK_DIR
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_store import (
    MANIFEST_SUFFIX,
    PARTIAL_PREFIX,
    PARTIAL_SUFFIX,
    VERIFY_SUFFIX,
    StoreBase,
    ids_among,
    verification_record,
)

# A backup host that does not answer within this many seconds fails the task instead of hanging it.
CONNECT_TIMEOUT = 20
# A master connection whose module run died without closing it exits this many seconds after its last use.
CONTROL_PERSIST = 15
PARTIAL_ID = re.compile(r"^\.[0-9T.]+Z-([0-9a-f]+)\.partial$")


class SSHError(OSError):
    """A command on the backup host that failed: which one, its exit status and what ssh said."""


def ssh_target(spec):
    return "%s@%s" % (spec["user"], spec["host"]) if spec.get("user") else spec["host"]


def ssh_argv(spec, command, control_path=None):
    """The ssh command line running `command` (a shell command line) on the backup host.

    With control_path, the command shares one master connection with the others (started by the
    first). ssh keeps the first value of an option: ssh_args come before ours, so they can override.
    """
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % CONNECT_TIMEOUT, "-p", str(spec["port"])]
    if spec.get("identity_file"):
        argv += ["-i", spec["identity_file"], "-o", "IdentitiesOnly=yes"]
    argv[1:1] = list(spec.get("ssh_args") or [])
    if control_path:
        argv += ["-o", "ControlMaster=auto", "-o", "ControlPath=%s" % control_path]
        argv += ["-o", "ControlPersist=%d" % CONTROL_PERSIST]
    return [*argv, "--", ssh_target(spec), command]


def parse_listing(text):
    """{name: size} from `find -printf '%s %f\\n'` lines (a name may hold spaces, never a newline)."""
    found = {}
    for line in text.splitlines():
        size, dummy, name = line.partition(" ")
        if name and size.isdigit():
            found[name] = int(size)
    return found


def _q(path):
    return shlex.quote(path)


class _RemoteReader:
    """The stdout of `ssh host cat <archive>` as a binary file; close() reaps ssh."""

    def __init__(self, proc):
        self.proc = proc
        self.stream = proc.stdout

    def read(self, size=-1):
        return self.stream.read(size)

    def readinto(self, buffer):
        return self.stream.readinto(buffer)

    def fileno(self):
        return self.stream.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self.stream.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


class SSHStore(StoreBase):
    """Backups of one volume under <path>/<volume>/ on a backup host, over SSH."""

    def __init__(self, spec, volume):
        self.spec = dict(spec, port=spec.get("port") or 22)
        self.root = os.path.join(spec["path"], volume)
        who = "%s@" % spec["user"] if spec.get("user") else ""
        self.location = "%s%s:%s" % (who, spec["host"], self.root)
        tag = hashlib.sha256(("%s %s %s" % (spec["host"], self.spec["port"], self.root)).encode()).hexdigest()[:16]
        self.lock_path = os.path.join(LOCK_DIR, "%s-ssh-%s.lock" % (volume, tag))
        self._files = None
        self._manifests = {}
        self._control_dir = None

    # --- the remote side ----------------------------------------------------------------------
    def argv(self, command):
        """ssh running `command` over this store's master connection (a private directory for its socket)."""
        if self._control_dir is None:
            self._control_dir = tempfile.mkdtemp(prefix="dockyard-ssh-")  # 0700; a short path (socket names are short)
        return ssh_argv(self.spec, command, os.path.join(self._control_dir, "master"))

    def close(self):
        """Stop the master connection and remove its directory (again: nothing to do)."""
        if self._control_dir is None:
            return
        control_path = os.path.join(self._control_dir, "master")
        if os.path.exists(control_path):
            argv = ["ssh", "-o", "ControlPath=%s" % control_path, "-O", "exit", "--", ssh_target(self.spec)]
            subprocess.run(argv, capture_output=True, check=False)
        shutil.rmtree(self._control_dir, ignore_errors=True)
        self._control_dir = None

    def run(self, command, data=None, what=None):
        """Run a shell command on the backup host; its stdout (bytes). Raises SSHError naming `what`."""
        proc = subprocess.run(self.argv(command), input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise SSHError(
                "%s: ssh exited %d: %s" % (what or "command", proc.returncode, err)
            )  # the caller names the store
        return proc.stdout

    def path(self, name):
        return os.path.join(self.root, name)

    def files(self, refresh=False):
        """{name: size} of the files in the volume's directory (one listing, kept until something is written)."""
        if self._files is None or refresh:
            out = self.run(
                "cd %s 2>/dev/null || exit 0; find . -maxdepth 1 -type f -printf '%%s %%f\\n'" % _q(self.root),
                what="list",
            )
            self._files = parse_listing(out.decode("utf-8", "surrogateescape"))
        return self._files

    def _put(self, name, data):
        """Write a small file atomically (temporary name, fsync, rename), readable by its owner only."""
        final = self.path(name)
        temp = self.path(".%s.tmp" % name)
        self.run(
            "umask 077 && cat > %s && sync %s && mv -f %s %s" % (_q(temp), _q(temp), _q(temp), _q(final)),
            data=data,
            what="write %s" % name,
        )
        self._files = None

    def _json(self, name):
        if name not in self.files():
            return None
        try:
            return json.loads(self.run("cat %s" % _q(self.path(name)), what="read %s" % name))
        except ValueError:
            return None

    # --- the store interface (see DirectoryStore) ---------------------------------------------
    def exists(self):
        return bool(self.run("test -d %s && echo yes || true" % _q(self.root), what="check").strip())

    def ensure(self):
        self.run("umask 077 && mkdir -p %s" % _q(self.root), what="create the directory")

    def manifest_ref(self, backup_id):
        return "%s/%s" % (self.location, backup_id + MANIFEST_SUFFIX)

    def archive_ref(self, manifest):
        return "%s/%s" % (self.location, manifest["archive"]["name"])

    def ids(self):
        return ids_among(self.files())

    def manifest(self, backup_id):
        if backup_id not in self._manifests:
            self._manifests[backup_id] = self._json(backup_id + MANIFEST_SUFFIX)
        return self._manifests[backup_id]

    def verification(self, backup_id):
        return self._json(backup_id + VERIFY_SUFFIX)

    def archive_size(self, manifest):
        size = self.files().get(manifest["archive"]["name"])
        if size is None:
            raise SSHError("no archive %s" % manifest["archive"]["name"])
        return size

    def open_archive(self, manifest):
        command = "exec cat %s" % _q(self.path(manifest["archive"]["name"]))
        argv = self.argv(command)
        return _RemoteReader(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE))

    @contextlib.contextmanager
    def writer(self, backup_id, name):
        """ssh's stdin to stream the archive into; renamed into place only when the block ends well."""
        partial = self.path(PARTIAL_PREFIX + backup_id + PARTIAL_SUFFIX)
        command = "umask 077 && cat > %s && sync %s" % (_q(partial), _q(partial))
        proc = subprocess.Popen(self.argv(command), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            yield proc.stdin
            proc.stdin.close()  # end of the archive: cat finishes and fsyncs it
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            if proc.wait() != 0:
                raise SSHError("write %s: ssh exited %d: %s" % (name, proc.returncode, err))
            self.run("mv -f %s %s" % (_q(partial), _q(self.path(name))), what="rename %s into place" % name)
        except BaseException as exc:
            if proc.poll() is None:
                proc.kill()  # before cat sees an end: what it wrote stays a partial
            proc.wait()
            with contextlib.suppress(OSError):
                self.run("rm -f %s" % _q(partial), what="remove the partial archive")
            if isinstance(exc, BrokenPipeError) and proc.returncode > 0:  # ssh or cat gave up: say why
                err = proc.stderr.read().decode("utf-8", "replace").strip()
                raise SSHError("write %s: ssh exited %d: %s" % (name, proc.returncode, err)) from exc
            raise
        finally:
            self._files = None
            for pipe in (proc.stdin, proc.stderr):
                with contextlib.suppress(OSError):
                    pipe.close()

    def write_manifest(self, manifest):
        self._put(manifest["id"] + MANIFEST_SUFFIX, json.dumps(manifest, separators=(",", ":")).encode())
        self._manifests[manifest["id"]] = manifest

    def record_verification(self, backup_id, ok, mode, detail=None):
        record = verification_record(ok, mode, detail)
        self._put(backup_id + VERIFY_SUFFIX, json.dumps(record).encode())
        return record

    def remove(self, backup_id):
        paths = " ".join(_q(self.path(n)) for n in self.backup_names(backup_id))  # rm goes in this order
        self.run("rm -f %s" % paths, what="remove backup %s" % backup_id)
        self._manifests.pop(backup_id, None)
        self._files = None

    def leftover_partials(self, host_tag=None):
        """Partial archives of this volume written from this host (their ids end with its tag)."""
        found = []
        for name in self.files():
            match = PARTIAL_ID.match(name)
            if match and (host_tag is None or match.group(1) == host_tag):
                found.append(self.path(name))
        return sorted(found)

    def remove_partials(self, partials):
        if partials:
            self.run("rm -f %s" % " ".join(_q(p) for p in partials), what="remove partial archives")
            self._files = None
