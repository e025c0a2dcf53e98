import json
import os

from ansible_collections.dockyard.fleet.plugins.module_utils._release_history import (
    empty_history,
    last_good,
    load_history,
    public_record,
    releases_to_prune,
    rollback_target,
    save_history,
)


def history(*records, current=None):
    h = empty_history("web")
    h["releases"] = [{"id": i, "version": v, "outcome": o} for i, v, o in records]
    h["current"] = current
    return h


def test_rollback_previous_skips_failed_and_current():
    h = history(("r1", "v1", "succeeded"), ("r2", "v2", "succeeded"), ("r3", "v3", "failed"), current="r2")
    assert rollback_target(h, "previous")["id"] == "r1"


def test_rollback_to_a_version_or_id():
    h = history(("r1", "v1", "succeeded"), ("r2", "v2", "succeeded"), ("r3", "v1", "failed"), current="r2")
    assert rollback_target(h, "v1")["id"] == "r1"
    assert rollback_target(h, "r2")["id"] == "r2"
    assert rollback_target(h, "v9") is None


def test_rollback_with_no_earlier_release():
    assert rollback_target(history(("r1", "v1", "succeeded"), current="r1"), "previous") is None


def test_last_good():
    h = history(("r1", "v1", "succeeded"), ("r2", "v2", "failed"))
    assert last_good(h)["id"] == "r1"
    assert last_good(h, exclude="r1") is None


def test_prune_keeps_retain_newest_current_and_last_good():
    h = history(
        ("r1", "v1", "succeeded"),
        ("r2", "v2", "succeeded"),
        ("r3", "v3", "failed"),
        ("r4", "v4", "succeeded"),
        ("r5", "v5", "succeeded"),
        current="r5",
    )
    assert releases_to_prune(h, retain=2) == ["r1", "r2", "r3"]
    assert releases_to_prune(h, retain=0) == ["r1", "r2", "r3"]  # current r5 and last good r4 stay
    assert releases_to_prune(h, retain=10) == ["r3"]


def test_prune_keeps_an_older_current_after_a_rollback():
    h = history(("r1", "v1", "succeeded"), ("r2", "v2", "succeeded"), ("r3", "v3", "succeeded"), current="r1")
    assert releases_to_prune(h, retain=1) == ["r2"]  # r1 current, r3 last good and newest


def test_prune_skips_already_pruned():
    h = history(("r1", "v1", "failed"), ("r2", "v2", "succeeded"), current="r2")
    h["releases"][0]["pruned"] = True
    assert releases_to_prune(h, retain=1) == []


def test_save_is_atomic_and_readable(tmp_path):
    path = str(tmp_path / "sub" / "web.json")
    h = history(("r1", "v1", "succeeded"), current="r1")
    save_history(path, h)
    assert load_history(path, "web") == h
    with open(path) as handle:
        assert json.load(handle)["current"] == "r1"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path / "sub") == ["web.json"]  # no temporary file left behind


def test_load_missing_history(tmp_path):
    assert load_history(str(tmp_path / "none.json"), "web") == empty_history("web")


def test_public_record_drops_internal_fields():
    assert public_record({"id": "r1", "_env": "secret"}) == {"id": "r1"}
