# Copyright (c) dockyard.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the dockyard.fleet collection: no compatibility promise outside it.
#
# The Docker Engine API as the collection calls it (EngineAPI: docker.APIClient's
# method names and answers), and the errors every Docker call raises.
#
# Why not only the Docker SDK: importing it (requests, urllib3) costs a module
# run about 0.1 s on a host, a third of a no-op docker_release run, and the
# calls a no-op makes (inspect, list, pull of a tag that did not move) need
# nothing of it. Those go over the standard library's HTTP client; every other
# call goes to the SDK, imported on first use, its errors turned into ours.
# No Ansible import here: the storage role's timers run this file too.

from __future__ import annotations

import functools
import http.client
import json
import os
import socket
import types
from urllib.parse import quote, urlencode, urlsplit

# The Engine API version the reads ask for: Docker 20.10's, which every engine
# since serves (an engine answers an older version's shapes unchanged).
API_VERSION = "1.41"


class DockerException(Exception):  # noqa: N818 - the Docker SDK's name, kept for except clauses
    """Any failure of a Docker call."""


class APIError(DockerException):
    """The engine answered with an error status."""

    def __init__(self, status, reason, message):
        super().__init__("%s %s: %s" % (status, reason, message))
        self.status_code = status
        self.explanation = message


class NotFound(APIError):  # noqa: N818 - the Docker SDK's name
    """The engine has no such container, network, volume (404)."""


class ImageNotFound(NotFound):
    """The engine has no such image (404 on an image, or a registry without it)."""


class RequestException(DockerException):
    """The engine could not be reached, or the connection broke."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: the engine's usual address."""

    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def connection_factory(base_url, timeout):
    """A function making a fresh connection to the engine, or None for an address this client does not speak."""
    parts = urlsplit(base_url)
    if parts.scheme == "unix":
        path = "/" + parts.netloc + parts.path if parts.netloc else parts.path  # unix://var/run/... too
        return lambda: UnixHTTPConnection(path, timeout)
    if parts.scheme in ("tcp", "http") and parts.hostname:
        return lambda: http.client.HTTPConnection(parts.hostname, parts.port or 2375, timeout=timeout)
    return None  # https, ssh, npipe: the SDK's business (TLS and SSH options live there)


def error_for(status, reason, body, image):
    """The exception for an error answer; its message is the engine's own."""
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace").strip()
    if status == 404:
        return (ImageNotFound if image else NotFound)(status, reason, message)
    return APIError(status, reason, message)


class EngineHTTP:
    """Requests to one engine; every call a fresh connection (cheap on a unix socket, nothing to go stale)."""

    def __init__(self, connect):
        self.connect = connect

    def request(self, method, path, params=None, image=False):
        """The decoded JSON answer (or the raw body when it is not JSON); an APIError for an error status."""
        url = "/v%s%s" % (API_VERSION, path)
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        conn = self.connect()
        try:
            conn.request(method, url, headers={"Content-Type": "application/json"} if method == "POST" else {})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise RequestException("cannot talk to the Docker engine: %s" % exc) from exc
        finally:
            conn.close()
        if response.status >= 400:
            raise error_for(response.status, response.reason, body, image)
        return decoded(body)

    def get(self, path, params=None, image=False):
        return self.request("GET", path, params, image)

    def pull(self, repository, tag, platform=None):
        """POST /images/create and read its progress stream to the end; the last status line.

        The engine reports a failed pull inside the stream with status 200: the
        stream's `error` is raised, so a pull that failed never passes for done.
        """
        params = {"fromImage": repository, "tag": tag, "platform": platform}
        return pull_outcome(self.request("POST", "/images/create", params, image=True))


def pull_outcome(answer):
    """The last status of a pull's progress stream; the stream's `error` raised as APIError.

    The engine answers 200 before it talks to the registry, so a failed pull is told only in
    the stream: without this a pull that failed would pass for done.
    """
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    lines = [answer]
    if isinstance(answer, str):  # one JSON object per line: the progress of the pull
        lines = [json.loads(line) for line in answer.splitlines() if line.strip()]
    for line in lines:
        if isinstance(line, dict) and line.get("error"):
            raise APIError(500, "pull failed", line["error"])
    return lines[-1] if lines else {}


def decoded(body):
    text = body.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def path_of(template, *names):
    """An API path with names quoted as the SDK quotes them (/ and : kept, @ encoded)."""
    return template % tuple(quote(name, safe="/:") for name in names)


def filters_param(filters):
    """Filters as the engine takes them: every value a list of strings, booleans as 'true'/'false'."""
    result = {}
    for key, value in filters.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        result[key] = [str(item) for item in (value if isinstance(value, list) else [value])]
    return json.dumps(result)


def has_registry_credentials(environ=None):
    """True when this host's Docker client config holds registry credentials.

    Pulls then go through the SDK, which reads them (config.json auths, credsStore, credHelpers).
    """
    environ = os.environ if environ is None else environ
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(config_dir, "config.json"), encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return os.path.exists(os.path.join(os.path.expanduser("~"), ".dockercfg"))
    return bool(config.get("auths") or config.get("credsStore") or config.get("credHelpers"))


def resource_id(value):
    """A container/image given as its name or id, or as the dict the engine listed it with."""
    return value.get("Id") or value.get("id") if isinstance(value, dict) else value


def sdk_errors_translated(call):
    """The SDK call, raising this file's errors instead of the SDK's and requests' (streams too)."""

    @functools.wraps(call)
    def run(*args, **kwargs):
        with translated_errors():
            result = call(*args, **kwargs)
        return translated_stream(result) if isinstance(result, types.GeneratorType) else result

    return run


def translated_stream(stream):
    with translated_errors():
        yield from stream


class translated_errors:  # noqa: N801 - used as a `with` statement, like contextlib's helpers
    """Turn the SDK's exceptions into this file's, keeping the engine's message."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if exc is None:
            return False
        from docker import errors  # the SDK is loaded already: an SDK call raised this
        from requests.exceptions import RequestException as SDKRequestException

        if isinstance(exc, errors.APIError):
            status = exc.status_code or 500
            reason = exc.response.reason if exc.response is not None else "error"
            cls = ImageNotFound if isinstance(exc, errors.ImageNotFound) else NotFound if status == 404 else APIError
            raise cls(status, reason, exc.explanation or str(exc)) from exc
        if isinstance(exc, errors.DockerException):
            raise DockerException(str(exc)) from exc
        if isinstance(exc, SDKRequestException):
            raise RequestException("cannot talk to the Docker engine: %s" % exc) from exc
        return False


class EngineAPI:
    """docker.APIClient's calls: the reads over the standard library, the rest through the SDK.

    Only calls with the arguments the collection uses are answered here; any other
    argument, an address this file does not speak (https, ssh), or registry
    credentials in the Docker client config send the call to the SDK unchanged.
    """

    def __init__(self, base_url, timeout):
        self.base_url = base_url
        self.timeout = timeout
        connect = connection_factory(base_url, timeout)
        self.http = EngineHTTP(connect) if connect else None
        self.sdk_client = None

    @property
    def sdk(self):
        """The SDK's APIClient, made on first use (its import is what a no-op run saves)."""
        if self.sdk_client is None:
            import docker

            with translated_errors():
                self.sdk_client = docker.APIClient(base_url=self.base_url, timeout=self.timeout)
        return self.sdk_client

    def __getattr__(self, name):
        if name.startswith("__") or name in ("sdk_client", "http"):
            raise AttributeError(name)
        attribute = getattr(self.sdk, name)
        return sdk_errors_translated(attribute) if callable(attribute) else attribute

    def by_sdk(self, name, *args, **kwargs):
        """The SDK's own method of that name (not this class's, which would call itself again)."""
        return sdk_errors_translated(getattr(self.sdk, name))(*args, **kwargs)

    def ping(self):
        if self.http is None:
            return self.by_sdk("ping")
        self.http.get("/_ping")
        return True

    def version(self):
        return self.http.get("/version") if self.http else self.by_sdk("version")

    def info(self):
        return self.http.get("/info") if self.http else self.by_sdk("info")

    def inspect_image(self, image):
        if self.http is None:
            return self.by_sdk("inspect_image", image)
        return self.http.get(path_of("/images/%s/json", resource_id(image)), image=True)

    def inspect_container(self, container):
        if self.http is None:
            return self.by_sdk("inspect_container", container)
        return self.http.get(path_of("/containers/%s/json", resource_id(container)))

    def inspect_network(self, net_id, verbose=None, scope=None):
        if self.http is None:
            return self.by_sdk("inspect_network", net_id, verbose=verbose, scope=scope)
        params = {"verbose": "true" if verbose else None, "scope": scope}
        return self.http.get(path_of("/networks/%s", resource_id(net_id)), params)

    def inspect_volume(self, name):
        if self.http is None:
            return self.by_sdk("inspect_volume", name)
        return self.http.get(path_of("/volumes/%s", name))

    def containers(self, **kwargs):
        """GET /containers/json for all= and filters= (the SDK for quiet, trunc, limit, size...)."""
        if self.http is None or set(kwargs) - {"all", "filters"}:
            return self.by_sdk("containers", **kwargs)
        params = {"all": 1 if kwargs.get("all") else 0, "limit": -1, "size": 0, "trunc_cmd": 0}
        if kwargs.get("filters"):
            params["filters"] = filters_param(kwargs["filters"])
        return self.http.get("/containers/json", params)

    def networks(self, names=None, ids=None, filters=None):
        if self.http is None:
            return self.by_sdk("networks", names=names, ids=ids, filters=filters)
        filters = dict(filters or {})
        if names:
            filters["name"] = names
        if ids:
            filters["id"] = ids
        return self.http.get("/networks", {"filters": filters_param(filters)})

    def inspect_distribution(self, image, auth_config=None):
        if self.http is None or auth_config or has_registry_credentials():
            return self.by_sdk("inspect_distribution", image, auth_config=auth_config)
        return self.http.get(path_of("/distribution/%s/json", image), image=True)

    def pull(self, repository, tag=None, **kwargs):
        """Pull and wait for the end (the SDK without a tag, for stream=, auth_config=, or with credentials).

        Either way a failure told inside the progress stream is raised (the SDK only returns it)."""
        if self.http is None or tag is None or set(kwargs) - {"platform"} or has_registry_credentials():
            answer = self.by_sdk("pull", repository, tag=tag, **kwargs)
            return answer if kwargs.get("stream") else pull_outcome(answer)
        return self.http.pull(repository, tag, kwargs.get("platform"))
