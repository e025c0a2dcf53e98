import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._systemd_show import SystemdShowError, parse_show

SHOW = """Id=dockyard-registry.service
ActiveState=active
UnitFileState=enabled
ActiveEnterTimestamp=@1733490000

Id=dockyard-registry-auth.service
ActiveState=inactive
UnitFileState=disabled
ActiveEnterTimestamp=

Id=keepalived.service
ActiveState=active
UnitFileState=disabled
ActiveEnterTimestamp=@1733490001.250000
"""


def test_each_block_is_one_unit_by_id():
    units = parse_show(SHOW)
    assert list(units) == ["dockyard-registry.service", "dockyard-registry-auth.service", "keepalived.service"]
    assert units["dockyard-registry.service"]["ActiveState"] == "active"


def test_running_enabled_and_up():
    units = parse_show(SHOW)
    assert [units[u]["up"] for u in units] == [True, False, False]
    assert units["keepalived.service"]["running"] is True
    assert units["keepalived.service"]["enabled"] is False


def test_active_since_in_whole_seconds_or_zero():
    units = parse_show(SHOW)
    assert units["dockyard-registry.service"]["active_since"] == 1733490000
    assert units["keepalived.service"]["active_since"] == 1733490001
    assert units["dockyard-registry-auth.service"]["active_since"] == 0


def test_a_timestamp_in_local_format_is_unknown():
    units = parse_show("Id=a.service\nActiveEnterTimestamp=Sun 2026-12-06 13:00:31 UTC\n")
    assert units["a.service"]["active_since"] == 0


def test_a_unit_that_does_not_exist_is_not_up():
    # systemctl show answers for unknown units too: inactive, UnitFileState empty
    units = parse_show("Id=nope.timer\nActiveState=inactive\nUnitFileState=\n")
    assert units["nope.timer"]["up"] is False


def test_empty_output_is_no_unit():
    assert parse_show("") == {}


def test_a_block_without_id_is_refused():
    with pytest.raises(SystemdShowError, match="Id"):
        parse_show("ActiveState=active\nUnitFileState=enabled\n")
