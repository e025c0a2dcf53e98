import json
import os
import socket
import threading
import time

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._lock import HostLock, LockTimeoutError, lock_is_stale


def alive(pid):
    return pid == 42


@pytest.mark.parametrize(
    "holder, now, stale",
    [
        ({}, 100, True),
        ({"since": 0, "host": "h", "pid": 42}, 100, False),
        ({"since": 0, "host": "h", "pid": 42}, 5000, True),
        ({"since": 0, "host": "h", "pid": 7}, 100, True),
        ({"since": 0, "host": "other", "pid": 7}, 100, False),
    ],
)
def test_lock_is_stale(holder, now, stale):
    assert lock_is_stale(holder, now, 3600, "h", alive) is stale


def test_second_holder_times_out_naming_the_first(tmp_path):
    path = str(tmp_path / "locks" / "web.lock")
    with HostLock(path, "first run", timeout=1):
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        with pytest.raises(LockTimeoutError, match="held by first run"):
            HostLock(path, "second run", timeout=0.3, poll=0.05).acquire()
    assert not os.path.exists(path)


def test_waiter_gets_the_lock_when_released(tmp_path):
    path = str(tmp_path / "web.lock")
    first = HostLock(path, "first", timeout=1).acquire()
    threading.Timer(0.3, first.release).start()
    second = HostLock(path, "second", timeout=5, poll=0.05).acquire()
    assert second.waited >= 0.2
    second.release()


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / "web.lock"
    dead = {"owner": "crashed", "pid": 2**22 + 12345, "host": socket.gethostname(), "since": time.time()}
    path.write_text(json.dumps(dead))
    with HostLock(str(path), "new", timeout=1) as lock:
        assert json.loads(path.read_text())["owner"] == "new"
        assert lock.waited < 1
