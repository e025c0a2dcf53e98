"""The registry authorizer's decisions: which access a request needs, what the rules grant, tokens."""

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "roles/registry/files/registry_authorizer.py"
spec = importlib.util.spec_from_file_location("registry_authorizer", SOURCE)
authorizer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(authorizer)

RULES = [
    {"repository": "*", "users": ["admin"], "actions": ["pull", "push", "delete"]},
    {"repository": "team-a/*", "users": ["alice", "robot$ci"], "actions": ["pull", "push"]},
    {"repository": "public/*", "anonymous": True, "actions": ["pull"]},
    {"repository": "shared/*", "users": ["*"], "actions": ["pull"]},
]


@pytest.fixture()
def policy(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"users": {}, "robots": {}, "rules": RULES}))
    return authorizer.Policy(str(path))


@pytest.mark.parametrize(
    ("method", "uri", "needs"),
    [
        ("GET", "/v2/", "base"),
        ("GET", "/v2/_catalog?n=10", "catalog"),
        ("HEAD", "/v2/team-a/app/manifests/1", [("team-a/app", "pull")]),
        ("GET", "/v2/team-a/app/blobs/sha256:" + "0" * 64, [("team-a/app", "pull")]),
        ("POST", "/v2/team-a/app/blobs/uploads/", [("team-a/app", "push")]),
        ("PATCH", "/v2/a/b/c/blobs/uploads/uuid", [("a/b/c", "push")]),
        ("DELETE", "/v2/team-a/app/manifests/sha256:" + "1" * 64, [("team-a/app", "delete")]),
        (
            "POST",
            "/v2/team-a/app/blobs/uploads/?mount=sha256:x&from=team-b/lib",
            [("team-a/app", "push"), ("team-b/lib", "pull")],
        ),
        ("GET", "/v2/team-a/app/tags/list", [("team-a/app", "pull")]),
        ("GET", "/etc/passwd", [("", "none")]),
    ],
)
def test_required_access(method, uri, needs):
    assert authorizer.required_access(method, uri) == needs


@pytest.mark.parametrize(
    ("subject", "repository", "action", "allowed"),
    [
        ("alice", "team-a/app", "push", True),
        ("alice", "team-a/deep/app", "pull", True),
        ("alice", "team-b/app", "pull", False),
        ("alice", "team-a/app", "delete", False),
        ("robot$ci", "team-a/app", "pull", True),
        (None, "public/tool", "pull", True),
        (None, "public/tool", "push", False),
        (None, "team-a/app", "pull", False),
        (None, "shared/x", "pull", False),
        ("bob", "shared/x", "pull", True),
        ("admin", "anything/at/all", "delete", True),
    ],
)
def test_rules(policy, subject, repository, action, allowed):
    assert policy.allowed(subject, repository, action) is allowed


def test_catalog_only_for_pull_on_everything(policy):
    assert policy.catalog_allowed("admin")
    assert not policy.catalog_allowed("alice")
    assert not policy.catalog_allowed(None)


def test_policy_reread_on_change(policy):
    assert not policy.allowed("bob", "team-b/app", "pull")
    time.sleep(0.01)
    path = Path(policy.path)
    rules = [*RULES, {"repository": "team-b/*", "users": ["bob"], "actions": ["pull"]}]
    path.write_text(json.dumps({"rules": rules}))
    assert policy.allowed("bob", "team-b/app", "pull")


def test_tokens():
    tokens = authorizer.Tokens(b"key", ttl=60)
    assert tokens.subject(tokens.issue("alice")) == (True, "alice")
    assert tokens.subject(tokens.issue(None)) == (True, None)
    assert tokens.subject(authorizer.Tokens(b"other", ttl=60).issue("alice")) == (False, None)
    assert tokens.subject("garbage") == (False, None)
    assert authorizer.Tokens(b"key", ttl=-1).subject(authorizer.Tokens(b"key", ttl=-1).issue("alice")) == (False, None)


def test_bcrypt_through_libcrypt():
    checker = authorizer.PasswordChecker()
    hashed = "$2b$10$OqzfZnZeXsHVSwbcueU9ruPuGjKFVuEfFqmApRa1WMjJDAx.Nj/hm"  # alice-pass-1
    assert checker.bcrypt_ok("alice-pass-1", hashed)
    assert not checker.bcrypt_ok("wrong", hashed)


def test_stops_at_once_on_sigterm(tmp_path):
    """SIGTERM (docker stop) ends it cleanly, exit 0: as its container's PID 1 it has no default action for it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "authorizer.json").write_text(json.dumps({"listen": "127.0.0.1", "port": port}))
    (tmp_path / "token.key").write_bytes(b"test-signing-key")
    (tmp_path / "policy.json").write_text(json.dumps({"users": {}, "robots": {}, "rules": RULES}))
    process = subprocess.Popen([sys.executable, str(SOURCE), str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/auth" % port, timeout=1)
            except urllib.error.HTTPError as answer:
                assert answer.code == 401  # serving: no credentials, a challenge
                break
            except OSError:
                assert time.monotonic() < deadline, "the authorizer did not start listening"
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()
