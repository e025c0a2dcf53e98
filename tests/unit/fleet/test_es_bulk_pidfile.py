"""The test receiver owns its pid file: a new one replaces the receiver an earlier run left, --stop stops it."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

RECEIVER = Path(__file__).resolve().parents[2] / "receivers" / "es_bulk.py"


def free_ports(count):
    sockets = [socket.socket() for dummy in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def start(pidfile, es_port, tcp_port, control_port, address="127.0.0.1"):
    argv = [sys.executable, str(RECEIVER), "--address", address, "--daemon", "--pidfile", str(pidfile)]
    argv += ["--es-port", str(es_port), "--tcp-port", str(tcp_port), "--control-port", str(control_port)]
    started = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout)
    assert started["started"] is True
    return int(pidfile.read_text())


def running(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return b"es_bulk.py" in handle.read()
    except OSError:
        return False


def test_a_new_receiver_replaces_the_one_on_its_pidfile_and_stop_ends_it(tmp_path):
    pidfile = tmp_path / "es-receiver.pid"
    ports = free_ports(3)
    first = start(pidfile, *ports)
    second = start(pidfile, *ports)  # the same ports: they must be free again before it binds them
    try:
        assert second != first
        assert not running(first)
        assert running(second)
    finally:
        stop = [sys.executable, str(RECEIVER), "--stop", "--pidfile", str(pidfile)]
        answer = json.loads(subprocess.run(stop, check=True, capture_output=True, text=True, timeout=30).stdout)
    assert answer == {"stopped": second}
    deadline = time.monotonic() + 5
    while running(second) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(second)
    assert not pidfile.exists()


def test_a_pidfile_naming_another_program_is_left_alone(tmp_path):
    """A stale pid file whose pid now belongs to another process must not kill that process."""
    pidfile = tmp_path / "es-receiver.pid"
    pidfile.write_text(str(os.getpid()))
    stop = [sys.executable, str(RECEIVER), "--stop", "--pidfile", str(pidfile)]
    answer = json.loads(subprocess.run(stop, check=True, capture_output=True, text=True, timeout=30).stdout)
    assert answer == {"stopped": None}
    assert not pidfile.exists()


def test_a_receiver_that_cannot_bind_its_ports_fails_to_start(tmp_path):
    """Another process on the port (a receiver of another checkout) must not pass for this receiver."""
    ports = free_ports(3)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", ports[0]))
    holder.listen()
    try:
        argv = [sys.executable, str(RECEIVER), "--address", "127.0.0.1", "--daemon"]
        argv += ["--pidfile", str(tmp_path / "r.pid"), "--es-port", str(ports[0]), "--tcp-port", str(ports[1])]
        argv += ["--control-port", str(ports[2])]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    finally:
        holder.close()
    answer = json.loads(run.stdout)
    assert run.returncode == 1
    assert answer["started"] is False
    assert "Address already in use" in answer["error"]


def test_stop_on_an_address_stops_a_receiver_whose_pidfile_is_elsewhere(tmp_path):
    """make fleet-down stops a receiver another checkout left on the fleet's gateway (its pid file is there)."""
    other_checkout = tmp_path / "other"
    other_checkout.mkdir()
    pid = start(other_checkout / "r.pid", *free_ports(3), address="127.0.0.77")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--address", "127.0.0.77"])
    try:
        stop = [sys.executable, str(RECEIVER), "--stop-on", "127.0.0.77"]
        answer = json.loads(subprocess.run(stop, check=True, capture_output=True, text=True, timeout=30).stdout)
        assert answer == {"stopped": [pid]}
        assert not running(pid)
        assert bystander.poll() is None  # another program with the same arguments is left alone
        again = json.loads(subprocess.run(stop, check=True, capture_output=True, text=True, timeout=30).stdout)
        assert again == {"stopped": []}
    finally:
        bystander.kill()
        bystander.wait()
        if running(pid):
            os.kill(pid, 9)


def test_stop_on_with_a_pidfile_stops_both(tmp_path):
    """What make fleet-down runs: its own receiver (pid file) and any other on the gateway, in one call."""
    own = start(tmp_path / "own.pid", *free_ports(3))
    other_checkout = tmp_path / "other"
    other_checkout.mkdir()
    other = start(other_checkout / "r.pid", *free_ports(3), address="127.0.0.78")
    try:
        stop = [sys.executable, str(RECEIVER), "--stop-on", "127.0.0.78", "--pidfile", str(tmp_path / "own.pid")]
        answer = json.loads(subprocess.run(stop, check=True, capture_output=True, text=True, timeout=30).stdout)
        assert answer == {"stopped": [other]}
        assert not running(own)
        assert not running(other)
        assert not (tmp_path / "own.pid").exists()
    finally:
        for pid in (own, other):
            if running(pid):
                os.kill(pid, 9)
