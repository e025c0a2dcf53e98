# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The one Docker client wrapper of the collection. Every module that talks to a
# Docker engine builds its AnsibleModule through docker_module(), so connection
# options, the missing-SDK message and API error reporting are written once.

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import docker
    from docker.errors import DockerException, ImageNotFound, NotFound
    from requests.exceptions import RequestException

    HAS_DOCKER_SDK = True
    DOCKER_SDK_IMPORT_ERROR = None
except ImportError:  # reported by docker_module() through missing_required_lib
    HAS_DOCKER_SDK = False
    DOCKER_SDK_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):  # noqa: N818 - stand-in keeps except clauses valid
        pass

    ImageNotFound = NotFound = RequestException = DockerException

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
        module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python)"), exception=DOCKER_SDK_IMPORT_ERROR)
    return module


class DockerClient:
    """A docker.DockerClient for one module run, failing through the module with a useful message."""

    def __init__(self, module):
        self.module = module
        try:
            self.sdk = docker.DockerClient(base_url=module.params["docker_host"], timeout=module.params["timeout"])
            self.sdk.ping()
        except (DockerException, RequestException) as exc:
            self.fail(
                "cannot reach the Docker engine at %s: %s. Is dockerd running on %s?"
                % (module.params["docker_host"], exc, "this host"),
            )

    @property
    def api(self):
        return self.sdk.api

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, exception=traceback.format_exc(), **kwargs)

    def image_or_none(self, reference):
        """The image's inspect data, or None when the engine has no such image."""
        try:
            return self.api.inspect_image(reference)
        except (ImageNotFound, NotFound):
            return None
