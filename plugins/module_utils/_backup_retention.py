# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Which backups a retention policy keeps (restic's "forget" rules): the `last`
# N newest, and the newest backup of each of the N most recent days / ISO
# weeks / months that have one. The newest good backup is kept whatever the
# policy says, and backups that are not good (failed verification) are never
# what a bucket keeps, so pruning cannot leave a volume without a usable copy.

from __future__ import annotations

POLICY_KEYS = ("last", "daily", "weekly", "monthly")


def _bucket(when, period):
    if period == "daily":
        return when.strftime("%Y-%m-%d")
    if period == "weekly":
        year, week, dummy = when.isocalendar()
        return "%d-W%02d" % (year, week)
    return when.strftime("%Y-%m")


def select(backups, policy):
    """backups: [{"id", "time" (datetime), "good" (bool)}]. Returns (keep ids, prune ids), both newest first.

    A policy with no counts (all zero or missing) keeps everything: pruning needs an explicit rule.
    """
    ordered = sorted(backups, key=lambda b: b["time"], reverse=True)
    if not any(policy.get(key) for key in POLICY_KEYS):
        return [b["id"] for b in ordered], []
    good = [b for b in ordered if b["good"]]
    keep = set()
    if good:
        keep.add(good[0]["id"])  # never prune the newest good backup
    keep.update(b["id"] for b in good[: policy.get("last") or 0])
    for period in ("daily", "weekly", "monthly"):
        wanted = policy.get(period) or 0
        seen = []
        for backup in good:
            bucket = _bucket(backup["time"], period)
            if bucket in seen:
                continue
            if len(seen) >= wanted:
                break
            seen.append(bucket)
            keep.add(backup["id"])  # the newest of its bucket (good is newest first)
    return [b["id"] for b in ordered if b["id"] in keep], [b["id"] for b in ordered if b["id"] not in keep]
