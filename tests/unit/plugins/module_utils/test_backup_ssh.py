import os
import stat

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_archive as archive
from ansible_collections.dockyard.fleet.plugins.module_utils import _backup_ssh as ssh_store

BACKUP_ID = "20261202T010203.000004Z-1a2b3c"


@pytest.fixture
def local_ssh(tmp_path, monkeypatch):
    """An `ssh` on PATH that runs its command here with sh: the store's real shell commands, no network."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    return tmp_path / "remote"


def test_ssh_argv_runs_one_command_in_batch_mode():
    spec = {"host": "backup1", "user": "bk", "port": 2222, "identity_file": "/k", "ssh_args": ["-o", "X=y"]}
    argv = ssh_store.ssh_argv(spec, "ls /srv")
    assert argv[0] == "ssh"
    assert "BatchMode=yes" in argv
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/k"
    assert argv[-3:] == ["--", "bk@backup1", "ls /srv"]
    assert ssh_store.ssh_argv({"host": "b", "port": 22}, "true")[-2] == "b"


def test_ssh_argv_shares_a_master_connection_and_lets_ssh_args_override():
    spec = {"host": "backup1", "port": 22, "ssh_args": ["-o", "ControlMaster=no"]}
    argv = ssh_store.ssh_argv(spec, "true", control_path="/tmp/d/master")
    assert "ControlPath=/tmp/d/master" in argv
    assert "ControlPersist=%d" % ssh_store.CONTROL_PERSIST in argv
    # ssh keeps an option's first value: the operator's ControlMaster=no wins over ours
    assert argv.index("ControlMaster=no") < argv.index("ControlMaster=auto")
    assert "ControlMaster=auto" not in ssh_store.ssh_argv(spec, "true")


def test_close_removes_the_master_directory_and_may_run_twice(local_ssh):
    store = ssh_store.SSHStore({"host": "fake", "path": str(local_ssh), "port": 22}, "vol")
    store.ensure()
    control_dir = store._control_dir
    assert control_dir and os.path.isdir(control_dir)
    assert stat.S_IMODE(os.stat(control_dir).st_mode) == 0o700  # the socket is a login to the backup host
    store.close()
    assert not os.path.exists(control_dir)
    store.close()


def test_parse_listing_keeps_names_with_spaces():
    assert ssh_store.parse_listing("12 a b.json\n0 .x.partial\nnot a line\n") == {"a b.json": 12, ".x.partial": 0}


def test_a_backup_round_trips_through_the_store(local_ssh, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "data").write_bytes(os.urandom(3 * archive.CHUNK))
    store = ssh_store.SSHStore({"host": "fake", "path": str(local_ssh), "port": 22}, "vol")
    assert not store.exists()
    store.ensure()
    assert store.exists()
    with store.writer(BACKUP_ID, BACKUP_ID + ".tar.gz") as out:
        entries, stats = archive.write_archive(str(source), out, [["gzip", "-1", "-c"]])
    manifest = {
        "id": BACKUP_ID,
        "entries": entries,
        "archive": {"name": BACKUP_ID + ".tar.gz", "size": stats["bytes_out"], "sha256": stats["sha256"]},
    }
    store.write_manifest(manifest)
    archive_file = local_ssh / "vol" / (BACKUP_ID + ".tar.gz")
    assert stat.S_IMODE(archive_file.stat().st_mode) == 0o600
    assert store.ids() == [BACKUP_ID]
    assert store.latest_good() == (BACKUP_ID, manifest)
    target = tmp_path / "dst"
    target.mkdir()
    archive.read_archive(
        lambda: store.open_archive(manifest), [["gzip", "-d", "-c"]], manifest, extract_root=str(target)
    )
    assert (target / "data").read_bytes() == (source / "data").read_bytes()
    store.record_verification(BACKUP_ID, False, "full", "data: sha256 differs")
    assert not store.is_good(BACKUP_ID)
    store.remove(BACKUP_ID)
    assert sorted(os.listdir(local_ssh / "vol")) == []


def test_a_failed_backup_leaves_no_partial(local_ssh):
    store = ssh_store.SSHStore({"host": "fake", "path": str(local_ssh), "port": 22}, "vol")
    store.ensure()
    with pytest.raises(RuntimeError), store.writer(BACKUP_ID, BACKUP_ID + ".tar") as out:
        out.write(b"half an archive")
        raise RuntimeError("the tar side broke")
    assert os.listdir(local_ssh / "vol") == []
    assert store.ids() == []


def test_partials_of_this_host_only_are_leftovers(local_ssh):
    store = ssh_store.SSHStore({"host": "fake", "path": str(local_ssh), "port": 22}, "vol")
    store.ensure()
    for tag in ("1a2b3c", "ffffff"):
        (local_ssh / "vol" / (".20261202T010203.000004Z-%s.partial" % tag)).write_bytes(b"x")
    leftovers = store.leftover_partials("1a2b3c")
    assert [os.path.basename(p) for p in leftovers] == [".20261202T010203.000004Z-1a2b3c.partial"]
    store.remove_partials(leftovers)
    assert os.listdir(local_ssh / "vol") == [".20261202T010203.000004Z-ffffff.partial"]


def test_a_command_that_fails_says_what_it_was_and_what_ssh_said(local_ssh):
    store = ssh_store.SSHStore({"host": "fake", "path": "/proc/none", "port": 22}, "vol")
    with pytest.raises(ssh_store.SSHError, match="create the directory: ssh exited 1: mkdir"):
        store.ensure()
