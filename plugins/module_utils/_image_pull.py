# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Pulling an image by tag or digest and reporting its digest: shared by
# docker_image_pull and docker_release (preflight and release).

from __future__ import annotations

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerException,
    RequestException,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_ref import (
    ImageRefError,
    repo_digest,
    split_reference,
    validate_reference,
)


class ImagePuller:
    def __init__(self, client, name, tag=None, digest=None, platform=None):
        self.client = client
        self.platform = platform
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
        kwargs = {"platform": self.platform} if self.platform else {}
        try:
            self.client.api.pull(self.repository, tag=self.digest or self.tag, **kwargs)
            if self.digest and self.tag:
                self.client.api.tag(self.reference, self.repository, tag=self.tag)
        except (DockerException, RequestException) as exc:
            self.client.fail("pulling %s failed: %s" % (self.reference, exc))

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
        return result
