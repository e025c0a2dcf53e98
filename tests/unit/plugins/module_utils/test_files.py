import os

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._files import read_text, write_atomically


def test_write_replaces_with_the_mode_asked_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "d" / "env")
    write_atomically(path, "old", 0o600)
    write_atomically(path, "new", 0o600)
    assert read_text(path) == "new"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path / "d") == ["env"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "conf")
    write_atomically(path, "good")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "half")
    assert read_text(path) == "good"
    assert os.listdir(tmp_path) == ["conf"]


def test_read_text_of_nothing(tmp_path):
    assert read_text(str(tmp_path / "missing")) is None
