#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_image_pull
short_description: Pull an image by tag or digest and report its digest
version_added: 0.1.0
description:
  - Pulls an image from its registry into the Docker engine of the managed host.
  - Pull by tag to follow a tag, or by digest to get exactly one image.
  - Returns the image ID and the digest the image has in its repository, so later
    tasks can run the container by digest.
  - A tag is always checked against its registry (layers already present are not downloaded again);
    an image pulled by digest is immutable and never pulled twice.
  - In check mode the registry is asked for the current digest of the tag (no layers
    are downloaded), so a check run predicts whether a real run would change anything.
  - A pull that fails on the network (connection reset or refused, TLS handshake timeout, 502/503/504),
    as pulls in flight do when a registry's virtual IP moves to another node, is tried again up to
    three times in all, after 1 s and 2 s. Docker retries only layer downloads itself, not the manifest
    and token requests. Errors about the image or its access (unknown manifest, denied, bad certificate)
    fail at once.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Image repository, with its registry host and port when not Docker Hub.
      - May carry a tag or digest (V(repo:tag), V(repo@sha256:...)) when O(tag) and O(digest) are not given.
    type: str
    required: true
  tag:
    description:
      - Tag to pull. Defaults to V(latest) when neither a tag nor a digest is given.
    type: str
  digest:
    description:
      - Content digest to pull (V(sha256:) and 64 hex digits). Wins over O(tag) for what is pulled;
        with both, the tag is kept pointing at the pulled image.
    type: str
  platform:
    description:
      - Platform to pull, such as V(linux/amd64). The engine's own platform when not set.
    type: str
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Pull the app image of the release
  dockyard.fleet.docker_image_pull:
    name: registry.example.com:5000/shop/web
    tag: 3f9c2a1e4b7d8c6f5a0e9d8c7b6a5f4e3d2c1b0a
  register: pulled

- name: Pull exactly the digest the release recorded
  dockyard.fleet.docker_image_pull:
    name: "registry.example.com:5000/shop/web@{{ pulled.digest }}"
"""

RETURN = r"""
image_id:
  description: ID of the pulled image (its config digest).
  returned: success, except in check mode when the image is absent
  type: str
  sample: sha256:1b2d8d1f1c4c0a7e6b7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b
digest:
  description: Manifest digest of the image in the repository O(name); pull or run by this digest.
  returned: success
  type: str
  sample: sha256:5a8c3fd3a5de1b7a6a8e4a0e7e1c2d3b4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c
attempts:
  description: How many pulls it took (more than 1 when a network error was retried).
  returned: when the image was pulled
  type: int
  sample: 1
reference:
  description: The reference that was pulled.
  returned: success
  type: str
  sample: registry.example.com:5000/shop/web:3f9c2a1e4b7d8c6f5a0e9d8c7b6a5f4e3d2c1b0a
"""

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_pull import ImagePuller


def main():
    argument_spec = {
        "name": {"type": "str", "required": True},
        "tag": {"type": "str"},
        "digest": {"type": "str"},
        "platform": {"type": "str"},
    }
    module = docker_module(argument_spec, supports_check_mode=True)
    client = DockerClient(module)
    puller = ImagePuller(
        client, module.params["name"], module.params["tag"], module.params["digest"], module.params["platform"]
    )
    module.exit_json(**puller.run(module.check_mode))


if __name__ == "__main__":
    main()
