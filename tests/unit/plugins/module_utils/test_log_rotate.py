import gzip
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._log_rotate import (
    compress_file,
    copy_name,
    copy_then_truncate,
    due,
    existing_copies,
    holds_open,
    parse_size,
    program_pid,
    shift_numbered,
    wait_released,
)


def test_parse_size_units_and_bad_value():
    assert parse_size("10M") == 10 * 1024 * 1024
    assert parse_size("1k") == 1024
    assert parse_size(512) == 512
    with pytest.raises(ValueError, match="12X"):
        parse_size("12X")


def test_due_by_size_and_age():
    assert due(0, None, 1, 1, 100) is None
    assert due(2048, None, 1024, None, 100).startswith("size 2048")
    assert due(10, 0, 1024, 50, 100).startswith("last rotated")
    assert due(10, 90, 1024, 50, 100) is None


def test_copy_names():
    assert copy_name("/l/app.log", 1, False, True) == "/l/app.log.1.gz"
    assert copy_name("/l/app.log", 1, True, False, now=0) == "/l/app.log-19700101-000000"


def test_shift_keeps_at_most_keep_copies(tmp_path):
    log = str(tmp_path / "app.log")
    for index in (1, 2, 3):
        (tmp_path / ("app.log.%d" % index)).write_text(str(index))
    freed = shift_numbered(log, 3, False)
    assert freed == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log.2", "app.log.3"]
    assert (tmp_path / "app.log.2").read_text() == "1"


def test_copy_then_truncate_reports_no_window_without_writer(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("line\n" * 100)
    copied, at_risk = copy_then_truncate(str(log), str(tmp_path / "app.log.1"))
    assert copied == 500
    assert at_risk == 0
    assert log.stat().st_size == 0
    assert (tmp_path / "app.log.1").read_text() == "line\n" * 100


def test_compress_and_list_copies(tmp_path):
    copy = tmp_path / "app.log.1"
    copy.write_text("hello\n")
    compress_file(str(copy), str(copy) + ".gz")
    with gzip.open(str(copy) + ".gz", "rt") as packed:
        assert packed.read() == "hello\n"
    assert existing_copies(str(tmp_path / "app.log")) == [str(copy) + ".gz"]


def test_a_renamed_file_counts_as_held_until_it_is_closed(tmp_path):
    live, renamed = tmp_path / "app.log", tmp_path / "app.log.1"
    with open(live, "w", encoding="utf-8"):
        os.rename(live, renamed)  # as log_rotate strategy=syslog does, before rsyslog's SIGHUP
        assert holds_open(os.getpid(), renamed)
        assert wait_released(os.getpid(), [str(renamed)], timeout=0.1) == [str(renamed)]
    assert not holds_open(os.getpid(), renamed)
    assert wait_released(os.getpid(), [str(renamed)], timeout=5) == []


def test_a_file_is_released_when_the_writer_closes_it_meanwhile(tmp_path):
    path = tmp_path / "app.log.1"
    writer = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the timer below
    closer = threading.Timer(0.2, writer.close)
    closer.start()
    assert wait_released(os.getpid(), [str(path)], timeout=10) == []
    closer.join()


def test_a_process_that_is_gone_holds_nothing(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("x")
    holder = subprocess.Popen(["sleep", "30"], stdout=open(path, "a"))  # noqa: SIM115
    assert holds_open(holder.pid, path)
    holder.kill()
    holder.wait()
    assert not holds_open(holder.pid, path)


def test_a_program_is_found_by_its_pid_file_or_by_name(tmp_path):
    pidfile = tmp_path / "app.pid"
    pidfile.write_text("4242\n")
    assert program_pid(pidfile, "anything") == 4242
    pidfile.write_text("not a pid")
    with pytest.raises(LookupError, match="does not hold a pid"):
        program_pid(pidfile, "anything")
    program = tmp_path / "dy-sleeper"  # a name no other process has (comm: 15 characters at most)
    shutil.copy("/bin/sleep", program)
    sleeper = subprocess.Popen([program, "30"])
    comm = Path("/proc/%d/comm" % sleeper.pid)
    deadline = time.monotonic() + 5
    while comm.read_text().strip() != "dy-sleeper" and time.monotonic() < deadline:  # until it has exec'd
        time.sleep(0.01)
    try:
        assert program_pid(tmp_path / "none.pid", "dy-sleeper") == sleeper.pid
        with pytest.raises(LookupError, match=r"no pid file .*none\.pid and no no-such-program"):
            program_pid(tmp_path / "none.pid", "no-such-program")
    finally:
        sleeper.kill()
        sleeper.wait()
