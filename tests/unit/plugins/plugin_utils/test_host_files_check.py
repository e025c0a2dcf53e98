"""host_files' check from the controller: it may answer "all as wanted" only when the module would change nothing."""

import base64
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._host_files import sync
from ansible_collections.dockyard.fleet.plugins.plugin_utils._host_files_check import all_as_wanted, check_command

ME = pwd.getpwuid(os.getuid()).pw_name


def check(directories, files):
    command = check_command(directories, files)
    assert command is not None
    out = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False).stdout
    return all_as_wanted(directories, files, out)


def module_changes(directories, files):
    return sync(directories, files, check_mode=True)["changed_paths"]


@pytest.fixture
def written(tmp_path):
    """Items as a role gives them, written by the module once."""
    directories = [{"path": str(tmp_path / "etc dir"), "mode": "0750", "owner": ME}]
    files = [
        {"path": str(tmp_path / "etc dir" / "app.conf"), "mode": "0644", "content": "key = välue\n", "group": "0"},
        {"path": str(tmp_path / "etc dir" / "secret"), "mode": "0600", "secret_content": "s3cret"},
        {
            "path": str(tmp_path / "etc dir" / "code.pyz"),
            "mode": "0644",
            "content_base64": base64.b64encode(b"PK\x03\x04\xff\x00").decode(),
        },
        {"path": str(tmp_path / "etc dir" / "seed"), "mode": "0644", "content": "first\n", "force": False},
    ]
    sync(directories, files, check_mode=False)
    return directories, files


def test_everything_as_written_needs_no_module_run(written):
    assert module_changes(*written) == []
    assert check(*written)


@pytest.mark.parametrize(
    "drift",
    [
        lambda d, f: os.chmod(f[0]["path"], 0o600),
        lambda d, f: os.chmod(d[0]["path"], 0o755),
        lambda d, f: Path(f[0]["path"]).write_text("key = välue\n# hand edit\n"),
        lambda d, f: Path(f[1]["path"]).write_text("other"),
        lambda d, f: Path(f[2]["path"]).write_bytes(b"PK"),
        lambda d, f: os.unlink(f[0]["path"]),
        lambda d, f: (os.unlink(f[0]["path"]), os.symlink("/etc/hostname", f[0]["path"])),
    ],
    ids=["file mode", "directory mode", "content", "secret content", "binary content", "missing", "symlink"],
)
def test_any_drift_leaves_it_to_the_module(written, drift):
    drift(*written)
    assert not check(*written)


def test_a_file_kept_by_the_host_is_not_compared(written):
    directories, files = written
    Path(files[3]["path"]).write_text("the host's own\n")
    assert module_changes(directories, files) == []
    assert check(directories, files)


def test_another_owner_or_group_is_drift(written):
    directories, files = written
    assert not check([dict(directories[0], owner="nobody")], [])
    assert not check([], [dict(files[0], group="65534")])
    assert check([dict(directories[0], owner=str(os.getuid()))], [])


def test_bad_input_is_left_to_the_module(written):
    directories, files = written
    assert not check(directories, [dict(files[0], mode="rw-r--r--")])
    assert not check(directories, [dict(files[0], secret_content="x")])  # two kinds of content


def test_paths_it_cannot_check_this_way():
    assert check_command([], []) is None
    assert check_command([{"path": "relative", "mode": "0755"}], []) is None
    assert check_command([], [{"path": "/a\\b", "mode": "0644", "content": ""}]) is None
    assert check_command([], [{"path": "~/.docker", "mode": "0644", "content": ""}]) is None


def test_unparsable_output_is_not_as_wanted(written):
    assert not all_as_wanted(*written, "")
    assert not all_as_wanted(*written, "stat: illegal option -- c\n")
