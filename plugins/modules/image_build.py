#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_build
short_description: Build an image from a Git repository, tag it by the commit SHA, push it
version_added: 0.1.0
description:
  - Checks out O(ref) of a Git repository on the build host, resolves the full commit SHA, builds the image
    tagged C(<image>:<sha>) (plus O(tags), such as the version of a base image), and pushes it.
  - The image carries labels recording the source repository, the SHA, the build time, its kind, and the
    B(digest of the parent image) it was built FROM, with its lineage depth; M(dockyard.fleet.image_audit)
    reads them to catch a base rebuilt under the same tag.
  - When C(<image>:<sha>) is already in the registry with the same build inputs (SHA, parent digest, build
    args, secret build args, Dockerfile, context), nothing is built and nothing changes.
  - An unknown ref fails naming the ref; a local working tree with uncommitted changes fails when O(ref) is
    V(HEAD), since what would be built is in no commit.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.actiongroup_docker
  - dockyard.fleet.registry
attributes:
  check_mode:
    support: full
    details: Resolves the ref and the parent, compares with the registry, reports whether it would build.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  repo:
    description:
      - Git repository URL, or a path on the build host.
    type: str
    required: true
  ref:
    description:
      - Branch, tag or commit to build.
    type: str
    default: HEAD
  image:
    description:
      - Repository to tag and push, with its registry, such as V(registry.example.com:5000/shop/web).
    type: str
    required: true
  kind:
    description:
      - V(base) (OS) and V(middleware) images are tagged by software version in O(tags); V(app) images by
        Git SHA only.
    type: str
    default: app
    choices: [base, middleware, app]
  tags:
    description:
      - Extra tags, such as the software version of a base image.
    type: list
    elements: str
    default: []
  context:
    description:
      - Build context, relative to the repository root.
    type: str
    default: .
  dockerfile:
    description:
      - Dockerfile, relative to the context.
    type: str
    default: Dockerfile
  build_args:
    description:
      - Build arguments. They end up in the image history; use O(secret_build_args) for secrets.
    type: dict
    default: {}
  secret_build_args:
    description:
      - Build arguments that are secrets; never logged, and only a hash of them enters the build inputs.
      - The legacy builder still records build args in the image history; prefer runtime secrets.
    type: dict
    default: {}
  checkout_dir:
    description:
      - Where the build host keeps the checkout. V(/var/lib/dockyard/build/<image name>) when not given.
    type: path
  push:
    description:
      - Push the tags to the registry.
    type: bool
    default: true
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Build the app from its repository at main, tagged by SHA
  dockyard.fleet.image_build:
    repo: https://git.example.com/shop/web.git
    ref: main
    image: registry.example.com:5000/shop/web
  register: web_image

- name: Build the OS base, tagged by SHA and by version
  dockyard.fleet.image_build:
    repo: https://git.example.com/images/debian.git
    ref: v12.8
    image: registry.example.com:5000/base/debian
    kind: base
    tags: ["12.8", "12"]
"""

RETURN = r"""
sha:
  description: The full commit SHA that was (or would be) built.
  returned: success
  type: str
  sample: 3f9c2a1e4b7d8c6f5a0e9d8c7b6a5f4e3d2c1b0a
image:
  description: The image reference tagged by SHA.
  returned: success
  type: str
  sample: registry.example.com:5000/shop/web:3f9c2a1e4b7d8c6f5a0e9d8c7b6a5f4e3d2c1b0a
digest:
  description: The manifest digest in the registry (none in check mode when a build is needed).
  returned: success
  type: str
built:
  description: Whether an image was built.
  returned: success
  type: bool
parent:
  description: The image it is built FROM, with the digest that tag pointed to, and the lineage depth.
  returned: success
  type: dict
  sample: {ref: "registry.example.com:5000/base/debian:12", digest: "sha256:...", depth: 2}
labels:
  description: The labels of the image.
  returned: success
  type: dict
"""

import datetime
import os
import re

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_lineage import (
    LABEL_INPUTS,
    build_inputs,
    depth_of,
    image_labels,
    parse_from,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_pull import ImagePuller
from ansible_collections.dockyard.fleet.plugins.module_utils._image_ref import normalize_repository, split_reference
from ansible_collections.dockyard.fleet.plugins.module_utils._registry import (
    REGISTRY_AUTH_ARGS,
    RegistryClient,
    RegistryError,
)


def registry_and_repository(image):
    """('registry host[:port]', 'path') of an image, Docker Hub's API host for Hub names."""
    registry, path = normalize_repository(image).split("/", 1)
    return ("registry-1.docker.io" if registry == "docker.io" else registry), path


class Builder:
    def __init__(self, module, client):
        self.module = module
        self.params = module.params
        self.client = client
        name = self.params["image"].rsplit("/", 1)[-1]
        self.checkout = self.params["checkout_dir"] or os.path.join("/var/lib/dockyard/build", name)

    # ------------------------------------------------------------------ git
    def git(self, *args, cwd=None):
        rc, out, err = self.module.run_command(["git", *args], cwd=cwd)
        return rc, out.strip(), err.strip()

    def checkout_ref(self):
        """Clone or fetch, then check out the ref's commit; the full SHA."""
        repo, ref = self.params["repo"], self.params["ref"]
        if os.path.isdir(repo) and ref == "HEAD":
            rc, out, err = self.git("status", "--porcelain", cwd=repo)
            if rc == 0 and out:
                self.module.fail_json(
                    msg="the working tree %s has uncommitted changes: commit them, or give a ref to build" % repo
                )
        if not os.path.isdir(os.path.join(self.checkout, ".git")):
            os.makedirs(os.path.dirname(self.checkout), exist_ok=True)
            rc, dummy, err = self.git("clone", "--quiet", "--no-checkout", repo, self.checkout)
            if rc != 0:
                self.module.fail_json(msg="cannot clone %s: %s" % (repo, err))
        else:
            self.git("remote", "set-url", "origin", repo, cwd=self.checkout)
            rc, dummy, err = self.git(
                "fetch",
                "--quiet",
                "--force",
                "--tags",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
                cwd=self.checkout,
            )
            if rc != 0:
                self.module.fail_json(msg="cannot fetch %s: %s" % (repo, err))
        sha = self.resolve(ref)
        rc, dummy, err = self.git("checkout", "--quiet", "--force", sha, cwd=self.checkout)
        if rc == 0:
            rc, dummy, err = self.git("clean", "--quiet", "-fdx", cwd=self.checkout)
        if rc != 0:
            self.module.fail_json(msg="cannot check out %s: %s" % (sha, err))
        return sha

    def resolve(self, ref):
        # Remote branches first: the checkout's own local branches are frozen at clone time.
        candidates = ["origin/%s" % ref, ref] if ref != "HEAD" else ["origin/HEAD", "HEAD"]
        for candidate in candidates:
            rc, out, dummy = self.git("rev-parse", "--verify", "--quiet", "%s^{commit}" % candidate, cwd=self.checkout)
            if rc == 0 and re.match(r"^[0-9a-f]{40}$", out):
                return out
        self.module.fail_json(msg="ref %r not found in %s" % (ref, self.params["repo"]))

    # ------------------------------------------------------------------ parent
    def parent(self):
        """(ref, digest, labels) of the image the Dockerfile builds FROM, pulled so the build uses that digest."""
        path = os.path.join(self.checkout, self.params["context"], self.params["dockerfile"])
        try:
            with open(path, encoding="utf-8") as handle:
                ref = parse_from(handle.read(), {**self.params["build_args"], **self.params["secret_build_args"]})
        except (OSError, ValueError) as exc:
            self.module.fail_json(msg="cannot read the FROM line of %s: %s" % (path, exc))
        if ref == "scratch":
            return ref, "", {}
        repository, tag, digest = split_reference(ref)
        result = ImagePuller(self.client, repository, tag=tag, digest=digest).run(check_mode=False)
        inspect = self.client.image_or_none(result["reference"]) or {}
        return ref, result["digest"], (inspect.get("Config") or {}).get("Labels") or {}

    # ------------------------------------------------------------------ registry
    def registry(self):
        registry, repository = registry_and_repository(self.params["image"])
        client = RegistryClient(
            registry, self.params["registry_username"], self.params["registry_password"], timeout=30
        )
        return client, repository

    def existing(self, sha):
        client, repository = self.registry()
        try:
            return client.labels(repository, sha)
        except RegistryError as exc:
            self.module.fail_json(msg="cannot read %s:%s from its registry: %s" % (self.params["image"], sha, exc))

    # ------------------------------------------------------------------ build and push
    def build(self, sha, labels):
        tag = "%s:%s" % (self.params["image"], sha)
        try:
            output = self.client.api.build(
                path=os.path.join(self.checkout, self.params["context"]),
                dockerfile=self.params["dockerfile"],
                tag=tag,
                buildargs={**self.params["build_args"], **self.params["secret_build_args"]},
                labels=labels,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            log = []
            for chunk in output:
                if "error" in chunk:
                    self.module.fail_json(
                        msg="building %s failed: %s" % (tag, chunk["error"].strip()), build_log=log[-20:]
                    )
                if chunk.get("stream"):
                    log.append(chunk["stream"].rstrip())
        except (DockerException, RequestException) as exc:
            self.client.fail("building %s failed: %s" % (tag, exc))
        return tag

    def push(self, sha):
        auth = None
        if self.params["registry_username"]:
            auth = {"username": self.params["registry_username"], "password": self.params["registry_password"]}
        digest = None
        for tag in [sha, *self.params["tags"]]:
            if tag != sha:
                self.client.api.tag("%s:%s" % (self.params["image"], sha), self.params["image"], tag=tag)
            try:
                for chunk in self.client.api.push(
                    self.params["image"], tag=tag, stream=True, decode=True, auth_config=auth
                ):
                    if "error" in chunk:
                        self.module.fail_json(
                            msg="pushing %s:%s failed: %s" % (self.params["image"], tag, chunk["error"])
                        )
                    digest = (chunk.get("aux") or {}).get("Digest") or digest
            except (DockerException, RequestException) as exc:
                self.client.fail("pushing %s:%s failed: %s" % (self.params["image"], tag, exc))
        return digest

    def run(self):
        sha = self.checkout_ref()
        parent_ref, parent_digest, parent_labels = self.parent()
        inputs = build_inputs(
            sha,
            parent_digest,
            self.params["build_args"],
            self.params["secret_build_args"],
            self.params["dockerfile"],
            self.params["context"],
            None,
        )
        result = {
            "sha": sha,
            "image": "%s:%s" % (self.params["image"], sha),
            "parent": {"ref": parent_ref, "digest": parent_digest, "depth": depth_of(parent_labels)},
        }
        digest, labels = self.existing(sha) if self.params["push"] else (None, None)
        if labels and labels.get(LABEL_INPUTS) == inputs and self.tags_present(digest):
            return dict(result, changed=False, built=False, digest=digest, labels=labels)
        created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        labels = image_labels(
            self.params["repo"],
            sha,
            created,
            self.params["kind"],
            parent_ref,
            parent_digest,
            depth_of(parent_labels),
            inputs,
            # Labels are inherited: an app would otherwise show its middleware's version.
            version=self.params["tags"][0] if self.params["tags"] else sha,
        )
        if self.module.check_mode:
            return dict(result, changed=True, built=False, digest=None, labels=labels)
        self.build(sha, labels)
        digest = self.push(sha) if self.params["push"] else None
        return dict(result, changed=True, built=True, digest=digest, labels=labels)

    def tags_present(self, digest):
        """The extra tags point at the same image too (a version tag may have been moved by hand)."""
        client, repository = self.registry()
        for tag in self.params["tags"]:
            try:
                tagged, dummy = client.manifest(repository, tag)
            except RegistryError:
                return False
            if tagged != digest:
                return False
        return True


def main():
    argument_spec = {
        "repo": {"type": "str", "required": True},
        "ref": {"type": "str", "default": "HEAD"},
        "image": {"type": "str", "required": True},
        "kind": {"type": "str", "default": "app", "choices": ["base", "middleware", "app"]},
        "tags": {"type": "list", "elements": "str", "default": []},
        "context": {"type": "str", "default": "."},
        "dockerfile": {"type": "str", "default": "Dockerfile"},
        "build_args": {"type": "dict", "default": {}},
        "secret_build_args": {"type": "dict", "default": {}, "no_log": True},
        "checkout_dir": {"type": "path"},
        "push": {"type": "bool", "default": True},
        **REGISTRY_AUTH_ARGS,
    }
    module = docker_module(
        argument_spec, supports_check_mode=True, required_together=[["registry_username", "registry_password"]]
    )
    if module.params["kind"] == "app" and module.params["tags"]:
        module.fail_json(
            msg="app images are tagged by Git SHA only; tags %s are for base and middleware images"
            % module.params["tags"]
        )
    if module.get_bin_path("git") is None:
        module.fail_json(msg="git is not installed on the build host")
    client = DockerClient(module)
    module.exit_json(**Builder(module, client).run())


if __name__ == "__main__":
    main()
