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
import errno
import hashlib
import os
import subprocess
import tarfile
import threading

try:
    from fcntl import F_SETPIPE_SZ, fcntl
except ImportError:  # not Linux, or Python < 3.10: default pipe sizes
    F_SETPIPE_SZ = fcntl = None

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import (
    CONTENT_FIELDS,
    iter_entries,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._direct_io import WriteBehind, write_all

# Data moves in chunks of this size, through buffers reused from chunk to chunk. Measured on the 2 GB
# bench volume (bench/backup.py), side by side: with 1 MiB chunks a backup took 1.35x and a restore 2x
# the time of 128 KiB ones, nearly all of it kernel time copying. A 128 KiB chunk is still in the CPU's
# cache when it is hashed and written on; a 1 MiB one is not. And a new bytes object per chunk of
# 256 KiB or more is a new mmap: page faults and zeroing on every read (hence the reused buffers).
CHUNK = 128 << 10
HOLE_BLOCK = 1 << 16
ZERO_BLOCK = bytes(HOLE_BLOCK)
XATTR_PREFIX = "SCHILY.xattr."
BLOCK = 512
ZERO_HEADER = bytes(BLOCK)
PIPE_SIZE = 1 << 20  # fewer wake-ups between the reader, the decompressor and us (Linux default: 64 KiB)
# Files at least this big are written by a second thread while the next chunk is read and hashed.
PARALLEL_WRITE_MIN = 4 << 20
# Files at least this big are spliced into the compressor's pipe (_TarWriter); smaller ones are written
# through the pipe's buffer with their headers, in few writes (a spliced page takes a pipe slot of its own).
SPLICE_MIN = 1 << 20
WRITE_BUFFERS = 4


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

    def readinto(self, buffer):
        if hasattr(self.handle, "readinto"):
            count = self.handle.readinto(buffer)
        else:  # a streaming S3 body
            data = self.handle.read(len(buffer))
            count = len(data)
            buffer[:count] = data
        self.digest.update(memoryview(buffer)[:count])
        return count


def _read_chunk(handle, view):
    """Fill view from the file or stream (one readinto, more only when short); bytes read (short at its end)."""
    got = 0
    while got < len(view):
        count = handle.readinto(view[got:])
        if not count:
            break
        got += count
    return got


class _TarWriter:
    """The tar stream tarfile's "w" mode writes (PAX headers from TarInfo.tobuf), written by hand.

    By hand so that a big file's data can go into the compressor's pipe by splice(2) after it was read
    and hashed: the kernel passes the page-cache pages on, and the copy of every byte through our
    memory into the pipe is saved. Measured on a fleet host, hashing 2 GB and handing it to a pipe:
    1.45 CPU-s with write(2), 1.20 with splice(2); on two cores that CPU is what the compressor lacks.

    splice hands on pages, not a copy: a write into the file after our read and before the compressor
    reads the pipe would reach the archive but not the sha256. So it is used only when the caller says
    the volume is quiescent (no running container mounts it, or all of them are stopped or paused).
    """

    def __init__(self, out, splice_fd=None):
        self.out = out  # buffered: headers and small files go out in few writes
        self.splice_fd = splice_fd  # the pipe's fd when big files may be spliced into it, else None
        self.offset = 0

    def _write(self, data):
        self.out.write(data)
        self.offset += len(data)

    def add(self, info, handle=None, buffer=None):
        """Write one member; a regular file's data comes from handle. Its sha256 (None for others)."""
        self._write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        if not info.isreg():
            return None
        digest = hashlib.sha256()
        splicing = self.splice_fd is not None and info.size >= SPLICE_MIN
        if splicing:
            self.out.flush()  # the header must be in the pipe before the data
        position = 0
        while position < info.size:
            view = buffer[: min(len(buffer), info.size - position)]
            count = _read_chunk(handle, view)
            if count < len(view):  # what tarfile says of a file that shrank while it was archived
                raise OSError("unexpected end of data")
            digest.update(view)
            if splicing:
                splicing = self._splice(handle, position, count)
            if not splicing:
                self.out.write(view)
            position += count
        self.offset += info.size
        self._write(ZERO_HEADER[: _padded(info.size) - info.size])
        return digest.hexdigest()

    def _splice(self, handle, position, count):
        """Splice the chunk just read into the pipe; False (nothing sent) when the file system cannot."""
        sent = 0
        while sent < count:
            try:
                moved = os.splice(handle.fileno(), self.splice_fd, count - sent, offset_src=position + sent)
            except OSError as exc:
                if sent or exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                self.splice_fd = None  # no splice on this file system: write(2) from now on
                return False
            if not moved:
                raise OSError("unexpected end of data")  # the file shrank between the read and the splice
            sent += moved
        return True

    def close(self):
        """The end of the archive: two zero blocks, then zeros to a whole record (as tarfile does)."""
        self._write(ZERO_HEADER * 2)
        remainder = self.offset % tarfile.RECORDSIZE
        if remainder:
            self._write(bytes(tarfile.RECORDSIZE - remainder))


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


def _start_pipeline(argvs, stdin, stdout):
    """Chain the commands; the first reads stdin, the last writes stdout. Returns the processes."""
    procs = []
    for index, argv in enumerate(argvs):
        source = stdin if index == 0 else procs[-1].stdout
        sink = stdout if index == len(argvs) - 1 else subprocess.PIPE
        procs.append(subprocess.Popen(argv, stdin=source, stdout=sink, stderr=subprocess.PIPE))
        for pipe in (procs[-1].stdin, procs[-1].stdout):
            _widen(pipe)
        if index > 0:
            procs[-2].stdout.close()  # the next process owns it now: a dead reader gives the writer SIGPIPE
    return procs


def _widen(pipe):
    if pipe is not None and fcntl is not None:
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size for non-root: keep the default
            fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)


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


def write_archive(root, out_handle, filters, previous=None, on_entry=None, quiescent=False):
    """Stream the tree at root as tar through `filters` (argv list) into out_handle (a binary file).

    quiescent=True: nothing writes into the tree while it is archived (see _TarWriter); big files
    are then spliced into the first filter's pipe.

    Returns (entries with sha256, {"bytes_in", "bytes_out", "sha256", "skipped"}). Raises OSError or
    ArchiveError; the caller owns out_handle (flushes and commits it, or removes it on failure).
    out_handle.write() gets views of reused buffers: it must copy what it keeps.
    """
    sink = _HashingWriter(out_handle)
    procs, pump, pump_error = [], None, []
    if filters:
        procs = _start_pipeline(filters, subprocess.PIPE, subprocess.PIPE)
        tar_out = procs[0].stdin

        def drain():
            buffer = memoryview(bytearray(CHUNK))
            try:
                while True:
                    count = procs[-1].stdout.readinto(buffer)
                    if not count:
                        return
                    sink.write(buffer[:count])
            except OSError as exc:  # destination full or gone: stop reading, the writer side fails too
                pump_error.append(exc)
                procs[-1].stdout.close()

        pump = threading.Thread(target=drain, daemon=True)
        pump.start()
    else:
        tar_out = sink
    entries, skipped, bytes_in = [], [], 0
    buffer = memoryview(bytearray(CHUNK))
    splice_fd = tar_out.fileno() if procs and quiescent and hasattr(os, "splice") else None
    try:
        tar = _TarWriter(tar_out, splice_fd)
        for entry in iter_entries(root, previous, "none", skipped):
            info = _tarinfo(entry)
            if entry["type"] == "file":
                with open(os.path.join(root, entry["path"]), "rb", buffering=0) as handle:
                    entry["sha256"] = tar.add(info, handle, buffer)
                bytes_in += entry["size"]
            else:
                tar.add(info)
            entries.append(entry)
            if on_entry:
                on_entry(entry)
        tar.close()
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
    stats = {"bytes_in": bytes_in, "bytes_out": sink.count, "sha256": sink.digest.hexdigest(), "skipped": skipped}
    return entries, stats


class _ArchiveReader:
    """Iterate the members of an archive file through the decode filters, hashing the file as it is fed.

    hash_archive=False (a restore: every member is checked against the manifest anyway) skips the
    whole-file hash, and a local archive is then read by the first decoder itself, not fed by a thread.
    """

    def __init__(self, source, filters, hash_archive=True):
        self.source = source  # a path, or a function returning a readable binary file
        self.filters = filters
        self.hash_archive = hash_archive
        self.digest = hashlib.sha256()
        self.procs = []
        self.feed_error = []
        self.feeder = None

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
        self.handle = self.source() if callable(self.source) else open(self.source, "rb")
        if not self.filters:
            self.stream = _HashingReader(self.handle)
            self.digest = self.stream.digest
            if not self.hash_archive and _has_fileno(self.handle):
                self.stream = self.handle  # a local file reads into tar's buffer itself
            return self.stream
        if not self.hash_archive and _has_fileno(self.handle):
            self.procs = _start_pipeline(self.filters, self.handle, subprocess.PIPE)
            return self.procs[-1].stdout
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
        if self.feeder is not None:
            self.feeder.join()
        return _finish_pipeline(self.procs)

    def __exit__(self, *exc_info):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.handle.close()


def _has_fileno(handle):
    """True for a file the OS can hand to a child process (a local archive, not an S3 body)."""
    try:
        handle.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


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


class _TarStream:
    """The members of a PAX tar stream (what write_archive writes), parsed here rather than by tarfile.

    tarfile's stream mode copies the data through a bytes buffer several times; here file data is read
    straight into one reusable buffer (readinto) and handed on as memoryviews, so hashing and writing a
    file costs no copy in Python. Headers are parsed by tarfile.TarInfo.frombuf; PAX records (path,
    linkpath, size, uid, gid, mtime, SCHILY.xattr.*) are applied the way tarfile applies them.
    """

    def __init__(self, stream):
        self.stream = stream
        self.buffer = memoryview(bytearray(CHUNK))
        self.left = 0  # data + padding of the current member still in the stream

    def _fill(self, view):
        if _read_chunk(self.stream, view) < len(view):
            raise EOFError("unexpected end of data")

    def _read(self, size):
        data = bytearray(size)
        self._fill(memoryview(data))
        return bytes(data)

    def _skip(self, size):
        while size:
            step = min(size, len(self.buffer))
            self._fill(self.buffer[:step])
            size -= step

    def __iter__(self):
        pax = {}
        while True:
            self._skip(self.left)
            self.left = 0
            header = self._read(BLOCK)
            if header == ZERO_HEADER:
                return  # end of archive (what follows is read, and hashed, by the caller's finish())
            try:
                member = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise tarfile.ReadError("bad tar header: %s" % exc) from exc
            if member.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
                records = parse_pax(self._read(_padded(member.size))[: member.size])
                if member.type == tarfile.XHDTYPE:
                    pax = records
                continue
            if pax:
                _apply_pax(member, pax)
                pax = {}
            if member.isdir():
                member.name = member.name.rstrip("/") or "."
            # data follows regular files and unknown types (as tarfile reads it), not dirs/links/fifos
            # (after the PAX records: a size beyond the header field's 8 GiB is only in them)
            self.left = _padded(member.size) if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES else 0
            yield member

    def data(self, size):
        """The member's data as memoryviews of one buffer (each valid until the next is asked for)."""
        remaining = size
        while remaining:
            view = self.buffer[: min(remaining, len(self.buffer))]
            self.fill(view)
            remaining -= len(view)
            yield view

    def fill(self, view):
        """Read the next len(view) bytes of the current member's data into view."""
        self._fill(view)
        self.left -= len(view)


def _padded(size):
    return -(-size // BLOCK) * BLOCK


def parse_pax(data):
    """{keyword: value} of a PAX extended header's records ("<length> <keyword>=<value>\\n")."""
    records, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        if length <= 0 or pos + length > len(data) or data[pos + length - 1 : pos + length] != b"\n":
            raise tarfile.ReadError("bad PAX record at byte %d" % pos)
        keyword, dummy, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[keyword.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _apply_pax(member, pax):
    member.pax_headers = dict(pax)
    if "path" in pax:
        member.name = pax["path"]
    if "linkpath" in pax:
        member.linkname = pax["linkpath"]
    for field in ("size", "uid", "gid"):
        if field in pax:
            setattr(member, field, int(pax[field]))


def read_archive(source, filters, manifest, extract_root=None):
    """Read the archive (a path, or a function opening it), checking every member against manifest["entries"].

    Extracts under extract_root when given one.

    Raises ArchiveError naming the first bad path (a member that differs, a member not in the manifest,
    the path being read when the stream broke, or the first manifest path the archive never reached).
    Returns {"entries", "bytes"}.
    """
    expected = {e["path"]: e for e in manifest["entries"]}
    order = [e["path"] for e in manifest["entries"]]
    seen, total, current = set(), 0, None
    dirs = []
    # Extracting checks every member's content and metadata against the manifest and that none is
    # missing or extra: the whole-file hash would check nothing more, and costs a core a second per GB.
    reader = _ArchiveReader(source, filters, hash_archive=extract_root is None)
    with reader as stream:
        tar = _TarStream(stream)
        try:
            for member in tar:
                current = member.name
                if current not in expected:
                    raise ArchiveError(current, "in the archive but not in the manifest")
                if current in seen:
                    raise ArchiveError(current, "twice in the archive")
                sha256 = None
                if member.isreg():
                    sha256 = _copy_member(tar, member, extract_root)
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
    if reader.hash_archive and digest != manifest["archive"]["sha256"]:
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


def _copy_member(tar, member, extract_root):
    """Hash a file member, writing it under extract_root when given (all-zero blocks become holes)."""
    digest = hashlib.sha256()
    if extract_root is None:
        for view in tar.data(member.size):
            digest.update(view)
        return digest.hexdigest()
    fd = os.open(_join(extract_root, member.name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        if member.size >= PARALLEL_WRITE_MIN:
            _copy_overlapped(tar, member.size, fd, digest)
        else:
            for view in tar.data(member.size):
                digest.update(view)
                _write_sparse(fd, view)
        os.ftruncate(fd, member.size)  # a trailing hole still counts in the size
    finally:
        os.close(fd)
    return digest.hexdigest()


def _copy_overlapped(tar, size, fd, digest):
    """Read and hash chunk n+1 while a second thread writes chunk n (WriteBehind, WRITE_BUFFERS buffers).

    The file is complete when this returns (the writer is joined), so its metadata can be set after.
    """
    ring = WriteBehind([bytearray(CHUNK) for dummy in range(WRITE_BUFFERS)], lambda view: _write_sparse(fd, view))
    try:
        remaining = size
        while remaining and not ring.failed:
            buffer = ring.take()
            view = memoryview(buffer)[: min(remaining, len(buffer))]
            tar.fill(view)
            digest.update(view)
            ring.put(buffer, len(view))
            remaining -= len(view)
    finally:
        ring.stop()
    ring.finish()


def _write_sparse(fd, view):
    """Write a chunk at the file's position: runs of data in one write, all-zero 64 KiB blocks as holes."""
    start = pos = 0
    size = len(view)
    while pos < size:
        end = min(pos + HOLE_BLOCK, size)
        # bytes == bytes is one memcmp; memoryview == bytes compares byte by byte (slow on zeros)
        if view[pos] == 0 and view[pos:end].tobytes() == ZERO_BLOCK[: end - pos]:
            if start < pos:
                write_all(fd, view[start:pos])
            os.lseek(fd, end - pos, os.SEEK_CUR)
            start = end
        pos = end
    if start < size:
        write_all(fd, view[start:size])


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
