# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The one release-history store: /var/lib/dockyard/releases/<app>.json on each
# host. Records hold versions, digests and hashes, never secret values. The
# selection logic (current, last good, rollback target, what to prune) is pure.

from __future__ import annotations

import json

from ansible_collections.dockyard.fleet.plugins.module_utils._files import write_atomically

HISTORY_DIR = "/var/lib/dockyard/releases"
SUCCEEDED = "succeeded"
FAILED = "failed"
REMOVED = "removed"
IN_PROGRESS = "in_progress"


def empty_history(app):
    return {"app": app, "current": None, "releases": []}


def load_history(path, app):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return empty_history(app)
    data.setdefault("releases", [])
    data.setdefault("current", None)
    return data


def save_history(path, history):
    """Write atomically: a crash leaves the old history or the new one, never half of one."""
    write_atomically(path, json.dumps(history, indent=2, sort_keys=True) + "\n", 0o644)


def find_record(history, release_id):
    for record in history["releases"]:
        if record["id"] == release_id:
            return record
    return None


def current_record(history):
    return find_record(history, history.get("current")) if history.get("current") else None


def last_good(history, exclude=None):
    """The newest succeeded release other than `exclude`."""
    for record in reversed(history["releases"]):
        if record.get("outcome") == SUCCEEDED and record["id"] != exclude:
            return record
    return None


def rollback_target(history, rollback_to):
    """The release to go back to: 'previous' (the newest good one before the current) or a version."""
    current = history.get("current")
    if rollback_to == "previous":
        return last_good(history, exclude=current)
    for record in reversed(history["releases"]):
        if record.get("outcome") == SUCCEEDED and rollback_to in (record.get("version"), record["id"]):
            return record
    return None


def releases_to_prune(history, retain):
    """Ids of succeeded releases beyond the `retain` newest; the current and last good are always kept.

    Failed attempts keep nothing on the host worth keeping, so they are pruned too (their records stay).
    """
    keep = set()
    current = history.get("current")
    if current:
        keep.add(current)
    good = last_good(history, exclude=current)
    if good:
        keep.add(good["id"])
    succeeded = [r["id"] for r in history["releases"] if r.get("outcome") == SUCCEEDED]
    keep.update(succeeded[-retain:] if retain > 0 else [])
    return [r["id"] for r in history["releases"] if r["id"] not in keep and not r.get("pruned")]


def public_record(record):
    """A record as shown in output and diff (records never hold secrets; this drops internal fields)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}
