import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._daemon_config import (
    DaemonConfigError,
    changed_keys,
    flag_conflicts,
    merge,
    parse,
    reload_first,
    render,
    restart_or_reload,
    validate,
)

OPERATOR_FILE = '{"data-root": "/srv/docker", "log-opts": {"labels": "app"}, "debug": false}'


def test_merge_keeps_unrelated_keys_and_merges_nested_options():
    before = parse(OPERATOR_FILE, "daemon.json")
    after = merge(before, {"log-driver": "json-file", "log-opts": {"max-size": "50m", "max-file": "5"}})
    assert after["data-root"] == "/srv/docker"
    assert after["log-opts"] == {"labels": "app", "max-size": "50m", "max-file": "5"}
    assert after["live-restore"] is True
    assert before["log-opts"] == {"labels": "app"}  # the input is not modified


def test_lists_are_replaced_not_appended():
    after = merge({"registry-mirrors": ["https://old:5000"]}, {"registry-mirrors": ["https://new:5000"]})
    assert after["registry-mirrors"] == ["https://new:5000"]


def test_remove_and_live_restore_off():
    after = merge({"debug": True, "live-restore": False}, {}, remove=["debug"], live_restore=False)
    assert after == {"live-restore": False}


def test_same_content_in_other_formatting_is_no_change():
    before = parse('{ "live-restore":true,\n"debug": false }', "daemon.json")
    assert changed_keys(before, merge(before, {"debug": False})) == []


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["registry-mirrors", "insecure-registries"], (False, True)),
        (["log-opts"], (True, False)),
        (["registry-mirrors", "log-driver"], (True, False)),
        ([], (False, False)),
    ],
)
def test_restart_only_for_keys_dockerd_reads_at_start(keys, expected):
    assert restart_or_reload(keys) == expected


@pytest.mark.parametrize(
    ("before", "settings", "expected"),
    [
        # a fresh host: live-restore off, log defaults need a restart -> reload first
        ({}, {"log-driver": "json-file"}, True),
        ({"live-restore": False}, {"log-opts": {"max-size": "20m"}}, True),
        # live-restore already on: the restart alone keeps the containers
        ({"live-restore": True}, {"log-driver": "json-file"}, False),
        # only reloadable keys: the reload is all there is
        ({}, {"registry-mirrors": ["https://m:5000"]}, False),
    ],
)
def test_reload_first_when_the_change_turns_live_restore_on_and_needs_a_restart(before, settings, expected):
    after = merge(before, settings)
    assert reload_first(before, after, changed_keys(before, after)) is expected


def test_no_reload_first_when_live_restore_is_turned_off():
    before = {"live-restore": True}
    after = merge(before, {"log-driver": "local"}, live_restore=False)
    assert reload_first(before, after, changed_keys(before, after)) is False


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"log-opts": {"max-file": 5}}, "log-opts.max-file must be a string"),
        ({"log-drvier": "local"}, "'log-drvier' is not a dockerd option"),
        ({"live-restore": "yes"}, "'live-restore' must be true or false"),
        ({"registry-mirrors": "https://m:5000"}, "must be a list of strings"),
        ({"registry-mirrors": ["m:5000"]}, "needs a scheme"),
        ({"max-concurrent-downloads": True}, "must be an integer"),
    ],
)
def test_validate_names_the_bad_key_and_value(config, message):
    with pytest.raises(DaemonConfigError, match=message):
        validate(config)


def test_unknown_keys_can_be_allowed():
    validate({"some-future-option": 1}, allow_unknown=True)


def test_bad_json_names_the_file():
    with pytest.raises(DaemonConfigError, match=r"/etc/docker/daemon\.json is not valid JSON"):
        parse("{", "/etc/docker/daemon.json")
    with pytest.raises(DaemonConfigError, match="expects an object"):
        parse("[]", "/etc/docker/daemon.json")
    assert parse(None, "x") == {} and parse("\n", "x") == {}


def test_flag_conflicts_with_the_running_dockerd():
    cmdline = ["-H", "fd://", "--containerd=/run/containerd/containerd.sock", "--debug"]
    assert flag_conflicts({"hosts": ["unix://"], "debug": True, "containerd": "x", "mtu": 1400}, cmdline) == [
        "containerd",
        "debug",
        "hosts",
    ]


def test_render_is_stable():
    assert render({"b": 1, "a": {"d": "1", "c": "2"}}) == render({"a": {"c": "2", "d": "1"}, "b": 1})
