import datetime

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_retention import select

UTC = datetime.UTC


def backup(day, hour=12, good=True, month=11):
    when = datetime.datetime(2026, month, day, hour, tzinfo=UTC)
    return {"id": when.strftime("%m%d%H"), "time": when, "good": good}


def test_empty_policy_keeps_everything():
    backups = [backup(1), backup(2)]
    assert select(backups, {}) == (["110212", "110112"], [])


def test_keep_last():
    backups = [backup(d) for d in range(1, 6)]
    keep, prune = select(backups, {"last": 2})
    assert keep == ["110512", "110412"]
    assert prune == ["110312", "110212", "110112"]


def test_daily_keeps_newest_of_each_day():
    backups = [backup(1, 8), backup(1, 20), backup(2, 8), backup(2, 20), backup(3, 8)]
    keep, prune = select(backups, {"daily": 2})
    assert keep == ["110308", "110220"]
    assert set(prune) == {"110208", "110120", "110108"}


def test_weekly_and_monthly_buckets():
    # 2026-11-02 is a Monday: days 2..8 are ISO week 45, 9..15 week 46
    backups = [backup(3), backup(5), backup(10), backup(12), backup(28, month=10)]
    keep, dummy = select(backups, {"weekly": 2})
    assert keep == ["111212", "110512"]
    keep, dummy = select(backups, {"monthly": 2})
    assert keep == ["111212", "102812"]


def test_union_of_rules():
    backups = [backup(d) for d in range(1, 11)]
    keep, dummy = select(backups, {"last": 1, "weekly": 2})
    assert keep == ["111012", "110812"]


def test_never_prunes_newest_good_backup():
    backups = [backup(1), backup(2), backup(3, good=False)]
    keep, prune = select(backups, {"last": 1})
    # the newest is not good: it does not count for "last", and the newest good one survives
    assert keep == ["110212"]
    assert prune == ["110312", "110112"]


def test_bad_backups_are_never_kept_by_buckets():
    backups = [backup(1, good=False), backup(2, good=False)]
    keep, prune = select(backups, {"daily": 5})
    assert keep == []
    assert prune == ["110212", "110112"]
