import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._release_spec import (
    SpecError,
    config_entries,
    config_hash,
    env_hash,
    identity_options,
    merged_env,
    normalize_healthcheck,
    parse_env_file,
    parse_port,
    release_identity,
    validate_app_name,
)

KEY = b"k" * 32
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("8080", ("", 8080, 8080)),
        (8080, ("", 8080, 8080)),
        ("80:8080", ("", 80, 8080)),
        ("127.0.0.1:80:8080", ("127.0.0.1", 80, 8080)),
    ],
)
def test_parse_port(spec, expected):
    port = parse_port(spec)
    assert (port["host_ip"], port["host_port"], port["container_port"]) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("http:80", "invalid port 'http:80': ports must be numbers"),
        ("0:80", "invalid port '0:80': ports must be between 1 and 65535"),
        ("1:2:3:4", "invalid port '1:2:3:4': expected CONTAINER"),
        ("70000", "invalid port '70000'"),
    ],
)
def test_parse_port_names_the_bad_value(spec, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        parse_port(spec)


@pytest.mark.parametrize("name", ["web", "shop-web", "a.b_c", "0app"])
def test_app_names_accepted(name):
    validate_app_name(name)


@pytest.mark.parametrize("name", ["", "Web", "-web", "a b", "x" * 64])
def test_app_names_refused(name):
    with pytest.raises(SpecError, match="invalid app name"):
        validate_app_name(name)


def test_env_files_then_env_wins():
    env = merged_env([("a.env", "A=1\n# comment\n\nB=two=2\n"), ("b.env", "A=3\n")], {"C": 4, "D": None})
    assert env == {"A": "3", "B": "two=2", "C": "4", "D": ""}


def test_env_file_bad_line_names_file_and_line():
    with pytest.raises(SpecError, match=r"x.env line 2: expected KEY=VALUE"):
        parse_env_file("A=1\nnot a pair\n", "x.env")


def test_env_hash_hides_values_but_tracks_changes():
    first = env_hash({"PASSWORD": "hunter2"}, KEY)
    assert "hunter2" not in first
    assert first == env_hash({"PASSWORD": "hunter2"}, KEY)
    assert first != env_hash({"PASSWORD": "hunter3"}, KEY)
    assert first != env_hash({"PASSWORD": "hunter2"}, b"other key")


def test_config_entries_and_hash():
    entries = config_entries([{"dest": "/etc/a.conf", "content": "x=1\n"}], read_src=None)
    assert entries == [{"dest": "/etc/a.conf", "content": "x=1\n", "mode": "0444"}]
    changed = config_entries([{"dest": "/etc/a.conf", "content": "x=2\n"}], read_src=None)
    assert config_hash(entries) != config_hash(changed)


def test_config_entries_read_src_on_the_host():
    entries = config_entries([{"dest": "/etc/a.conf", "src": "/srv/a.conf"}], read_src=lambda p: "from " + p)
    assert entries[0]["content"] == "from /srv/a.conf"


@pytest.mark.parametrize(
    "files, message",
    [
        ([{"dest": "etc/a", "content": ""}], "config file dest 'etc/a' must be an absolute path"),
        ([{"dest": "/a", "content": ""}, {"dest": "/a", "content": "x"}], "config file dest '/a' is given twice"),
    ],
)
def test_config_entries_refused(files, message):
    with pytest.raises(SpecError, match=message):
        config_entries(files, read_src=None)


def test_identity_changes_with_each_part():
    options = identity_options({"ports": [8080], "command": None})
    base, dummy = release_identity(DIGEST, "c", "e", options)
    assert base == release_identity(DIGEST, "c", "e", options)[0]
    assert base != release_identity("sha256:" + "cd" * 32, "c", "e", options)[0]
    assert base != release_identity(DIGEST, "c2", "e", options)[0]
    assert base != release_identity(DIGEST, "c", "e2", options)[0]
    assert base != release_identity(DIGEST, "c", "e", identity_options({"ports": [9090]}))[0]


def test_identity_ignores_rollout_settings():
    slow, fast = {"ports": [1], "health_timeout": 5}, {"ports": [1], "health_timeout": 9}
    assert identity_options(slow) == identity_options(fast)


def test_healthcheck_defaults_to_http_on_the_first_port():
    check = normalize_healthcheck(None, [parse_port("80:8080")])
    assert check == {"type": "http", "path": "/healthz", "port": 8080, "status": 200}


@pytest.mark.parametrize(
    "check, ports, message",
    [
        ({"type": "http", "path": "healthz"}, [parse_port(80)], "healthcheck path 'healthz' must start with '/'"),
        ({"type": "http"}, [], "needs healthcheck.port when the release has no ports"),
        ({"type": "command"}, [], "needs healthcheck.command"),
        ({"type": "tcp"}, [], "invalid healthcheck type 'tcp'"),
    ],
)
def test_healthcheck_refused(check, ports, message):
    with pytest.raises(SpecError, match=message):
        normalize_healthcheck(check, ports)
