"""The registry GC's Redis flush against a real redis-server on loopback: only the registry's keys go."""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "registry" / "files" / "redis_cache_flush.py"
REDIS = shutil.which("redis-server")

SPEC = importlib.util.spec_from_file_location("redis_cache_flush", SCRIPT)
flush_script = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(flush_script)

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (make setup installs it)")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis(tmp_path):
    port = free_port()
    argv = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(tmp_path), "--requirepass", "s3cret"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    server.terminate()
    server.wait(timeout=10)


def cli(port, *args):
    client = flush_script.Redis("127.0.0.1:%d" % port)
    client.call("AUTH", "s3cret")
    client.call("SELECT", 1)
    return client.call(*args)


def run_flush(port, password="s3cret", db="1"):
    env = {**os.environ, "REDIS_ADDR": "127.0.0.1:%d" % port, "REDIS_DB": db, "REDIS_PASSWORD": password}
    argv = [sys.executable, str(SCRIPT)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_flush_deletes_the_registry_descriptors_and_keeps_other_keys(redis):
    for n in range(2500):  # more than one SCAN batch
        cli(redis, "SET", "blobs::sha256:%064x" % n, "d")
    cli(redis, "SADD", "repository::team-a/app::blobs", "sha256:" + "0" * 64)
    cli(redis, "HSET", "repository::team-a/app::blobs::sha256:" + "0" * 64, "digest", "x")
    cli(redis, "SET", "sessions::someone-else", "kept")
    done = run_flush(redis)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"deleted": 2502}
    assert cli(redis, "KEYS", "*") == [b"sessions::someone-else"]
    again = run_flush(redis)
    assert json.loads(again.stdout) == {"deleted": 0}


def test_a_refusal_names_the_server_and_fails(redis):
    done = run_flush(redis, password="wrong")
    assert done.returncode == 1
    assert "redis at 127.0.0.1:%d" % redis in done.stderr
    assert "WRONGPASS" in done.stderr or "invalid password" in done.stderr
