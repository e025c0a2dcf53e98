# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# volume_backup on several volumes (a list, or the volumes carrying given labels): each one
# runs on its own, under its own lock, exactly as a single volume does. A failure on one
# volume does not stop the others (a backup run that gives up on the remaining volumes
# because the first one failed leaves them without a backup); the task fails at the end,
# naming every volume that failed and why.

from __future__ import annotations

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerException,
    RequestException,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._volume_backup_runner import VolumeBackup

# Figures that add up over the volumes of one run.
SUMMED = ("bytes_in", "bytes_out", "duration")


class VolumeFailedError(Exception):
    """One volume's failure: the runner's message and its result so far."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


class _OneVolume:
    """The module as one volume's runner sees it: a failure is raised, not the end of the task."""

    def __init__(self, module, name):
        self._module = module
        self.params = dict(module.params, volume=name)
        self.check_mode = module.check_mode
        self._diff = module._diff

    def fail_json(self, msg, **result):
        raise VolumeFailedError(msg, result)


def label_filters(labels):
    """Docker's label filter terms for {key: value}: every label must be there with that value."""
    return ["%s=%s" % (key, value) for key, value in sorted(labels.items())]


def selected_volumes(client, params):
    """Names of the volumes to work on, in order (a list keeps its order; a label selection is sorted)."""
    if params.get("volumes") is not None:
        return list(dict.fromkeys(params["volumes"]))  # each once, first mention wins
    answer = client.api.volumes(filters={"label": label_filters(params["volume_labels"])})
    return sorted(volume["Name"] for volume in (answer or {}).get("Volumes") or [])


def combine(outcomes):
    """One task result from [(volume, result, failure message or None)] in the order they ran."""
    results = []
    for name, result, problem in outcomes:
        entry = dict(result, volume=name)
        if problem is not None:
            entry.update(failed=True, msg=problem)
        results.append(entry)
    combined = {
        "changed": any(entry.get("changed") for entry in results),
        "volumes": [entry["volume"] for entry in results],
        "results": results,
    }
    for key in SUMMED:
        combined[key] = round(sum(entry.get(key) or 0 for entry in results), 3)
    diffs = [dict(entry["diff"], volume=entry["volume"]) for entry in results if entry.get("diff")]
    if diffs:
        combined["diff"] = {
            "before": {d["volume"]: d.get("before") for d in diffs},
            "after": {d["volume"]: d.get("after") for d in diffs},
        }
    failed = [entry for entry in results if entry.get("failed")]
    if failed:
        combined["msg"] = "volume_backup failed on %d of %d volumes: %s" % (
            len(failed),
            len(results),
            "; ".join("%s: %s" % (entry["volume"], entry["msg"]) for entry in failed),
        )
    return combined


def run_one(module, client, name):
    """(result, failure message or None) of one volume, run as a single-volume task would run it."""
    runner = VolumeBackup(_OneVolume(module, name), client)
    try:
        return runner.run(), None
    except VolumeFailedError as exc:
        return exc.result, exc.msg
    except (DockerException, RequestException) as exc:
        runner.cleanup()
        return dict(runner.result), "volume %s: the Docker engine refused: %s" % (name, exc)


def run_volumes(module, client):
    """Run every selected volume; exit_json, or fail_json naming each volume that failed."""
    params = module.params
    if params.get("volume_labels") == {}:
        module.fail_json(msg="volume_labels is empty: it would select every volume on the host; give a label")
    names = selected_volumes(client, params)
    if params["backup_id"] != "latest" and params["state"] in ("verify", "restore") and len(names) != 1:
        module.fail_json(
            msg="backup_id %s names one backup of one volume, and %d volumes are selected (%s): "
            "use backup_id=latest, or name the one volume" % (params["backup_id"], len(names), ", ".join(names))
        )
    if not names:
        if params.get("volumes") is not None:
            module.warn("volumes is empty: nothing to do")
        else:
            wanted = ", ".join(label_filters(params["volume_labels"]))
            module.warn("no volume has the labels %s: nothing to do" % wanted)
    outcomes = [(name, *run_one(module, client, name)) for name in names]
    combined = combine(outcomes)
    if not module._diff:
        combined.pop("diff", None)
    if "msg" in combined:
        module.fail_json(**combined)
    module.exit_json(**combined)
