# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Pulling an image by tag or digest and reporting its digest: shared by
# docker_image_pull and docker_release (preflight and release).

from __future__ import annotations

import time

# from _docker_api, not _docker_client: the storage role's timers use the retries without Ansible
from ansible_collections.dockyard.fleet.plugins.module_utils._docker_api import (
    DockerException,
    RequestException,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_ref import (
    ImageRefError,
    repo_digest,
    split_reference,
    validate_reference,
)

# A registry failover (the VIP moving to another node, a node's front restarting) resets or
# refuses the connections open at that moment. Docker retries layer downloads itself, but not
# the ping, token and manifest requests a pull starts with, so a pull in flight at a move fails
# with one of these messages although the same pull a moment later succeeds. They are the
# network's, never the image's: "manifest unknown", "unauthorized" or a bad name fail at once.
TRANSIENT_PULL_ERRORS = (
    "connection reset by peer",
    "connection refused",
    "broken pipe",
    "unexpected eof",
    "i/o timeout",
    "tls handshake timeout",
    "no route to host",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway time",
)
PULL_ATTEMPTS = 3
# seconds before the second attempt, doubled before the third: a VRRP move takes 1-4 s
PULL_RETRY_DELAY = 1.0


def is_transient_pull_error(message):
    """Whether a failed pull's message names a network hiccup that a retry can get past."""
    lowered = str(message).lower()
    return any(marker in lowered for marker in TRANSIENT_PULL_ERRORS)


def with_pull_retries(call, attempts=PULL_ATTEMPTS, delay=PULL_RETRY_DELAY, sleep=time.sleep):
    """call() until it succeeds or fails with a non-transient error; (its result, attempts made).

    The last error is raised as it came, with `attempts` set on it so the message can say so.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call(), attempt
        except (DockerException, RequestException) as exc:
            if attempt == attempts or not is_transient_pull_error(exc):
                exc.attempts = attempt
                raise
            sleep(delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable: attempts must be at least 1")


class ImagePuller:
    def __init__(self, client, name, tag=None, digest=None, platform=None):
        self.client = client
        self.platform = platform
        self.attempts = 0
        self.repository, self.tag, self.digest = self.wanted_reference(name, tag, digest)

    def wanted_reference(self, name, tag, digest):
        repository, name_tag, name_digest = split_reference(name)
        tag = tag or name_tag
        digest = digest or name_digest
        if tag is None and digest is None:
            tag = "latest"
        try:
            validate_reference(repository, tag, digest)
        except ImageRefError as exc:
            self.client.module.fail_json(msg=str(exc))
        return repository, tag, digest

    @property
    def reference(self):
        if self.digest:
            return "%s@%s" % (self.repository, self.digest)
        return "%s:%s" % (self.repository, self.tag)

    def remote_digest(self):
        """The digest the registry serves for the reference, without pulling layers."""
        try:
            data = self.client.api.inspect_distribution(self.reference)
        except (DockerException, RequestException) as exc:
            self.client.fail("cannot read %s from its registry: %s" % (self.reference, exc))
        return data["Descriptor"]["digest"]

    def pull(self):
        """Pull (retried past a registry failover: see TRANSIENT_PULL_ERRORS), then tag a digest pull."""
        kwargs = {"platform": self.platform} if self.platform else {}
        try:
            dummy, self.attempts = with_pull_retries(
                lambda: self.client.api.pull(self.repository, tag=self.digest or self.tag, **kwargs)
            )
            if self.digest and self.tag:
                self.client.api.tag(self.reference, self.repository, tag=self.tag)
        except (DockerException, RequestException) as exc:
            attempts = getattr(exc, "attempts", 1)
            after = " (after %d attempts)" % attempts if attempts > 1 else ""
            self.client.fail("pulling %s failed%s: %s" % (self.reference, after, exc))

    def pinned_and_present(self, image):
        """An image pulled by digest never changes: nothing to do when it is here and its tag points at it."""
        if image is None:
            return False
        if self.tag is None:
            return True
        tagged = self.client.image_or_none("%s:%s" % (self.repository, self.tag))
        return tagged is not None and tagged["Id"] == image["Id"]

    def pulled_image(self):
        self.pull()
        image = self.client.image_or_none(self.reference)
        if image is None:
            self.client.fail("%s was pulled but the engine does not list it" % self.reference)
        return image

    def run(self, check_mode):
        """Pull (or, in check mode, ask the registry); the module result: changed, reference, digest, image_id."""
        image = self.client.image_or_none(self.reference)
        before_digest = repo_digest(image, self.repository)
        if self.digest:
            changed = not self.pinned_and_present(image)
            after_digest = self.digest
            if changed and not check_mode:
                image = self.pulled_image()
        elif check_mode:
            after_digest = self.remote_digest()
            changed = after_digest != before_digest
        else:
            pulled = self.pulled_image()
            changed = image is None or pulled["Id"] != image["Id"]
            image, after_digest = pulled, repo_digest(pulled, self.repository)
        result = {
            "changed": changed,
            "reference": self.reference,
            "digest": after_digest,
            "diff": {"before": {"digest": before_digest}, "after": {"digest": after_digest}},
        }
        if image is not None and not (changed and check_mode):
            result["image_id"] = image["Id"]
        if self.attempts:
            result["attempts"] = self.attempts
        return result
