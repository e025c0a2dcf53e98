import datetime
import os
import shutil

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_archive as archive
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest import (
    backup_id,
    backup_time,
    compare_entries,
    differs,
    file_sha256,
    first_mismatch,
    scan,
    summary,
)


def make_tree(root):
    os.makedirs(os.path.join(root, "dir with space/ünïcødé"))
    with open(os.path.join(root, "a.txt"), "w") as handle:
        handle.write("hello\n" * 1000)
    with open(os.path.join(root, "dir with space/ünïcødé/b.bin"), "wb") as handle:
        handle.write(os.urandom(300000))
    with open(os.path.join(root, "sparse"), "wb") as handle:
        handle.seek(8 << 20)
        handle.write(b"end")
    os.symlink("a.txt", os.path.join(root, "link"))
    os.symlink("/nowhere", os.path.join(root, "dangling"))
    os.link(os.path.join(root, "a.txt"), os.path.join(root, "hard"))
    os.chmod(os.path.join(root, "a.txt"), 0o640)
    os.setxattr(os.path.join(root, "a.txt"), "user.note", b"kept")
    if os.geteuid() == 0:
        os.chown(os.path.join(root, "dir with space/ünïcødé/b.bin"), 1234, 5678)


def comparable(entries):
    return [{k: v for k, v in e.items() if k not in ("ino", "ctime_ns")} for e in entries]


def test_backup_id_sorts_by_time_and_parses_back():
    early = datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    late = early + datetime.timedelta(seconds=1)
    assert backup_id(early, "h1") < backup_id(late, "h1")
    assert backup_time(backup_id(early, "h1")) == early


def test_scan_reuses_hashes_of_unchanged_files(tmp_path, monkeypatch):
    make_tree(str(tmp_path))
    first, skipped = scan(str(tmp_path))
    assert skipped == []
    assert first[0]["path"] == "."
    types = {e["path"]: e["type"] for e in first}
    assert types["hard"] == "hardlink" and types["link"] == "symlink"
    calls = []
    monkeypatch.setattr(
        "ansible_collections.dockyard.fleet.plugins.module_utils._backup_manifest.file_sha256",
        calls.append,
    )
    again, dummy = scan(str(tmp_path), first)
    assert calls == []
    assert not differs(first, again)


def test_changes_are_reported_by_path(tmp_path):
    make_tree(str(tmp_path))
    first, dummy = scan(str(tmp_path))
    with open(os.path.join(tmp_path, "a.txt"), "a") as handle:
        handle.write("more")
    os.unlink(os.path.join(tmp_path, "dangling"))
    open(os.path.join(tmp_path, "new"), "w").close()
    second, dummy = scan(str(tmp_path), first, hash_mode="confirm")
    assert compare_entries(first, second) == {
        "added": ["new"],
        "removed": ["dangling"],
        "changed": [".", "a.txt", "hard"],  # the root's mtime moved; "hard" is a.txt's second name
    }


def test_confirm_mode_hashes_a_file_whose_only_change_is_its_inode(tmp_path):
    make_tree(str(tmp_path))
    first, dummy = scan(str(tmp_path))
    path = os.path.join(tmp_path, "a.txt")
    shutil.copy2(path, path + ".tmp")
    os.unlink(os.path.join(tmp_path, "hard"))  # a.txt loses its second name
    first = [e for e in first if e["path"] != "hard"]
    os.replace(path + ".tmp", path)
    os.utime(tmp_path, ns=(first[0]["mtime_ns"], first[0]["mtime_ns"]))  # the root's own mtime as before
    second, dummy = scan(str(tmp_path), first, hash_mode="confirm")
    by_path = {e["path"]: e for e in second}
    assert by_path["a.txt"]["sha256"] is not None
    assert not differs(first, second)


def test_first_mismatch_and_summary():
    entry = {"type": "file", "size": 3, "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 1, "sha256": "x"}
    assert first_mismatch(entry, dict(entry)) is None
    assert first_mismatch(entry, dict(entry, mode=0o600)) == "mode"
    assert summary([entry, {"type": "dir", "size": 0}]) == {"entries": 2, "files": 1, "bytes": 3}


@pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd binary is needed")
@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_archive_round_trip_is_byte_for_byte(tmp_path, compression):
    source, target = str(tmp_path / "src"), str(tmp_path / "dst")
    os.makedirs(source)
    os.makedirs(target)
    make_tree(source)
    out = str(tmp_path / "archive")
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(source, handle, archive.compress_argv(compression, 3))
    assert stats["bytes_out"] == os.path.getsize(out)
    assert stats["sha256"] == file_sha256(out)  # the one file hasher (manifest's), used for archives too
    manifest = {"entries": entries, "archive": {"sha256": stats["sha256"]}}
    assert archive.read_archive(out, archive.decompress_argv(compression), manifest)["entries"] == len(entries)
    archive.read_archive(out, archive.decompress_argv(compression), manifest, extract_root=target)
    restored, dummy = scan(target)
    assert comparable(restored) == comparable(entries)
    assert os.stat(os.path.join(target, "sparse")).st_blocks * 512 < 1 << 20  # the hole stayed a hole
    assert os.getxattr(os.path.join(target, "a.txt"), "user.note") == b"kept"


@pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd binary is needed")
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_corrupted_and_truncated_archives_name_a_path(tmp_path, compression):
    source = str(tmp_path / "src")
    os.makedirs(source)
    make_tree(source)
    out = str(tmp_path / "archive")
    with open(out, "wb") as handle:
        entries, stats = archive.write_archive(source, handle, archive.compress_argv(compression, 3))
    manifest = {"entries": entries, "archive": {"sha256": stats["sha256"]}}
    with open(out, "rb") as handle:
        good = handle.read()
    with open(out, "wb") as handle:
        handle.write(good[: len(good) // 2])
    with pytest.raises(archive.ArchiveError) as truncated:
        archive.read_archive(out, archive.decompress_argv(compression), manifest)
    assert truncated.value.path in {e["path"] for e in entries}
    if compression == "none":
        data = bytearray(good)
        offset = good.index(b"hello\nhello")
        data[offset] ^= 0xFF
        with open(out, "wb") as handle:
            handle.write(bytes(data))
        with pytest.raises(archive.ArchiveError) as corrupted:
            archive.read_archive(out, [], manifest)
        assert corrupted.value.path == "a.txt"
        assert "sha256" in corrupted.value.reason


@pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd binary is needed")
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_restore_without_the_archive_hash_still_refuses_bad_data(tmp_path, compression):
    """Extracting skips the whole-file hash: truncation and a changed byte must still fail, naming a path."""
    source = str(tmp_path / "src")
    os.makedirs(source)
    make_tree(source)
    out = str(tmp_path / "archive")
    with open(out, "wb") as handle:
        entries, dummy = archive.write_archive(source, handle, archive.compress_argv(compression, 3))
    manifest = {"entries": entries, "archive": {"sha256": "not checked when extracting"}}
    target = tmp_path / "ok"
    target.mkdir()
    assert archive.read_archive(out, archive.decompress_argv(compression), manifest, extract_root=str(target))
    with open(out, "rb") as handle:
        good = handle.read()
    with open(out, "wb") as handle:
        handle.write(good[: len(good) // 2])
    target = tmp_path / "truncated"
    target.mkdir()
    with pytest.raises(archive.ArchiveError) as truncated:
        archive.read_archive(out, archive.decompress_argv(compression), manifest, extract_root=str(target))
    assert truncated.value.path in {e["path"] for e in entries}
    if compression == "none":
        data = bytearray(good)
        data[good.index(b"hello\nhello")] ^= 0xFF
        with open(out, "wb") as handle:
            handle.write(bytes(data))
        target = tmp_path / "corrupted"
        target.mkdir()
        with pytest.raises(archive.ArchiveError) as corrupted:
            archive.read_archive(out, [], manifest, extract_root=str(target))
        assert corrupted.value.path == "a.txt"
        assert "sha256" in corrupted.value.reason
