# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The one Docker client wrapper of the collection. Every module that talks to a
# Docker engine builds its AnsibleModule through docker_module(), so connection
# options, the missing-SDK message and API error reporting are written once.
# The calls themselves go through _docker_api.EngineAPI (reads without the SDK).

from __future__ import annotations

import importlib.util
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_api import (
    DockerException,
    EngineAPI,
    NotFound,
    RequestException,
)

# The errors are the modules' to catch too: they import them from here, with the client.
__all__ = ["DockerClient", "DockerException", "NotFound", "RequestException", "docker_module"]

# Looked up, not imported: importing the SDK is what a no-op run saves (see _docker_api).
HAS_DOCKER_SDK = importlib.util.find_spec("docker") is not None

DOCKER_COMMON_ARGS = {
    "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock", "aliases": ["docker_url"]},
    "timeout": {"type": "int", "default": 60},
}


def docker_module(argument_spec, **kwargs):
    """AnsibleModule with the common connection options merged in; fails early without the SDK."""
    spec = dict(DOCKER_COMMON_ARGS)
    spec.update(argument_spec)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if not HAS_DOCKER_SDK:
        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python)"))
    return module


class DockerClient:
    """The engine's API for one module run, failing through the module with a useful message."""

    def __init__(self, module):
        self.module = module
        self.api = EngineAPI(module.params["docker_host"], module.params["timeout"])
        try:
            self.api.ping()
        except DockerException as exc:
            self.fail(
                "cannot reach the Docker engine at %s: %s. Is dockerd running on %s?"
                % (module.params["docker_host"], exc, "this host"),
            )

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, exception=traceback.format_exc(), **kwargs)

    def image_or_none(self, reference):
        """The image's inspect data, or None when the engine has no such image."""
        try:
            return self.api.inspect_image(reference)
        except NotFound:
            return None
