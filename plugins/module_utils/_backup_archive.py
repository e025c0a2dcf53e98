# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Volume archives: a PAX tar (GNU tar reads it: ns mtimes and SCHILY.xattr
# headers) streamed through the host's compressor (and age) into the
# destination. One pass over the data: each file is hashed while tar reads it,
# and the archive is hashed while it is written, so there is no staging copy
# and no second read. Reading runs the same pipe backwards: verify checks
# every member against the manifest, extract writes it (holes stay holes)
# and checks it too, and both name the first path that is wrong.

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tarfile
import threading

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import (
    CONTENT_FIELDS,
    iter_entries,
)

CHUNK = 1 << 20
# tarfile's stream reader slices its buffer on every read (headers are 512 bytes): keep it small.
READ_BUFFER = 1 << 16
HOLE_BLOCK = 1 << 16
ZERO_BLOCK = bytes(HOLE_BLOCK)
XATTR_PREFIX = "SCHILY.xattr."


class ArchiveError(Exception):
    """A problem with an archive, naming the path it concerns (or None for the archive as a whole)."""

    def __init__(self, path, reason):
        self.path = path
        self.reason = reason
        super().__init__("%s: %s" % (path, reason) if path else reason)


def compress_argv(compression, level):
    if compression == "zstd":
        return [["zstd", "-q", "-%d" % level, "-T0", "-c"]]
    if compression == "gzip":
        return [["gzip", "-%d" % level, "-c"]]
    return []


def decompress_argv(compression):
    if compression == "zstd":
        return [["zstd", "-q", "-d", "-c"]]
    if compression == "gzip":
        return [["gzip", "-d", "-c"]]
    return []


def archive_suffix(compression, encrypted):
    suffix = {"zstd": ".tar.zst", "gzip": ".tar.gz"}.get(compression, ".tar")
    return suffix + (".age" if encrypted else "")


class _HashingReader:
    """A file object that hashes what is read through it (tar reads a file once; the hash comes free)."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        data = self.handle.read(size)
        self.digest.update(data)
        return data


class _HashingWriter:
    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.count = 0

    def write(self, data):
        self.digest.update(data)
        self.handle.write(data)
        self.count += len(data)
        return len(data)


class _PipeSink:
    """A write-only file object with tell(), so tarfile's plain "w" mode can write to a pipe.

    Stream mode ("w|") buffers through bytes concatenation and slicing, which copies its whole
    buffer for every small write: several times slower than handing tar's writes straight on.
    """

    def __init__(self, target):
        self.target = target
        self.count = 0

    def write(self, data):
        self.target.write(data)
        self.count += len(data)
        return len(data)

    def tell(self):
        return self.count


def _start_pipeline(argvs, stdin, stdout):
    """Chain the commands; the first reads stdin, the last writes stdout. Returns the processes."""
    procs = []
    for index, argv in enumerate(argvs):
        source = stdin if index == 0 else procs[-1].stdout
        sink = stdout if index == len(argvs) - 1 else subprocess.PIPE
        procs.append(subprocess.Popen(argv, stdin=source, stdout=sink, stderr=subprocess.PIPE))
        if index > 0:
            procs[-2].stdout.close()  # the next process owns it now: a dead reader gives the writer SIGPIPE
    return procs


def _finish_pipeline(procs):
    """Wait for the processes; the first failure as a message, else None."""
    problem = None
    for proc in procs:
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.stderr.close()
        if proc.wait() != 0 and problem is None:
            problem = "%s exited %d: %s" % (proc.args[0], proc.returncode, err or "no message")
    return problem


def _pax_mtime(ns):
    return "%d.%09d" % divmod(ns, 1000000000)


def _member_mtime_ns(member):
    text = member.pax_headers.get("mtime")
    if text is None:
        return int(member.mtime) * 1000000000
    seconds, dummy, fraction = text.partition(".")
    return int(seconds) * 1000000000 + int((fraction + "000000000")[:9])


def _member_xattrs(member):
    return {
        key[len(XATTR_PREFIX) :]: value.encode("utf-8", "surrogateescape").hex()
        for key, value in sorted(member.pax_headers.items())
        if key.startswith(XATTR_PREFIX)
    }


def _tarinfo(entry):
    info = tarfile.TarInfo(entry["path"])
    info.mode = entry["mode"]
    info.uid, info.gid = entry["uid"], entry["gid"]
    info.uname = info.gname = ""  # numeric owners: the restore host's user names do not matter
    info.mtime = entry["mtime_ns"] // 1000000000
    info.pax_headers = {"mtime": _pax_mtime(entry["mtime_ns"])}
    for name, value in entry["xattrs"].items():
        info.pax_headers[XATTR_PREFIX + name] = bytes.fromhex(value).decode("utf-8", "surrogateescape")
    kind = entry["type"]
    if kind == "dir":
        info.type = tarfile.DIRTYPE
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry["target"]
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, entry["target"]
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    else:
        info.type, info.size = tarfile.REGTYPE, entry["size"]
    return info


def write_archive(root, out_handle, filters, previous=None, on_entry=None):
    """Stream the tree at root as tar through `filters` (argv list) into out_handle (a binary file).

    Returns (entries with sha256, {"bytes_in", "bytes_out", "sha256", "skipped"}). Raises OSError or
    ArchiveError; the caller owns out_handle (and removes it on failure).
    """
    sink = _HashingWriter(out_handle)
    procs, pump, pump_error = [], None, []
    if filters:
        procs = _start_pipeline(filters, subprocess.PIPE, subprocess.PIPE)
        tar_out = procs[0].stdin

        def drain():
            try:
                while True:
                    chunk = procs[-1].stdout.read(CHUNK)
                    if not chunk:
                        return
                    sink.write(chunk)
            except OSError as exc:  # destination full or gone: stop reading, the writer side fails too
                pump_error.append(exc)
                procs[-1].stdout.close()

        pump = threading.Thread(target=drain, daemon=True)
        pump.start()
    else:
        tar_out = sink
    entries, skipped, bytes_in = [], [], 0
    try:
        with tarfile.open(fileobj=_PipeSink(tar_out), mode="w", format=tarfile.PAX_FORMAT, copybufsize=CHUNK) as tar:
            for entry in iter_entries(root, previous, "none", skipped):
                info = _tarinfo(entry)
                if entry["type"] == "file":
                    with open(os.path.join(root, entry["path"]), "rb") as handle:
                        reader = _HashingReader(handle)
                        tar.addfile(info, reader)
                    entry["sha256"] = reader.digest.hexdigest()
                    bytes_in += entry["size"]
                else:
                    tar.addfile(info)
                entries.append(entry)
                if on_entry:
                    on_entry(entry)
    except (BrokenPipeError, OSError) as exc:
        if pump_error:
            raise pump_error[0] from exc
        raise
    finally:
        if procs:
            with contextlib.suppress(OSError):
                tar_out.close()
            pump.join()
            problem = _finish_pipeline(procs)
    if pump_error:
        raise pump_error[0]
    if procs and problem:
        raise ArchiveError(None, problem)
    out_handle.flush()
    os.fsync(out_handle.fileno())
    stats = {"bytes_in": bytes_in, "bytes_out": sink.count, "sha256": sink.digest.hexdigest(), "skipped": skipped}
    return entries, stats


def archive_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


class _ArchiveReader:
    """Iterate the members of an archive file through the decode filters, hashing the file as it is fed."""

    def __init__(self, path, filters):
        self.path = path
        self.filters = filters
        self.digest = hashlib.sha256()
        self.procs = []
        self.feed_error = []

    def _feed(self, source, sink):
        try:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                self.digest.update(chunk)
                sink.write(chunk)
        except OSError as exc:
            self.feed_error.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sink.close()

    def __enter__(self):
        self.handle = open(self.path, "rb")
        if not self.filters:
            self.stream = _HashingReader(self.handle)
            self.digest = self.stream.digest
            return self.stream
        self.procs = _start_pipeline(self.filters, subprocess.PIPE, subprocess.PIPE)
        self.feeder = threading.Thread(target=self._feed, args=(self.handle, self.procs[0].stdin), daemon=True)
        self.feeder.start()
        return self.procs[-1].stdout

    def finish(self):
        """Read what is left (so the digest covers the whole file); a decoder failure message or None."""
        if not self.filters:
            while self.stream.read(CHUNK):
                pass
            return None
        out = self.procs[-1].stdout
        while out.read(CHUNK):
            pass
        self.feeder.join()
        return _finish_pipeline(self.procs)

    def __exit__(self, *exc_info):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.handle.close()


def _compare(expected, found, path):
    for field in CONTENT_FIELDS:
        if expected.get(field) != found.get(field):
            raise ArchiveError(
                path, "%s is %r in the archive, %r in the manifest" % (field, found.get(field), expected.get(field))
            )


def _found_entry(member, sha256):
    if member.isdir():
        kind = "dir"
    elif member.issym():
        kind = "symlink"
    elif member.islnk():
        kind = "hardlink"
    elif member.isfifo():
        kind = "fifo"
    else:
        kind = "file"
    return {
        "type": kind,
        "size": member.size if kind == "file" else 0,
        "mode": member.mode,
        "uid": member.uid,
        "gid": member.gid,
        "mtime_ns": _member_mtime_ns(member),
        "sha256": sha256,
        "target": member.linkname if kind in ("symlink", "hardlink") else None,
        "xattrs": _member_xattrs(member),
    }


def read_archive(path, filters, manifest, extract_root=None):
    """Read the archive at path, checking every member against manifest["entries"]; extract when given a root.

    Raises ArchiveError naming the first bad path (a member that differs, a member not in the manifest,
    the path being read when the stream broke, or the first manifest path the archive never reached).
    Returns {"entries", "bytes"}.
    """
    expected = {e["path"]: e for e in manifest["entries"]}
    order = [e["path"] for e in manifest["entries"]]
    seen, total, current = set(), 0, None
    dirs = []
    reader = _ArchiveReader(path, filters)
    with reader as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=READ_BUFFER) as tar:
                for member in tar:
                    current = member.name
                    if current not in expected:
                        raise ArchiveError(current, "in the archive but not in the manifest")
                    if current in seen:
                        raise ArchiveError(current, "twice in the archive")
                    sha256 = None
                    if member.isfile():
                        source = tar.extractfile(member)
                        sha256 = _copy_member(source, member, extract_root)
                        total += member.size
                    elif extract_root is not None:
                        _make_special(member, extract_root)
                    found = _found_entry(member, sha256)
                    _compare(expected[current], found, current)
                    if extract_root is not None:
                        _apply_metadata(extract_root, current, found, dirs)
                    seen.add(current)
                    current = None
        except (tarfile.TarError, EOFError, OSError) as exc:
            problem = reader.finish() if not isinstance(exc, OSError) else None
            where = current or _first_missing(order, seen)
            raise ArchiveError(
                where, "archive unreadable here (%s%s)" % (exc, "; " + problem if problem else "")
            ) from exc
        problem = reader.finish()
        if problem:
            raise ArchiveError(_first_missing(order, seen), "decoding failed: %s" % problem)
    missing = _first_missing(order, seen)
    if missing is not None:
        raise ArchiveError(missing, "in the manifest but not in the archive (truncated archive?)")
    digest = reader.digest.hexdigest()
    if digest != manifest["archive"]["sha256"]:
        raise ArchiveError(
            None, "archive sha256 %s differs from the manifest's %s" % (digest, manifest["archive"]["sha256"])
        )
    if extract_root is not None:
        for relpath, mtime_ns in reversed(dirs):  # children first: writing into a dir changes its mtime
            os.utime(_join(extract_root, relpath), ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    return {"entries": len(seen), "bytes": total}


def _first_missing(order, seen):
    for relpath in order:
        if relpath not in seen:
            return relpath
    return None


def _join(root, relpath):
    return root if relpath == "." else os.path.join(root, relpath)


def _copy_member(source, member, extract_root):
    """Hash a file member, writing it under extract_root when given (all-zero blocks become holes)."""
    if extract_root is None:
        return _hash_member(source, member, None)
    with open(_join(extract_root, member.name), "wb") as target:
        digest = _hash_member(source, member, target)
        target.truncate(member.size)  # a trailing hole still counts in the size
    return digest


def _hash_member(source, member, target):
    digest = hashlib.sha256()
    remaining = member.size
    while remaining:
        chunk = source.read(min(CHUNK, remaining))
        if not chunk:
            raise EOFError("unexpected end of data")
        remaining -= len(chunk)
        digest.update(chunk)
        if target is not None:
            _write_sparse(target, chunk)
    return digest.hexdigest()


def _write_sparse(target, chunk):
    view = memoryview(chunk)
    for start in range(0, len(chunk), HOLE_BLOCK):
        block = view[start : start + HOLE_BLOCK]
        if block == ZERO_BLOCK[: len(block)]:
            target.seek(len(block), os.SEEK_CUR)
        else:
            target.write(block)


def _make_special(member, root):
    path = _join(root, member.name)
    if member.isdir():
        os.makedirs(path, exist_ok=True)
    elif member.issym():
        os.symlink(member.linkname, path)
    elif member.islnk():
        os.link(_join(root, member.linkname), path)
    elif member.isfifo():
        os.mkfifo(path)


def _apply_metadata(root, relpath, found, dirs):
    path = _join(root, relpath)
    if found["type"] == "hardlink":
        return  # shares the inode of its first name, which already has its metadata
    os.lchown(path, found["uid"], found["gid"])
    if found["type"] != "symlink":
        os.chmod(path, found["mode"])  # after chown: chown clears setuid/setgid bits
    for name, value in found["xattrs"].items():
        os.setxattr(path, name, bytes.fromhex(value), follow_symlinks=False)
    if found["type"] == "dir":
        dirs.append((relpath, found["mtime_ns"]))
    else:
        os.utime(path, ns=(found["mtime_ns"], found["mtime_ns"]), follow_symlinks=False)
