import errno
import hashlib
import io
import os
import tarfile

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_archive as archive
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import scan


def make_odd_tree(root):
    """Names tarfile must put in PAX records: long paths, non-UTF-8 bytes, big owners, xattrs, a fifo."""
    long_dir = os.path.join(root, "d" * 120)
    os.makedirs(long_dir)
    with open(os.path.join(long_dir, "f" * 150), "wb") as handle:
        handle.write(os.urandom(3 << 20) + bytes(200000) + b"tail")  # several chunks, a hole inside
    with open(os.path.join(root.encode(), b"latin-\xe9"), "wb") as handle:
        handle.write(b"bytes name\n")
    os.symlink("d" * 120 + "/" + "f" * 150, os.path.join(root, "l" * 110))
    os.link(os.path.join(long_dir, "f" * 150), os.path.join(root, "second name"))
    with open(os.path.join(root, "owned"), "w") as handle:
        handle.write("x")
    os.chown(os.path.join(root, "owned"), 3000000, 3000001) if os.geteuid() == 0 else None
    os.setxattr(os.path.join(root, "owned"), "user.blob", b"\x00\xff\x10=\n")
    os.mkfifo(os.path.join(root, "pipe"))
    open(os.path.join(root, "empty"), "w").close()


def comparable(entries):
    return [{k: v for k, v in e.items() if k not in ("ino", "ctime_ns")} for e in entries]


def test_stream_reader_round_trips_what_tarfile_needs_pax_for(tmp_path):
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    target.mkdir()
    make_odd_tree(str(source))
    out = tmp_path / "archive.tar"
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(str(source), handle, [])
    manifest = {"entries": entries, "archive": {"sha256": stats["sha256"]}}
    result = archive.read_archive(str(out), [], manifest, extract_root=str(target))
    assert result["entries"] == len(entries)
    restored, dummy = scan(str(target))
    assert comparable(restored) == comparable(entries)
    # and tarfile reads the same members (names, sizes) from the same archive
    with tarfile.open(out) as tar:
        names = [m.name.rstrip("/") for m in tar.getmembers()]
    assert names == [e["path"] for e in entries]


def test_stream_reader_keeps_holes(tmp_path):
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    target.mkdir()
    with open(source / "sparse", "wb") as handle:
        handle.write(b"start")
        handle.seek(32 << 20)
        handle.write(b"end")
    out = tmp_path / "archive.tar"
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(str(source), handle, [])
    manifest = {"entries": entries, "archive": {"sha256": stats["sha256"]}}
    archive.read_archive(str(out), [], manifest, extract_root=str(target))
    assert (target / "sparse").read_bytes() == (source / "sparse").read_bytes()
    assert os.stat(target / "sparse").st_blocks * 512 < 1 << 20


@pytest.mark.parametrize(
    ("data", "records"),
    [
        (b"", {}),
        (b"20 path=a/b/c/d/e/f\n", {"path": "a/b/c/d/e/f"}),
        (b"30 mtime=1764300000.123456789\n11 uid=999\n", {"mtime": "1764300000.123456789", "uid": "999"}),
        (b"27 SCHILY.xattr.user.x=\x00=\n\n", {"SCHILY.xattr.user.x": "\x00=\n"}),
    ],
)
def test_parse_pax(data, records):
    assert archive.parse_pax(data) == records


@pytest.mark.parametrize("data", [b"x path=a\n", b"99 path=a\n", b"9 path=ab", b"0 =\n"])
def test_parse_pax_refuses_bad_records(data):
    with pytest.raises(tarfile.ReadError):
        archive.parse_pax(data)


def test_truncated_header_is_an_eof(tmp_path):
    stream = archive._TarStream(io.BytesIO(bytes(100)))
    with pytest.raises(EOFError):
        list(stream)


@pytest.mark.parametrize(
    ("chunk", "hole_blocks"),
    [
        (b"a" * 70000, 0),
        (bytes(1 << 16) + b"b" * 10 + bytes(1 << 17), 3),
        (b"\x00" * 100 + b"c", 0),
    ],
)
def test_write_sparse(tmp_path, chunk, hole_blocks):
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    archive._write_sparse(fd, memoryview(chunk))
    os.ftruncate(fd, len(chunk))
    os.close(fd)
    assert path.read_bytes() == chunk
    written_blocks = -(-len(chunk) // (1 << 16)) - hole_blocks
    assert os.stat(path).st_blocks * 512 <= written_blocks * (1 << 16) + 8192


def test_size_from_pax_record_wins_over_the_header_field():
    """Files over 8 GiB have their size only in a PAX record (the ustar field says 0)."""
    info = tarfile.TarInfo("big")
    info.size = 5
    info.pax_headers = {"size": "5"}
    header = bytearray(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
    ustar = len(header) - 512
    header[ustar + 124 : ustar + 136] = b"00000000000\0"
    header[ustar + 148 : ustar + 156] = b" " * 8
    header[ustar + 148 : ustar + 156] = b"%06o\0 " % sum(header[ustar:])
    stream = io.BytesIO(bytes(header) + b"hello" + bytes(507) + bytes(1024))
    tar = archive._TarStream(stream)
    members = []
    for member in tar:
        members.append((member.name, member.size, b"".join(bytes(v) for v in tar.data(member.size))))
    assert members == [("big", 5, b"hello")]


def test_an_archive_being_written_is_handed_to_the_disk_in_steps(tmp_path, monkeypatch):
    """WritebackFile: every byte reaches the file, and each finished step is advised out (its writeback started)."""
    from ansible_collections.dockyard.fleet.plugins.module_utils._backup_store import WritebackFile

    advised = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, length, advice: advised.append((offset, length)))
    with open(tmp_path / "a.tar.zst", "wb") as handle:
        out = WritebackFile(handle, step=100)
        for dummy in range(7):
            out.write(b"x" * 40)
    assert (tmp_path / "a.tar.zst").read_bytes() == b"x" * 280
    assert advised == [(0, 120), (120, 120)]  # the last 40 bytes wait for the final fsync


def test_reused_copy_buffers_keep_every_file_intact(tmp_path):
    """Files of several chunks (and a chunk's remainder) through a compressor: one buffer serves them all."""
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    target.mkdir()
    sizes = {"a": 3 * archive.CHUNK + 17, "b": archive.CHUNK, "c": 5, "d": 2 * archive.CHUNK - 1}
    for name, size in sizes.items():
        (source / name).write_bytes(os.urandom(size))
    out = tmp_path / "archive.tar.gz"
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(str(source), handle, [["gzip", "-1", "-c"]])
    assert stats["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    by_path = {e["path"]: e for e in entries}
    for name in sizes:
        assert by_path[name]["sha256"] == hashlib.sha256((source / name).read_bytes()).hexdigest()
    manifest = {"entries": entries, "archive": {"sha256": stats["sha256"]}}
    archive.read_archive(str(out), [["gzip", "-d", "-c"]], manifest, extract_root=str(target))
    for name in sizes:
        assert (target / name).read_bytes() == (source / name).read_bytes()


def tarfile_stream(root, entries):
    """The archive tarfile's own "w" mode writes for these entries: what our writer must match."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = archive._tarinfo(entry)
            if entry["type"] == "file":
                with open(os.path.join(root, entry["path"]), "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("quiescent", [False, True])
def test_the_tar_stream_is_the_one_tarfile_writes(tmp_path, quiescent):
    """Byte for byte, spliced or not: PAX records, padding, the end blocks and the record padding."""
    source = tmp_path / "src"
    source.mkdir()
    make_odd_tree(str(source))
    (source / "big").write_bytes(os.urandom(archive.SPLICE_MIN * 2 + 1234))  # spliced when quiescent
    out = tmp_path / "archive.tar"
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(str(source), handle, [["cat"]], quiescent=quiescent)
    assert out.read_bytes() == tarfile_stream(str(source), entries)
    assert stats["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    by_path = {e["path"]: e for e in entries}
    assert by_path["big"]["sha256"] == hashlib.sha256((source / "big").read_bytes()).hexdigest()


def test_big_files_of_a_quiescent_volume_are_spliced_and_others_written(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    (source / "big").write_bytes(os.urandom(archive.SPLICE_MIN + archive.CHUNK // 2))
    (source / "small").write_bytes(b"s" * (archive.SPLICE_MIN - 1))
    spliced = []
    real_splice = os.splice

    def counting_splice(src, dst, count, offset_src=None, **kwargs):
        moved = real_splice(src, dst, count, offset_src=offset_src, **kwargs)
        spliced.append(moved)
        return moved

    monkeypatch.setattr(archive.os, "splice", counting_splice)
    for quiescent in (False, True):
        spliced.clear()
        with open(tmp_path / ("a%d.tar.gz" % int(quiescent)), "wb") as handle:
            archive.write_archive(str(source), handle, [["gzip", "-1", "-c"]], quiescent=quiescent)
        # a live volume is never spliced (the pipe would get pages written after they were hashed)
        assert sum(spliced) == (archive.SPLICE_MIN + archive.CHUNK // 2 if quiescent else 0)


def test_a_file_system_without_splice_falls_back_to_writes(tmp_path, monkeypatch):
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    target.mkdir()
    (source / "big").write_bytes(os.urandom(archive.SPLICE_MIN * 2))

    def refused(*args, **kwargs):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(archive.os, "splice", refused)
    out = tmp_path / "archive.tar.gz"
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(str(source), handle, [["gzip", "-1", "-c"]], quiescent=True)
    manifest = {"entries": entries, "archive": {"sha256": stats["sha256"]}}
    archive.read_archive(str(out), [["gzip", "-d", "-c"]], manifest, extract_root=str(target))
    assert (target / "big").read_bytes() == (source / "big").read_bytes()


@pytest.mark.parametrize("quiescent", [False, True])
def test_a_file_that_shrinks_while_it_is_archived_fails_the_backup(tmp_path, monkeypatch, quiescent):
    source = tmp_path / "src"
    source.mkdir()
    (source / "big").write_bytes(os.urandom(archive.SPLICE_MIN * 2))
    real_tarinfo = archive._tarinfo

    def shrink_after_stat(entry):
        if entry["path"] == "big":
            os.truncate(source / "big", archive.SPLICE_MIN)
        return real_tarinfo(entry)

    monkeypatch.setattr(archive, "_tarinfo", shrink_after_stat)
    with open(tmp_path / "a.tar.gz", "wb") as handle, pytest.raises(OSError, match="unexpected end of data"):
        archive.write_archive(str(source), handle, [["gzip", "-1", "-c"]], quiescent=quiescent)
