import fcntl
import os

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_store as store
from ansible_collections.dockyard.fleet.plugins.module_utils import _direct_io as direct_io

BACKUP_ID = "20261202T010203.000004Z-1a2b3c"


def write_in_pieces(writer, data, sizes):
    pos, index = 0, 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        writer.write(data[pos : pos + size])
        pos, index = pos + size, index + 1


@pytest.mark.parametrize("length", [0, 1, direct_io.ALIGN, direct_io.BLOCK, 3 * direct_io.BLOCK + 4097])
def test_odd_pieces_arrive_whole_and_in_order(tmp_path, length):
    data = os.urandom(length)
    path = tmp_path / "archive"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    direct_io.enable_direct(fd)  # where the file system has it (ext4 does): the aligned blocks go direct
    writer = direct_io.DirectWriter(fd)
    try:
        write_in_pieces(writer, data, [1, 4095, 131072, direct_io.BLOCK + 3])
        writer.finish()
    finally:
        writer.close()
        os.close(fd)
    assert path.read_bytes() == data


def test_a_write_error_of_the_thread_is_raised_and_close_still_works(tmp_path):
    fd = os.open(tmp_path / "archive", os.O_CREAT | os.O_WRONLY, 0o600)
    writer = direct_io.DirectWriter(fd)
    os.close(fd)  # the writer thread's os.write now fails with EBADF
    with pytest.raises(OSError):
        for dummy in range(direct_io.BLOCKS + 2):
            writer.write(b"x" * direct_io.BLOCK)
        writer.finish()
    writer.close()
    writer.close()


@pytest.mark.parametrize("direct", [True, False])
def test_the_directory_store_commits_the_same_bytes_either_way(tmp_path, direct):
    data = os.urandom(2 * direct_io.BLOCK + 12345)
    target = store.DirectoryStore(str(tmp_path), "vol", direct=direct)
    target.ensure()
    with target.writer(BACKUP_ID, BACKUP_ID + ".tar") as out:
        write_in_pieces(out, data, [65536, 7])
    assert (tmp_path / "vol" / (BACKUP_ID + ".tar")).read_bytes() == data
    assert sorted(os.listdir(tmp_path / "vol")) == [BACKUP_ID + ".tar"]


def test_a_failed_write_leaves_no_partial(tmp_path):
    target = store.DirectoryStore(str(tmp_path), "vol")
    target.ensure()
    with pytest.raises(RuntimeError), target.writer(BACKUP_ID, BACKUP_ID + ".tar") as out:
        out.write(b"half an archive" * 100000)
        raise RuntimeError("the tar side broke")
    assert os.listdir(tmp_path / "vol") == []


def test_enable_direct_on_this_disk_says_whether_it_took(tmp_path):
    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        took = direct_io.enable_direct(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        assert bool(flags & direct_io.O_DIRECT) == took
    finally:
        os.close(fd)
