#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: volume_backup
short_description: Consistent, verified, incremental backups and restores of Docker volumes
version_added: 0.1.0
description:
  - Backs up a named volume (or a list of them, or every volume with given labels) into a directory on the
    host, a directory on a backup host over SSH, or an S3 bucket, as a PAX tar streamed through
    C(zstd) or C(gzip) (and C(age) when encrypted) straight into the destination, with no staging copy.
    Every file is hashed while it is read, so the manifest costs no second read.
  - Writes a manifest beside the archive (C(<id>.manifest.json)) with, per path, the type, size, mode, owner,
    mtime (ns), sha256, link target and extended attributes, plus the archive's own sha256, the volume's
    driver, options and labels, when, from which host, and which containers were stopped or paused.
  - Incremental; when the volume's manifest equals the newest good backup's, nothing is written and the task
    reports C(changed=false). Unchanged files are recognised by their inode, ctime, size and mtime, so the
    check reads no file data.
  - Containers that mount the volume are found automatically and stopped, paused, or asked to run a command
    first (O(consistency)); stopped or paused containers are always started or unpaused again, also when the
    backup fails. An archive is renamed into place only when complete, so a failed backup never leaves a
    partial archive counted as good.
  - O(state=verify) checks the archive's digest, or (V(full)) re-reads it and checks every file against the
    manifest, failing with the first bad path. O(state=restore) recreates the volume with its original
    driver, options and labels, refuses a non-empty volume unless O(force), extracts into a temporary volume,
    checks every file and swaps only then, so a failed restore leaves the old data.
  - With O(volumes) or O(volume_labels) each volume runs on its own, as if it were the only one (its own
    lock, backup, verification and retention); a failure on one does not stop the others, and the task
    fails at the end naming every volume that failed. The result then holds one entry per volume in
    RV(results).
  - A plain C(local) volume is read in place through its mountpoint; any other volume (other drivers, or
    C(local) with a mount type such as tmpfs or nfs) through a helper container (O(helper_image)).
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    details: Reports the backup that would be written, the containers that would be stopped and the backups
      that would be pruned; nothing is stopped, written or removed.
  diff_mode:
    support: full
    details: Shows the newest backup (and the volume's file counts) before and after.
  idempotent:
    support: full
options:
  volume:
    description:
      - Name of the Docker volume.
      - Exactly one of O(volume), O(volumes) and O(volume_labels) is required.
    type: str
  volumes:
    description:
      - Names of several Docker volumes, worked on one after the other in this order (each name once).
      - An empty list does nothing (with a warning).
    type: list
    elements: str
  volume_labels:
    description:
      - Selects the volumes on this host that carry every one of these labels with these values (Docker's
        C(label=key=value) filter), in name order. A selection that matches nothing does nothing (with a
        warning).
      - Only volumes that exist are found; to restore volumes that are gone, name them in O(volume) or
        O(volumes).
    type: dict
  state:
    description:
      - V(backup) writes a new backup when the volume changed since the newest good one.
      - V(verify) checks a backup (O(backup_id)) in the way O(verify) says and records the result.
      - V(restore) puts a backup (O(backup_id)) into the volume.
      - V(pruned) only applies O(retention).
    type: str
    default: backup
    choices: [backup, verify, restore, pruned]
  destination:
    description:
      - Directory on the host holding the backups; each volume gets the subdirectory C(<destination>/<volume>)
        (mode 0700; archives and manifests are 0600).
      - Archives are written past the page cache (C(O_DIRECT)) where the file system allows it, and are fsynced
        before the backup counts; a backup does not push the applications' data out of the cache.
      - Exactly one of O(destination), O(s3) and O(ssh) is required.
    type: path
  s3:
    description:
      - An S3 bucket holding the backups instead of a directory, with the same layout under
        C(<prefix><volume>/). Path-style requests signed with AWS Signature Version 4 (Python C(requests)
        on the host). An archive is streamed into a multipart upload (16 MiB parts) with no staging copy and
        exists only once the upload is completed; a failed backup aborts its upload, and uploads left by a
        crashed run of this host are aborted by the next run.
      - The bucket must exist. Runs on one volume and bucket prefix are serialized per host only, so give
        each host its own O(s3.prefix) (or back up each volume from one host).
    type: dict
    suboptions:
      endpoint:
        description: Base URL of the S3 service, for example V(https://s3.eu-west-1.amazonaws.com) or V(http://10.0.0.5:8333).
        type: str
        required: true
      bucket:
        description: Name of the bucket.
        type: str
        required: true
      access_key:
        description: Access key id.
        type: str
        required: true
      secret_key:
        description: Secret access key.
        type: str
        required: true
      region:
        description: Region the requests are signed for.
        type: str
        default: us-east-1
      prefix:
        description: Prefix of every key, for example V(backups/host1/) (include the trailing slash).
        type: str
        default: ""
  ssh:
    description:
      - A directory on a backup host holding the backups instead of a local one, with the same layout
        (C(<path>/<volume>/)), reached with this host's OpenSSH client (key authentication, C(BatchMode); the
        backup host needs only a POSIX shell, C(cat), C(mv), C(rm), C(sync) and GNU C(find)).
      - The archive is streamed into C(ssh host 'cat > .<id>.partial') with no staging copy, fsynced there, and
        renamed into place only when the whole archive was sent; a failed backup removes its partial. Verify
        and restore read the archive back through C(ssh host cat).
      - The commands of one run share one SSH connection (C(ControlMaster), its socket in a private directory,
        closed when the run ends).
      - Runs on one volume and path are serialized per host only, so give each host its own O(ssh.path).
      - Exactly one of O(destination), O(s3) and O(ssh) is required.
    type: dict
    suboptions:
      host:
        description: Name or address of the backup host.
        type: str
        required: true
      path:
        description: Directory on the backup host, for example V(/srv/offhost/host1).
        type: str
        required: true
      user:
        description: User to log in as (default that of the SSH client's configuration).
        type: str
      port:
        description: SSH port of the backup host.
        type: int
        default: 22
      identity_file:
        description: Private key to log in with (default the SSH client's own keys).
        type: path
      ssh_args:
        description:
          - More options for C(ssh), for example V([-o, StrictHostKeyChecking=accept-new]).
          - They come before the module's own options, and C(ssh) keeps the first value of an option, so
            V([-o, ControlMaster=no]) turns the shared connection off.
        type: list
        elements: str
        default: []
  backup_id:
    description:
      - With O(state=verify) or O(state=restore), the backup to use; V(latest) is the newest good backup.
    type: str
    default: latest
  consistency:
    description:
      - What is done to the running containers that mount the volume while it is read (and while a restore
        swaps it in; a restore always stops them).
      - V(stop) stops them and starts them again; V(pause) freezes them (no shutdown; data in memory is not
        flushed); V(exec) runs O(consistency_command) in each first (for example a database dump into the
        volume) and then reads the volume live; V(none) reads it live.
    type: str
    default: stop
    choices: [stop, pause, exec, none]
  consistency_command:
    description:
      - With O(consistency=exec), the command (argv list) run in each container that mounts the volume; a
        non-zero exit fails the backup before anything is written.
    type: list
    elements: str
  stop_timeout:
    description:
      - Seconds a container gets to stop before it is killed (O(consistency=stop) and restores).
    type: int
    default: 30
  compression:
    description:
      - V(zstd) (multi-threaded, the default), V(gzip), or V(none).
    type: str
    default: zstd
    choices: [zstd, gzip, none]
  compression_level:
    description:
      - Level for the compressor; V(3) for zstd and V(6) for gzip when not given.
    type: int
  encryption:
    description:
      - Encrypt archives with C(age), to every recipient in O(encryption.recipients), to the key of
        O(encryption.passphrase), or (with neither) to the key of O(encryption.identity). Any one of them
        reads the backup again. Restoring or fully verifying an encrypted backup needs O(encryption.identity)
        or O(encryption.passphrase).
      - At least one of O(encryption.recipients), O(encryption.passphrase) and O(encryption.identity) is
        required.
    type: dict
    suboptions:
      recipients:
        description: age public keys (C(age1...)).
        type: list
        elements: str
      identity:
        description: An age secret key (C(AGE-SECRET-KEY-1...)) for restore and V(full) verification.
        type: str
      passphrase:
        description:
          - A passphrase instead of keys. C(age -p) reads passphrases only from a terminal, so the module
            derives an age key from the passphrase with scrypt (2^15, 8, 1) and a random salt per backup,
            recorded in the manifest (the salt is not secret), and encrypts to that key. Restoring needs
            only the passphrase. The derived key exists only in a 0600 temporary file during the task.
        type: str
  verify:
    description:
      - How a backup is checked, right after O(state=backup) and by O(state=verify). V(digest) compares the
        archive's sha256 and size with the manifest; V(full) re-reads the archive and checks every file.
        V(none) skips the check after a backup (O(state=verify) then uses V(digest)).
    type: str
    default: digest
    choices: [none, digest, full]
  retention:
    description:
      - Which backups of this volume to keep; the others are removed after a backup and with
        O(state=pruned). The union of the rules is kept, and the newest good backup always. Without any
        count nothing is pruned.
    type: dict
    suboptions:
      last:
        description: Keep the N newest good backups.
        type: int
      daily:
        description: Keep the newest good backup of each of the N most recent days that have one.
        type: int
      weekly:
        description: Same per ISO week.
        type: int
      monthly:
        description: Same per calendar month.
        type: int
  force:
    description:
      - With O(state=restore), replace the data of a volume that is not empty.
    type: bool
    default: false
  access:
    description:
      - How the volume's files are reached. V(auto) reads a plain local volume through its mountpoint and
        every other volume through a helper container; V(helper) always uses the helper.
    type: str
    default: auto
    choices: [auto, mountpoint, helper]
  helper_image:
    description:
      - Image of the helper container (needs C(sleep), C(sh), C(find) and C(cp)); pulled when missing.
    type: str
    default: debian:bookworm
  lock_timeout:
    description:
      - Seconds to wait for another run on the same volume and destination.
    type: int
    default: 600
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Back up the database volume (containers stopped briefly), keep a week of dailies
  dockyard.fleet.volume_backup:
    volume: shop_data_pg
    destination: /srv/backups
    consistency: stop
    retention: {last: 3, daily: 7}

- name: Back up every data volume of the shop (labels set by the storage role), each on its own
  dockyard.fleet.volume_backup:
    volume_labels:
      dockyard.fleet.app: shop
      dockyard.fleet.data: "true"
    destination: /srv/backups
    retention: {last: 3, daily: 7}

- name: Back up straight onto a backup host over SSH (no copy on this host)
  dockyard.fleet.volume_backup:
    volume: shop_data_pg
    ssh:
      host: backup1.example.net
      user: backup
      path: "/srv/offhost/{{ inventory_hostname }}"
      identity_file: /root/.ssh/dockyard_backup

- name: Back up with a dump first, encrypted
  dockyard.fleet.volume_backup:
    volume: shop_data_pg
    destination: /srv/backups
    consistency: exec
    consistency_command: [sh, -c, "pg_dumpall -U postgres > /var/lib/postgresql/dump.sql"]
    encryption:
      recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]

- name: Back up into an S3 bucket (a MinIO, SeaweedFS or AWS endpoint)
  dockyard.fleet.volume_backup:
    volume: shop_data_pg
    s3:
      endpoint: https://s3.eu-west-1.amazonaws.com
      region: eu-west-1
      bucket: shop-backups
      prefix: "{{ inventory_hostname }}/"
      access_key: "{{ vault_backup_access_key }}"
      secret_key: "{{ vault_backup_secret_key }}"
    retention: {last: 3, daily: 7}

- name: Check every file of the newest backup
  dockyard.fleet.volume_backup:
    volume: shop_data_pg
    destination: /srv/backups
    state: verify
    verify: full

- name: Restore a given backup over existing data
  dockyard.fleet.volume_backup:
    volume: shop_data_pg
    destination: /srv/backups
    state: restore
    backup_id: 20261128T031500.000000Z-1a2b3c
    force: true
"""

RETURN = r"""
backup_id:
  description: The backup written, verified or restored (the newest good one when nothing was written).
  returned: when there is one
  type: str
  sample: 20261128T031500.123456Z-1a2b3c
archive:
  description: Path of its archive (C(s3://bucket/key) for an S3 destination).
  returned: when there is a backup
  type: str
  sample: /srv/backups/shop_data_pg/20261128T031500.123456Z-1a2b3c.tar.zst
manifest:
  description: Path of its manifest (C(s3://bucket/key) for an S3 destination).
  returned: when there is a backup
  type: str
bytes_in:
  description: Bytes of file data read (backup) or written (restore).
  returned: always
  type: int
bytes_out:
  description: Size of the archive written (backup) or read (restore, verify).
  returned: always
  type: int
duration:
  description: Seconds the backup, verification or restore took.
  returned: always
  type: float
throughput_mb_s:
  description: File data per second (MB = 10^6 bytes).
  returned: always
  type: float
ratio:
  description: bytes_out / bytes_in.
  returned: always
  type: float
containers:
  description: Containers stopped, paused or exec'd into (all running again when the task ends).
  returned: always
  type: list
  elements: str
changes:
  description: Paths added, removed and changed since the newest good backup (the first 20 of each) and counts.
  returned: state=backup
  type: dict
verified:
  description: The verification recorded (ok, mode, at, detail).
  returned: when a verification ran
  type: dict
pruned:
  description: Backups removed (or that would be, in check mode) by O(retention).
  returned: always
  type: list
  elements: str
kept:
  description: Backups kept by O(retention).
  returned: when retention is set
  type: list
  elements: str
skipped_paths:
  description:
    - Paths left out of the backup (sockets, device nodes), relative to the volume's root.
    - Not named C(skipped), which Ansible reads as "the task was skipped".
  returned: state=backup
  type: list
  elements: str
volumes:
  description: The volumes worked on, in order.
  returned: with O(volumes) or O(volume_labels)
  type: list
  elements: str
  sample: [shop_data_pg, shop_data_uploads]
results:
  description:
    - One result per volume, with the keys a single-volume task returns plus RV(results[].volume), and
      C(failed) and C(msg) for a volume that failed. RV(bytes_in), RV(bytes_out) and RV(duration) are then
      the sums over the volumes.
  returned: with O(volumes) or O(volume_labels)
  type: list
  elements: dict
  contains:
    volume:
      description: The volume this entry is about.
      type: str
      sample: shop_data_pg
"""

import shutil

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._volume_backup_batch import run_volumes
from ansible_collections.dockyard.fleet.plugins.module_utils._volume_backup_runner import VolumeBackup


def main():
    argument_spec = {
        "volume": {"type": "str"},
        "volumes": {"type": "list", "elements": "str"},
        "volume_labels": {"type": "dict"},
        "state": {"type": "str", "default": "backup", "choices": ["backup", "verify", "restore", "pruned"]},
        "destination": {"type": "path"},
        "s3": {
            "type": "dict",
            "options": {
                "endpoint": {"type": "str", "required": True},
                "bucket": {"type": "str", "required": True},
                "access_key": {"type": "str", "required": True, "no_log": True},
                "secret_key": {"type": "str", "required": True, "no_log": True},
                "region": {"type": "str", "default": "us-east-1"},
                "prefix": {"type": "str", "default": ""},
            },
        },
        "ssh": {
            "type": "dict",
            "options": {
                "host": {"type": "str", "required": True},
                "path": {"type": "str", "required": True},
                "user": {"type": "str"},
                "port": {"type": "int", "default": 22},
                "identity_file": {"type": "path"},
                "ssh_args": {"type": "list", "elements": "str", "default": []},
            },
        },
        "backup_id": {"type": "str", "default": "latest"},
        "consistency": {"type": "str", "default": "stop", "choices": ["stop", "pause", "exec", "none"]},
        "consistency_command": {"type": "list", "elements": "str"},
        "stop_timeout": {"type": "int", "default": 30},
        "compression": {"type": "str", "default": "zstd", "choices": ["zstd", "gzip", "none"]},
        "compression_level": {"type": "int"},
        "encryption": {
            "type": "dict",
            "options": {
                "recipients": {"type": "list", "elements": "str"},
                "identity": {"type": "str", "no_log": True},
                "passphrase": {"type": "str", "no_log": True},
            },
            "required_one_of": [("recipients", "passphrase", "identity")],
        },
        "verify": {"type": "str", "default": "digest", "choices": ["none", "digest", "full"]},
        "retention": {
            "type": "dict",
            "options": {
                "last": {"type": "int"},
                "daily": {"type": "int"},
                "weekly": {"type": "int"},
                "monthly": {"type": "int"},
            },
        },
        "force": {"type": "bool", "default": False},
        "access": {"type": "str", "default": "auto", "choices": ["auto", "mountpoint", "helper"]},
        "helper_image": {"type": "str", "default": "debian:bookworm"},
        "lock_timeout": {"type": "int", "default": 600},
    }
    module = docker_module(
        argument_spec,
        supports_check_mode=True,
        required_if=[("consistency", "exec", ["consistency_command"])],
        required_one_of=[("destination", "s3", "ssh"), ("volume", "volumes", "volume_labels")],
        mutually_exclusive=[("destination", "s3", "ssh"), ("volume", "volumes", "volume_labels")],
    )
    for tool in ["zstd"] if module.params["compression"] == "zstd" else []:
        if shutil.which(tool) is None:
            module.fail_json(msg="compression=zstd needs the zstd binary on this host (Debian package zstd)")
    if module.params["encryption"] and shutil.which("age") is None:
        module.fail_json(msg="encryption needs the age binary on this host (Debian package age)")
    client = DockerClient(module)
    if module.params["volume"] is None:
        run_volumes(module, client)
    runner = VolumeBackup(module, client)
    try:
        result = runner.run()
    except (DockerException, RequestException) as exc:
        runner.fail("volume %s: the Docker engine refused: %s" % (module.params["volume"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
