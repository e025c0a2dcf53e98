import json
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._log_shipping import (
    imfile_state_offsets,
    log_config_drift,
    unshipped_bytes,
    wait_until_shipped,
)

DEFAULTS = {"max-size": "50m", "max-file": "5"}


def test_no_drift_when_driver_and_options_match():
    assert (
        log_config_drift({"Type": "json-file", "Config": {"max-size": "50m", "max-file": "5"}}, "json-file", DEFAULTS)
        == []
    )


def test_missing_and_different_options_are_reasons():
    reasons = log_config_drift({"Type": "json-file", "Config": {"max-size": "1m"}}, "json-file", DEFAULTS)
    assert "max-size=1m (default 50m)" in reasons
    assert "max-file not set (default 5)" in reasons


def test_driver_set_without_options_is_reported_as_unbounded():
    reasons = log_config_drift({"Type": "json-file", "Config": {}}, "local", {})
    assert reasons[0] == "driver json-file, default local"
    assert any("grows without bound" in r for r in reasons)


def test_other_driver_is_drift():
    assert log_config_drift({"Type": "local", "Config": {}}, "json-file", DEFAULTS) == [
        "driver local, default json-file"
    ]


def write_state(directory, inode, filename, offset):
    path = os.path.join(directory, "imfile-state:%d:abcdef" % inode)
    with open(path, "w") as handle:
        json.dump({"filename": filename, "prev_was_nl": 1, "curr_offs": offset, "strt_offs": offset}, handle)


def test_state_offsets_and_unshipped_bytes(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x" * 100)
    write_state(str(tmp_path), os.stat(log).st_ino, str(log), 60)
    (tmp_path / "imfile-state:broken").write_text("{not json")
    assert imfile_state_offsets(str(tmp_path))[str(log)] == (os.stat(log).st_ino, 60)
    assert unshipped_bytes(str(log), str(tmp_path)) == 40


def test_state_of_an_older_file_of_the_same_name_does_not_count(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x" * 100)
    write_state(str(tmp_path), os.stat(log).st_ino + 1, str(log), 100)
    assert unshipped_bytes(str(log), str(tmp_path)) is None


def test_wait_until_shipped_gives_up_after_the_timeout(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("x" * 100)
    write_state(str(tmp_path), os.stat(log).st_ino, str(log), 10)
    ticks = iter(range(100))
    left = wait_until_shipped(str(log), str(tmp_path), 3, clock=lambda: next(ticks), sleep=lambda s: None)
    assert left == 90
