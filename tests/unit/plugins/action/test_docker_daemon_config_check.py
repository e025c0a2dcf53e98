"""docker_daemon_config's controller-side merge: it answers only when the module would change no key."""

import json

from ansible_collections.dockyard.fleet.plugins.action.docker_daemon_config import unchanged_result

PATH = "/etc/docker/daemon.json"
ON_HOST = {"live-restore": True, "log-driver": "json-file", "log-opts": {"max-size": "10m", "tag": "{{.Name}}"}}


def test_settings_already_there_answer_unchanged_with_the_config():
    text = json.dumps(ON_HOST, indent=4)
    answer = unchanged_result(PATH, text, {"settings": {"log-opts": {"max-size": "10m"}}})
    assert answer["changed"] is False
    assert answer["config"] == ON_HOST
    assert (answer["restart_needed"], answer["reload_needed"], answer["reload_first"]) == (False, False, False)
    assert answer["diff"]["before"] == answer["diff"]["after"] == text


def test_other_formatting_of_the_same_keys_is_unchanged():
    assert unchanged_result(PATH, json.dumps(ON_HOST, separators=(",", ":")), {"settings": ON_HOST}) is not None


def test_a_changed_or_removed_key_goes_to_the_module():
    text = json.dumps(ON_HOST)
    assert unchanged_result(PATH, text, {"settings": {"log-opts": {"max-size": "20m"}}}) is None
    assert unchanged_result(PATH, text, {"settings": {}, "remove": ["log-driver"]}) is None
    assert unchanged_result(PATH, text, {"settings": {"registry-mirrors": ["https://m:5443"]}}) is None


def test_live_restore_off_on_the_host_goes_to_the_module():
    text = json.dumps({"log-driver": "json-file"})
    assert unchanged_result(PATH, text, {"settings": {"log-driver": "json-file"}}) is None
    assert unchanged_result(PATH, text, {"settings": {"log-driver": "json-file"}, "live_restore": "no"}) is not None


def test_what_it_cannot_tell_goes_to_the_module():
    assert unchanged_result(PATH, "{not json", {"settings": {}}) is None
    assert unchanged_result(PATH, "[]", {"settings": {}}) is None
    assert unchanged_result(PATH, json.dumps(ON_HOST), {"settings": "log-driver=json-file"}) is None
    assert unchanged_result(PATH, json.dumps(ON_HOST), {"settings": {}, "live_restore": "maybe"}) is None
