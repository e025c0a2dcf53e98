#!/usr/bin/python
# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_audit
short_description: Audit the images of a registry for lineage depth, base drift, tags and sources
version_added: 0.1.0
description:
  - Reads the images of a registry through its HTTP API (in parallel) and reports, from the labels that
    M(dockyard.fleet.image_build) writes
  - V(too_deep), images more levels deep than O(max_depth) (OS base, middleware, app is three);
  - V(drift), images whose recorded parent digest is no longer what the parent's tag points to (the base
    was rebuilt under the same tag), with the list of images to rebuild;
  - V(tag_not_sha), app images whose tag is not a Git SHA, and V(no_source), images with no source label;
  - V(not_current_release), with O(containers=true) on a host, running containers of an app whose image is
    not the digest of its current release in the M(dockyard.fleet.docker_release) history.
  - Output is structured for C(json_query) in playbooks, plus a human summary; O(fail_on) fails the task on
    chosen findings.
extends_documentation_fragment:
  - dockyard.fleet.docker
  - dockyard.fleet.attributes
  - dockyard.fleet.attributes.info_module
  - dockyard.fleet.attributes.actiongroup_docker
  - dockyard.fleet.registry
options:
  registry:
    description:
      - The registry, as V(host:port).
    type: str
    required: true
  repositories:
    description:
      - Repositories to audit; the whole catalog when empty.
    type: list
    elements: str
    default: []
  max_depth:
    description:
      - Deepest lineage allowed.
    type: int
    default: 3
  containers:
    description:
      - Also check the containers running on this host against the release history.
    type: bool
    default: false
  fail_on:
    description:
      - Findings that fail the task.
    type: list
    elements: str
    choices: [too_deep, drift, tag_not_sha, no_source, not_current_release]
    default: []
  workers:
    description:
      - Parallel requests to the registry.
    type: int
    default: 16
author:
  - dockyard.fleet maintainers (@dockyard)
"""

EXAMPLES = r"""
---
- name: Audit the registry
  dockyard.fleet.image_audit:
    registry: registry.example.com:5000
    fail_on: [drift, too_deep]
  register: audit

- name: Show what needs a rebuild
  ansible.builtin.debug:
    msg: "{{ audit.apps_to_rebuild }}"
"""

RETURN = r"""
images:
  description: Every image audited, with its digest and labels.
  returned: always
  type: list
  elements: dict
findings:
  description: One entry per finding, with the image, the finding and a detail.
  returned: always
  type: list
  elements: dict
  sample: [{image: "reg/shop/web:3f9c...", finding: drift, detail: "built FROM reg/base:12@sha256:..., ..."}]
apps_to_rebuild:
  description: Images whose base drifted.
  returned: always
  type: list
  elements: str
summary:
  description: The findings, for humans.
  returned: always
  type: str
"""

import glob
import json
import os
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_client import (
    DockerClient,
    DockerException,
    RequestException,
    docker_module,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._image_lineage import (
    LABEL_PARENT_REF,
    audit,
    summary,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._registry import (
    REGISTRY_AUTH_ARGS,
    RegistryClient,
    RegistryError,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._release_history import (
    HISTORY_DIR,
    current_record,
    load_history,
)
from ansible_collections.dockyard.fleet.plugins.module_utils._release_runner import LABEL_APP, LABEL_ROLE


def read_images(client, repositories, workers):
    """Every tag of every repository with digest and labels, fetched in parallel."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        tag_lists = list(pool.map(client.tags, repositories))
        pairs = [(repo, tag) for repo, tags in zip(repositories, tag_lists) for tag in tags]
        labelled = list(pool.map(lambda pair: client.labels(*pair), pairs))
    return [
        {"repository": repo, "tag": tag, "digest": digest, "labels": labels or {}}
        for (repo, tag), (digest, labels) in zip(pairs, labelled)
    ]


def parent_digests(client, images, registry, workers):
    """The digest each recorded parent tag points to now (parents in this registry)."""
    refs = sorted({i["labels"].get(LABEL_PARENT_REF) for i in images if i["labels"].get(LABEL_PARENT_REF)})
    prefix = registry + "/"
    ours = [r for r in refs if r.startswith(prefix) and "@" not in r]

    def current(ref):
        repository, dummy, tag = ref[len(prefix) :].rpartition(":")
        return ref, client.manifest(repository, tag)[0]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(current, ours))


def container_findings(docker):
    """Running app containers whose image digest is not the current release's."""
    findings = []
    for path in glob.glob(os.path.join(HISTORY_DIR, "*.json")):
        app = os.path.basename(path)[: -len(".json")]
        current = current_record(load_history(path, app))
        if not current:
            continue
        for container in docker.api.containers(filters={"label": ["%s=%s" % (LABEL_APP, app), "%s=app" % LABEL_ROLE]}):
            if current["digest"] not in container["Image"]:
                findings.append(
                    {
                        "image": container["Image"],
                        "finding": "not_current_release",
                        "detail": "container %s of %s runs it; the current release is %s"
                        % (container["Names"][0].lstrip("/"), app, current["digest"]),
                    }
                )
    return findings


def main():
    argument_spec = {
        "registry": {"type": "str", "required": True},
        "repositories": {"type": "list", "elements": "str", "default": []},
        "max_depth": {"type": "int", "default": 3},
        "containers": {"type": "bool", "default": False},
        "fail_on": {
            "type": "list",
            "elements": "str",
            "default": [],
            "choices": ["too_deep", "drift", "tag_not_sha", "no_source", "not_current_release"],
        },
        "workers": {"type": "int", "default": 16},
        **REGISTRY_AUTH_ARGS,
    }
    module = docker_module(argument_spec, supports_check_mode=True)
    params = module.params
    client = RegistryClient(params["registry"], params["registry_username"], params["registry_password"])
    try:
        repositories = params["repositories"] or client.catalog()
        images = read_images(client, repositories, params["workers"])
        parents = parent_digests(client, images, params["registry"], params["workers"])
    except RegistryError as exc:
        module.fail_json(msg=str(exc))
    for image in images:  # parents are recorded by their full reference
        image["repository"] = "%s/%s" % (params["registry"], image["repository"])
    findings, rebuild = audit(images, parents, params["max_depth"])
    if params["containers"]:
        docker = DockerClient(module)
        try:
            findings += container_findings(docker)
        except (DockerException, RequestException) as exc:
            docker.fail("reading containers failed: %s" % exc)
    result = {
        "changed": False,
        "images": images,
        "findings": findings,
        "apps_to_rebuild": rebuild,
        "summary": summary(images, findings, rebuild),
    }
    failing = [f for f in findings if f["finding"] in params["fail_on"]]
    if failing:
        module.fail_json(
            msg="image audit: %d findings of %s: %s"
            % (len(failing), ", ".join(params["fail_on"]), json.dumps([f["image"] for f in failing])),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
