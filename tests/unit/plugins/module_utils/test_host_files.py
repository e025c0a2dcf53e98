import base64
import os
import stat

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _host_files as host_files


def file_item(path, content="x\n", mode="0644", **extra):
    return {"path": str(path), "content": content, "secret_content": None, "mode": mode, "force": True, **extra}


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_makes_everything_and_a_second_changes_nothing(tmp_path):
    directories = [{"path": str(tmp_path / "etc" / "auth"), "mode": "0700", "tags": ["auth"]}]
    files = [
        file_item(
            tmp_path / "etc" / "auth" / "key", secret_content="s3cret\n", content=None, mode="0600", tags=["auth"]
        ),
        file_item(tmp_path / "etc" / "config.yml", "a: 1\n", tags=["registry"]),
    ]
    first = host_files.sync(directories, [dict(f) for f in files], check_mode=False)
    assert first["changed_paths"] == [directories[0]["path"], files[0]["path"], files[1]["path"]]
    assert first["changed_tags"] == ["auth", "registry"]
    assert (tmp_path / "etc" / "auth" / "key").read_text() == "s3cret\n"
    assert mode_of(tmp_path / "etc" / "auth") == 0o700
    assert mode_of(tmp_path / "etc" / "auth" / "key") == 0o600
    second = host_files.sync(directories, [dict(f) for f in files], check_mode=False)
    assert second["changed_paths"] == [] and second["changed_tags"] == [] and second["diff"] == []


def test_the_diff_never_shows_a_secret_and_shows_other_text(tmp_path):
    (tmp_path / "key").write_text("old secret\n")
    (tmp_path / "conf").write_text("old\n")
    files = [
        file_item(tmp_path / "key", content=None, secret_content="new secret\n", mode="0600"),
        file_item(tmp_path / "conf", "new\n"),
    ]
    result = host_files.sync([], files, check_mode=False)
    secret_diff, conf_diff = result["diff"]
    assert "secret" not in secret_diff["before"].replace("(secret", "") and "new secret" not in str(secret_diff)
    assert conf_diff["before"] == "old\n" and conf_diff["after"] == "new\n"


def test_check_mode_reports_and_changes_nothing(tmp_path):
    (tmp_path / "conf").write_text("old\n")
    os.chmod(tmp_path / "conf", 0o600)
    result = host_files.sync(
        [{"path": str(tmp_path / "new-dir"), "mode": "0755"}], [file_item(tmp_path / "conf", "new\n")], check_mode=True
    )
    assert result["changes"] == {
        str(tmp_path / "new-dir"): ["created"],
        str(tmp_path / "conf"): ["content", "mode 0600 -> 0644"],
    }
    assert (tmp_path / "conf").read_text() == "old\n" and mode_of(tmp_path / "conf") == 0o600
    assert not (tmp_path / "new-dir").exists()


def test_mode_and_owner_drift_is_mended_without_rewriting(tmp_path):
    (tmp_path / "conf").write_text("same\n")
    os.chmod(tmp_path / "conf", 0o666)
    inode = os.stat(tmp_path / "conf").st_ino
    result = host_files.sync([], [file_item(tmp_path / "conf", "same\n", owner="0", group="0")], check_mode=False)
    assert result["changes"][str(tmp_path / "conf")] == ["mode 0666 -> 0644"]
    assert mode_of(tmp_path / "conf") == 0o644 and os.stat(tmp_path / "conf").st_ino == inode


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_by_number_on_a_new_file_and_a_directory(tmp_path):
    result = host_files.sync(
        [{"path": str(tmp_path / "cache"), "mode": "0700", "owner": "101"}],
        [file_item(tmp_path / "cache" / "f", owner="101", group="102")],
        check_mode=False,
    )
    assert len(result["changed_paths"]) == 2
    assert os.stat(tmp_path / "cache").st_uid == 101
    assert (os.stat(tmp_path / "cache" / "f").st_uid, os.stat(tmp_path / "cache" / "f").st_gid) == (101, 102)


def test_force_false_writes_only_a_missing_file(tmp_path):
    (tmp_path / "generation").write_text("the host's own\n")
    items = [
        file_item(tmp_path / "generation", "default\n", force=False),
        file_item(tmp_path / "new", "default\n", force=False),
    ]
    result = host_files.sync([], items, check_mode=False)
    assert result["changed_paths"] == [str(tmp_path / "new")]
    assert (tmp_path / "generation").read_text() == "the host's own\n"


@pytest.mark.parametrize(
    ("directories", "files", "message"),
    [
        ([{"path": "/tmp", "mode": "755x"}], [], "mode '755x' is not an octal mode"),
        (
            [],
            [{"path": "/tmp/x", "content": "a", "secret_content": None, "mode": "0644", "owner": "no-such-user-here"}],
            "owner 'no-such-user-here' does not exist",
        ),
        ([], [{"path": "/tmp", "content": "a", "secret_content": None, "mode": "0644"}], "/tmp: wanted a regular file"),
    ],
)
def test_bad_input_names_the_value_and_changes_nothing(directories, files, message):
    with pytest.raises(host_files.HostFilesError, match=message):
        host_files.sync(directories, files, check_mode=False)


def test_a_file_where_a_directory_is_wanted_is_not_replaced(tmp_path):
    (tmp_path / "d").write_text("keep\n")
    with pytest.raises(host_files.HostFilesError, match="wanted a directory"):
        host_files.sync([{"path": str(tmp_path / "d"), "mode": "0755"}], [], check_mode=False)
    assert (tmp_path / "d").read_text() == "keep\n"


def test_a_bad_item_fails_before_any_item_is_written(tmp_path):
    files = [file_item(tmp_path / "first", "a\n"), file_item(tmp_path / "second", "b\n", mode="rw-r--r--")]
    with pytest.raises(host_files.HostFilesError, match="second: mode 'rw-r--r--'"):
        host_files.sync([{"path": str(tmp_path / "dir"), "mode": "0755"}], files, check_mode=False)
    assert not (tmp_path / "first").exists() and not (tmp_path / "dir").exists()


def binary_item(path, data, mode="0644"):
    return file_item(path, content=None, content_base64=base64.b64encode(data).decode(), mode=mode)


def test_a_binary_file_is_written_byte_for_byte_and_compared_so(tmp_path):
    data = bytes(range(256)) * 3  # not UTF-8: every byte value, NUL included
    path = tmp_path / "lib" / "app.pyz"
    first = host_files.sync([], [binary_item(path, data)], check_mode=False)
    assert first["changed_paths"] == [str(path)] and path.read_bytes() == data
    assert first["diff"][0]["after"] == "(binary, 768 bytes)\n"
    assert host_files.sync([], [binary_item(path, data)], check_mode=False)["changed_paths"] == []
    path.write_bytes(data[:-1] + b"\x00")  # one byte differs: put back
    again = host_files.sync([], [binary_item(path, data)], check_mode=False)
    assert again["changes"] == {str(path): ["content"]} and path.read_bytes() == data
    assert again["diff"][0]["before"] == "(binary, 768 bytes)\n"


def test_a_binary_file_whose_mode_drifted_shows_the_mode_not_bytes(tmp_path):
    path = tmp_path / "app.pyz"
    host_files.sync([], [binary_item(path, b"PK\x03\x04")], check_mode=False)
    path.chmod(0o600)
    result = host_files.sync([], [binary_item(path, b"PK\x03\x04")], check_mode=False)
    assert result["changes"] == {str(path): ["mode 0600 -> 0644"]} and mode_of(path) == 0o644
    assert result["diff"][0]["before"] == "mode 0600 -> 0644\n"


def test_content_base64_that_is_not_base64_names_the_path_and_writes_nothing(tmp_path):
    item = file_item(tmp_path / "x.pyz", content=None, content_base64="not base64!")
    with pytest.raises(host_files.HostFilesError, match=r"x\.pyz: content_base64 is not base64"):
        host_files.sync([], [item], check_mode=False)
    assert not (tmp_path / "x.pyz").exists()


def test_two_kinds_of_content_for_one_file_are_refused(tmp_path):
    item = file_item(tmp_path / "x", content="a", content_base64="YQ==")
    with pytest.raises(host_files.HostFilesError, match="exactly one of content, secret_content and content_base64"):
        host_files.sync([], [item], check_mode=False)


def validated_item(path, content, command):
    return file_item(path, content, validate=command)


def test_validate_sees_the_complete_new_file_and_a_failure_leaves_the_old_one(tmp_path):
    target = tmp_path / "app.conf"
    target.write_text("good\n")
    checker = "grep -qx good %s"
    bad = host_files.HostFilesError
    with pytest.raises(bad, match=r"app.conf: validate 'grep -qx good %s' failed \(exit 1\), the file was not changed"):
        host_files.sync([], [validated_item(target, "bad\n", checker)], check_mode=False)
    assert target.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.conf"]  # no temporary file left beside it
    target.write_text("old\n")
    result = host_files.sync([], [validated_item(target, "good\n", checker)], check_mode=False)
    assert result["changed_paths"] == [str(target)] and target.read_text() == "good\n"


def test_validate_without_a_placeholder_is_refused_naming_it(tmp_path):
    with pytest.raises(host_files.HostFilesError, match="validate 'true' has no %s"):
        host_files.sync([], [validated_item(tmp_path / "x", "a\n", "true")], check_mode=False)
    assert not (tmp_path / "x").exists()


def test_validate_is_not_run_in_check_mode_or_for_an_unchanged_file(tmp_path):
    target = tmp_path / "x"
    target.write_text("a\n")
    item = validated_item(target, "a\n", "false %s")  # would fail if it ran
    assert host_files.sync([], [dict(item)], check_mode=False)["changed_paths"] == []
    planned = host_files.sync([], [validated_item(target, "b\n", "false %s")], check_mode=True)
    assert planned["changed_paths"] == [str(target)]
    assert target.read_text() == "a\n"
