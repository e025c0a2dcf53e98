# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# Image references (registry/repository:tag@digest): parsing and the digest
# that a pulled image has in a given repository. Pure functions, unit-tested.

from __future__ import annotations

import re

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# A tag per the distribution spec: [\w][\w.-]{0,127}
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
# Lowercase path components separated by /, optional registry host[:port] in front.
REPOSITORY_RE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)$"
)


class ImageRefError(ValueError):
    pass


def split_reference(reference):
    """Split 'repo[:tag][@digest]' into (repository, tag or None, digest or None)."""
    digest = None
    if "@" in reference:
        reference, digest = reference.split("@", 1)
    tag = None
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        reference, tag = reference.rsplit(":", 1)
    return reference, tag, digest


def validate_reference(repository, tag=None, digest=None):
    """Raise ImageRefError naming the bad part of an image reference."""
    match = REPOSITORY_RE.match(repository or "")
    if not match:
        raise ImageRefError("invalid image repository %r: expected [registry[:port]/]path in lowercase" % repository)
    if tag is not None and not TAG_RE.match(tag):
        raise ImageRefError("invalid image tag %r: expected letters, digits, '.', '_' or '-', 128 at most" % tag)
    if digest is not None and not DIGEST_RE.match(digest):
        raise ImageRefError("invalid image digest %r: expected sha256: and 64 hex digits" % digest)


def normalize_repository(repository):
    """The fully qualified form: Docker Hub names get their docker.io[/library] prefix."""
    first, sep = repository.partition("/")[:2]
    if sep and ("." in first or ":" in first or first == "localhost"):
        return repository
    if not sep:
        return "docker.io/library/" + repository
    return "docker.io/" + repository


def repo_digest(image_inspect, repository):
    """The sha256 digest the image has in this repository, from its RepoDigests; None if unknown."""
    if not image_inspect:
        return None
    wanted = normalize_repository(repository)
    for entry in image_inspect.get("RepoDigests") or []:
        repo, dummy, digest = entry.partition("@")
        if normalize_repository(repo) == wanted:
            return digest
    return None
