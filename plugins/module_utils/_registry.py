# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# A small client of the registry HTTP API (distribution v2): catalog, tags,
# manifests by tag or digest, image config (labels), delete. Anonymous, basic
# or bearer-token auth (the challenge in WWW-Authenticate decides). TLS trust
# as Docker does it: /etc/docker/certs.d/<host:port>/ca.crt when present.

from __future__ import annotations

import json
import os
import re

try:
    import requests

    HAS_REQUESTS = True
except ImportError:  # modules report it with missing_required_lib
    HAS_REQUESTS = False

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
LIST_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
CERTS_D = "/etc/docker/certs.d"

# argument_spec entries of the dockyard.fleet.registry doc fragment.
REGISTRY_AUTH_ARGS = {
    "registry_username": {"type": "str"},
    "registry_password": {"type": "str", "no_log": True},
}


class RegistryError(Exception):
    pass


def parse_challenge(header):
    """'Bearer realm="...",service="...",scope="..."' -> ('bearer', {realm, service, scope})."""
    scheme, dummy, rest = (header or "").partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def refusal_hint(status, username, scope):
    """What a 401 or 403 from the registry means for whoever called, to end its error message with."""
    wanted = " (%s)" % scope if scope else ""
    if status == 401 and username is None:
        return ": anonymous access is not enough%s; give registry_username and registry_password" % wanted
    if status == 401:
        return ": the registry did not accept the credentials of %s%s" % (username, wanted)
    if status == 403:
        return ": %s is not allowed this%s by the registry's rules" % (username or "anonymous", wanted)
    return ""


def registry_ca(registry):
    path = os.path.join(CERTS_D, registry, "ca.crt")
    return path if os.path.exists(path) else True


class RegistryClient:
    def __init__(self, registry, username=None, password=None, ca_cert=None, timeout=30, insecure=False):
        self.registry = registry
        self.base = "%s://%s" % ("http" if insecure else "https", registry)
        self.username = username or None  # None: anonymous
        self.auth = (username, password) if username else None
        self.verify = ca_cert or registry_ca(registry)
        self.timeout = timeout
        self.session = requests.Session()
        self.tokens = {}

    # ------------------------------------------------------------------ transport
    def request(self, method, path, scope=None, headers=None, ok=(200,)):
        headers = dict(headers or {})
        token = self.tokens.get(scope)
        if token:
            headers["Authorization"] = "Bearer %s" % token
        response = self._send(method, path, headers)
        if response.status_code == 401:
            scheme, params = parse_challenge(response.headers.get("WWW-Authenticate"))
            if scheme == "bearer":
                self.tokens[scope] = self._token(params, scope)
                headers["Authorization"] = "Bearer %s" % self.tokens[scope]
                response = self._send(method, path, headers)
            elif scheme == "basic" and self.auth:
                response = self._send(method, path, headers, auth=self.auth)
        if response.status_code not in ok:
            raise RegistryError(
                "%s %s%s: HTTP %d %s%s"
                % (
                    method,
                    self.base,
                    path,
                    response.status_code,
                    response.text[:200].strip(),
                    refusal_hint(response.status_code, self.username, scope),
                )
            )
        return response

    def _send(self, method, path, headers, auth=None):
        try:
            return self.session.request(
                method, self.base + path, headers=headers, auth=auth, verify=self.verify, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise RegistryError("cannot reach registry %s: %s" % (self.registry, exc)) from None

    def _token(self, params, scope):
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        try:
            response = self.session.get(
                params["realm"], params=query, auth=self.auth, verify=self.verify, timeout=self.timeout
            )
        except (requests.RequestException, KeyError) as exc:
            raise RegistryError("token request to %s failed: %s" % (params.get("realm"), exc)) from None
        if response.status_code != 200:
            who = "for %s" % self.username if self.username else "anonymous"
            raise RegistryError(
                "token request to %s (%s): HTTP %d%s"
                % (
                    params["realm"],
                    who,
                    response.status_code,
                    ": check registry_username and registry_password" if response.status_code == 401 else "",
                )
            )
        body = response.json()
        return body.get("token") or body.get("access_token")

    # ------------------------------------------------------------------ API
    def catalog(self, page=1000):
        repos, path = [], "/v2/_catalog?n=%d" % page
        while path:
            response = self.request("GET", path, scope="registry:catalog:*")
            repos += response.json().get("repositories") or []
            path = _next_link(response.headers.get("Link"))
        return repos

    def tags(self, repository, page=1000):
        tags, path = [], "/v2/%s/tags/list?n=%d" % (repository, page)
        while path:
            response = self.request("GET", path, scope="repository:%s:pull" % repository, ok=(200, 404))
            if response.status_code == 404:
                return []
            tags += response.json().get("tags") or []
            path = _next_link(response.headers.get("Link"))
        # registry:2 on filesystem storage answers in directory order, which changes between runs
        return sorted(tags)

    def manifest(self, repository, reference, platform=("linux", "amd64")):
        """(digest, manifest) of a tag or digest; a manifest list is resolved to the platform's manifest."""
        response = self.request(
            "GET",
            "/v2/%s/manifests/%s" % (repository, reference),
            scope="repository:%s:pull" % repository,
            headers={"Accept": MANIFEST_TYPES},
            ok=(200, 404),
        )
        if response.status_code == 404:
            return None, None
        digest = response.headers.get("Docker-Content-Digest")
        body = response.json()
        if body.get("mediaType") in LIST_TYPES or "manifests" in body:
            for item in body.get("manifests") or []:
                wanted = item.get("platform") or {}
                if (wanted.get("os"), wanted.get("architecture")) == platform:
                    return digest, self.manifest(repository, item["digest"], platform)[1]
            raise RegistryError("%s:%s has no %s/%s image" % (repository, reference, *platform))
        return digest, body

    def image_config(self, repository, manifest):
        response = self.request(
            "GET",
            "/v2/%s/blobs/%s" % (repository, manifest["config"]["digest"]),
            scope="repository:%s:pull" % repository,
        )
        return json.loads(response.content)

    def labels(self, repository, reference):
        """(digest, labels) of an image; (None, None) when the tag does not exist."""
        digest, manifest = self.manifest(repository, reference)
        if manifest is None:
            return None, None
        config = self.image_config(repository, manifest)
        return digest, (config.get("config") or {}).get("Labels") or {}

    def delete(self, repository, digest):
        self.request(
            "DELETE",
            "/v2/%s/manifests/%s" % (repository, digest),
            scope="repository:%s:delete" % repository,
            ok=(202, 404),
        )


def _next_link(header):
    """The next page from a Link header: '</v2/_catalog?last=x&n=100>; rel="next"'."""
    match = re.match(r'<([^>]+)>;\s*rel="next"', header or "")
    return match.group(1) if match else None
