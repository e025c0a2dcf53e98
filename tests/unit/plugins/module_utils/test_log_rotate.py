import gzip

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._log_rotate import (
    compress_file,
    copy_name,
    copy_then_truncate,
    due,
    existing_copies,
    parse_size,
    shift_numbered,
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
