# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Installed by the dockyard.fleet.storage role; run by its systemd timers (no Ansible on the host).

  dockyard-volume-backup run JOB.json      back one volume up with the settings of JOB.json (written by the
                                           role), prune, then copy the volume's backups off-host (rsync
                                           over SSH and/or an S3 bucket, mirrored)
  dockyard-volume-backup status JOB.json...  print each volume's newest verified backup and its age; exit 1
                                           when one is older than the job's max_age (or missing while the
                                           volume itself is older than that)

The backup itself is the collection's own code (the volume_backup module's runner), bundled with this
script by the role, so a timer run and an Ansible run write the same archives and manifests.
"""

import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the zip application holding the code

from ansible_collections.dockyard.fleet.plugins.module_utils._backup_s3 import S3Client, S3Error, sync_directory
from ansible_collections.dockyard.fleet.plugins.module_utils._backup_store import DirectoryStore
from ansible_collections.dockyard.fleet.plugins.module_utils._docker_api import EngineAPI, NotFound
from ansible_collections.dockyard.fleet.plugins.module_utils._volume_backup_runner import VolumeBackup

DEFAULTS = {
    "state": "backup",
    "backup_id": "latest",
    "consistency": "stop",
    "consistency_command": None,
    "stop_timeout": 30,
    "compression": "zstd",
    "compression_level": None,
    "encryption": None,
    "verify": "digest",
    "retention": None,
    "force": False,
    "access": "auto",
    "helper_image": "debian:bookworm",
    "lock_timeout": 600,
    "s3": None,
}


class JobFailedError(Exception):
    pass


class JobModule:
    """What the runner needs of an AnsibleModule."""

    check_mode = False
    _diff = False

    def __init__(self, params):
        self.params = params

    def fail_json(self, **result):
        raise JobFailedError(json.dumps(result, default=str))


class Client:
    """What the runner needs of the collection's DockerClient (the engine at DOCKER_HOST or its socket)."""

    def __init__(self):
        self.api = EngineAPI(os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", 120)

    def image_or_none(self, reference):
        try:
            return self.api.inspect_image(reference)
        except NotFound:
            return None


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def run(job_path):
    job = load(job_path)
    params = dict(DEFAULTS, **{k: v for k, v in job.items() if k in DEFAULTS or k in ("volume", "destination")})
    try:
        result = VolumeBackup(JobModule(params), Client()).run()
    except JobFailedError as exc:
        print("backup of %s FAILED: %s" % (job["volume"], exc), file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in result.items() if k != "changes"}, default=str))
    offhost = job.get("offhost_rsync")
    if offhost:
        source = os.path.join(job["destination"], job["volume"]) + "/"
        ssh = "ssh -i %s -o BatchMode=yes -o StrictHostKeyChecking=accept-new" % job.get("offhost_ssh_key", "")
        cmd = [
            "rsync",
            "-a",
            "--mkpath",
            "--delete-after",
            "--exclude",
            ".lock",
            "--exclude",
            ".*.partial",
            "-e",
            ssh,
            source,
            "%s/%s/" % (offhost.rstrip("/"), job["volume"]),
        ]
        copy = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if copy.returncode != 0:
            print(
                "off-host copy of %s to %s FAILED: %s" % (job["volume"], offhost, copy.stderr.strip()), file=sys.stderr
            )
            return 2
        print("copied %s off-host to %s" % (job["volume"], offhost))
    return copy_to_s3(job)


def copy_to_s3(job):
    """Mirror the volume's backup directory into the job's offhost_s3 bucket (keys never printed)."""
    spec = job.get("offhost_s3")
    if not spec:
        return 0
    prefix = "%s%s/" % (spec.get("prefix") or "", job["volume"])
    target = "s3://%s/%s" % (spec["bucket"], prefix)
    try:
        client = S3Client(
            spec["endpoint"], spec["bucket"], spec["access_key"], spec["secret_key"], spec.get("region") or "us-east-1"
        )
        done = sync_directory(client, os.path.join(job["destination"], job["volume"]), prefix)
    except (OSError, S3Error) as exc:
        print("off-host copy of %s to %s FAILED: %s" % (job["volume"], target, exc), file=sys.stderr)
        return 3
    print("copied %s off-host to %s: %s" % (job["volume"], target, json.dumps(done)))
    return 0


def status(job_paths):
    now = datetime.datetime.now(datetime.UTC)
    client, stale, report = Client(), False, []
    for path in job_paths:
        job = load(path)
        store = DirectoryStore(job["destination"], job["volume"])
        verified = [b for b in store.catalogue() if b["good"] and b["verified"]]
        max_age = int(job.get("max_age", 93600))
        entry = {"volume": job["volume"], "max_age": max_age, "newest_verified": None, "age_seconds": None}
        if verified:
            entry["newest_verified"] = verified[-1]["id"]
            entry["age_seconds"] = int((now - verified[-1]["time"]).total_seconds())
            entry["fresh"] = entry["age_seconds"] <= max_age
        else:
            created = client.api.inspect_volume(job["volume"]).get("CreatedAt")
            created_at = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")) if created else now
            entry["volume_age_seconds"] = int((now - created_at).total_seconds())
            entry["fresh"] = entry["volume_age_seconds"] <= max_age  # a new volume gets one period of grace
        stale = stale or not entry["fresh"]
        report.append(entry)
    print(json.dumps(report, indent=1))
    return 1 if stale else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "run":
        return run(argv[1])
    if len(argv) >= 2 and argv[0] == "status":
        return status(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
