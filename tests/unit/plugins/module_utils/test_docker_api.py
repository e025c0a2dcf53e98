"""EngineAPI: the reads answered over the standard library, and its errors.

Two kinds of test: an HTTP server on a unix socket that answers as the engine does
on error paths (a missing image, a pull that fails inside its stream, a refused
connection), and the controller's real Docker engine (DOCKYARD_TEST_DOCKER_HOST,
or the usual socket, which `make test` starts) where ours and the SDK's answers
must agree.
"""

import http.server
import json
import os
import socketserver
import threading

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils import _docker_api as api
from ansible_collections.dockyard.fleet.plugins.module_utils._docker_api import (
    APIError,
    EngineAPI,
    ImageNotFound,
    NotFound,
    RequestException,
)

ENGINE = os.environ.get("DOCKYARD_TEST_DOCKER_HOST", "unix:///var/run/docker.sock")


class EngineLike(http.server.BaseHTTPRequestHandler):
    """Answers as dockerd does for the paths the tests ask; records every request line."""

    answers = {}
    seen = []

    def answer(self):
        self.seen.append("%s %s" % (self.command, self.path))
        path = self.path.split("?")[0]
        status, body = self.answers.get((self.command, path), (404, {"message": "page not found"}))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = answer  # noqa: N815 - http.server's names

    def log_message(self, *args):
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, dummy = super().get_request()
        return request, ("local", 0)


@pytest.fixture
def engine_like(tmp_path):
    path = str(tmp_path / "docker.sock")
    server = UnixHTTPServer(path, EngineLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    EngineLike.answers, EngineLike.seen = {}, []
    yield EngineLike, EngineAPI("unix://" + path, 5)
    server.shutdown()
    server.server_close()


def v(path):
    return "/v%s%s" % (api.API_VERSION, path)


def test_missing_image_is_image_not_found_with_the_engine_message(engine_like):
    handler, engine = engine_like
    handler.answers[("GET", v("/images/repo:5000/app%40sha256:ab/json"))] = (404, {"message": "No such image: x"})
    with pytest.raises(ImageNotFound, match="No such image: x"):
        engine.inspect_image("repo:5000/app@sha256:ab")
    assert handler.seen == ["GET " + v("/images/repo:5000/app%40sha256:ab/json")]


def test_missing_container_is_not_found_but_not_an_image(engine_like):
    handler, engine = engine_like
    handler.answers[("GET", v("/containers/gone/json"))] = (404, {"message": "No such container: gone"})
    with pytest.raises(NotFound) as caught:
        engine.inspect_container({"Id": "gone"})
    assert not isinstance(caught.value, ImageNotFound)
    assert caught.value.status_code == 404


def test_server_error_is_api_error(engine_like):
    handler, engine = engine_like
    handler.answers[("GET", v("/info"))] = (500, {"message": "boom"})
    with pytest.raises(APIError, match=r"500 .*boom"):
        engine.info()


def test_filters_sent_as_the_engine_takes_them(engine_like):
    handler, engine = engine_like
    handler.answers[("GET", v("/containers/json"))] = (200, [{"Id": "c1"}])
    assert engine.containers(all=True, filters={"label": ["a=b"], "dangling": True}) == [{"Id": "c1"}]
    query = handler.seen[0].split("?", 1)[1]
    assert "all=1" in query
    assert "filters=%7B%22label%22%3A+%5B%22a%3Db%22%5D%2C+%22dangling%22%3A+%5B%22true%22%5D%7D" in query


def test_network_names_become_a_name_filter(engine_like):
    handler, engine = engine_like
    handler.answers[("GET", v("/networks"))] = (200, [])
    assert engine.networks(names=["ovl"]) == []
    assert "filters=%7B%22name%22%3A+%5B%22ovl%22%5D%7D" in handler.seen[0]


def test_pull_reads_its_stream_and_raises_an_error_inside_it(engine_like, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    monkeypatch.setenv("HOME", "/nonexistent")
    handler, engine = engine_like
    stream = b'{"status":"Pulling from app"}\n{"errorDetail":{"message":"unauthorized"},"error":"unauthorized"}\n'
    handler.answers[("POST", v("/images/create"))] = (200, stream)
    with pytest.raises(APIError, match="unauthorized"):
        engine.pull("repo/app", tag="v1")
    done = b'{"status":"a"}\n{"status":"Status: Image is up to date"}\n'
    handler.answers[("POST", v("/images/create"))] = (200, done)
    assert engine.pull("repo/app", tag="v1") == {"status": "Status: Image is up to date"}
    assert "fromImage=repo%2Fapp&tag=v1" in handler.seen[-1]


def test_registry_credentials_send_pulls_to_the_sdk(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"reg:5000": {"auth": "dTpw"}}}))
    assert api.has_registry_credentials({"DOCKER_CONFIG": str(tmp_path)})
    (tmp_path / "config.json").write_text(json.dumps({"auths": {}}))
    assert not api.has_registry_credentials({"DOCKER_CONFIG": str(tmp_path)})


def test_no_engine_is_request_exception(tmp_path):
    with pytest.raises(RequestException, match="cannot talk to the Docker engine"):
        EngineAPI("unix://%s/absent.sock" % tmp_path, 2).ping()


@pytest.mark.parametrize(
    "url, expected",
    [("unix:///var/run/docker.sock", "/var/run/docker.sock"), ("unix://var/run/docker.sock", "/var/run/docker.sock")],
)
def test_unix_addresses(url, expected):
    assert api.connection_factory(url, 1)().socket_path == expected


def test_tls_and_ssh_addresses_are_left_to_the_sdk():
    assert api.connection_factory("https://docker:2376", 1) is None
    assert api.connection_factory("ssh://root@host", 1) is None
    assert EngineAPI("ssh://root@host", 1).http is None


def real_engine_answers():
    connect = api.connection_factory(ENGINE, 2)
    try:
        connect().connect()
    except OSError:
        return False
    return True


real_engine = pytest.mark.skipif(
    not real_engine_answers(), reason="no Docker engine at %s (make setup starts one)" % ENGINE
)


@real_engine
def test_reads_agree_with_the_sdk_on_a_real_engine():
    docker = pytest.importorskip("docker")
    ours = EngineAPI(ENGINE, 30)
    sdk = docker.APIClient(base_url=ENGINE, timeout=30, version=api.API_VERSION)
    assert ours.ping() is True
    assert ours.version()["ApiVersion"] == sdk.version()["ApiVersion"]
    assert [c["Id"] for c in ours.containers(all=True)] == [c["Id"] for c in sdk.containers(all=True)]
    assert ours.networks(names=["bridge"]) == sdk.networks(names=["bridge"])
    images = sdk.images()
    if images:
        assert ours.inspect_image(images[0]["Id"])["Id"] == images[0]["Id"]
    with pytest.raises(ImageNotFound):
        ours.inspect_image("dockyard-no-such-image:never")
    with pytest.raises(NotFound):
        ours.inspect_volume("dockyard-no-such-volume")


@real_engine
def test_sdk_calls_raise_our_errors_on_a_real_engine():
    pytest.importorskip("docker")
    ours = EngineAPI(ENGINE, 30)
    with pytest.raises(NotFound):
        ours.remove_container("dockyard-no-such-container")  # not answered here: the SDK's, translated
    assert ours.sdk_client is not None


@real_engine
def test_a_host_with_registry_credentials_pulls_through_the_sdk(tmp_path, monkeypatch):
    """The SDK reads the credentials: pull and inspect_distribution go to its methods, errors translated."""
    pytest.importorskip("docker")
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"127.0.0.1:9": {"auth": "dTpw"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    ours = EngineAPI(ENGINE, 30)
    with pytest.raises(APIError):  # nothing listens on 127.0.0.1:9: the engine says so, through the SDK
        ours.pull("127.0.0.1:9/dockyard/none", tag="v1")
    with pytest.raises(APIError):
        ours.inspect_distribution("127.0.0.1:9/dockyard/none:v1")
    assert ours.sdk_client is not None
