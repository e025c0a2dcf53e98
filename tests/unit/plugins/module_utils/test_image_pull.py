"""Pull retries past a registry failover: which errors are retried, how often, and what the user sees."""

import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._docker_api import APIError, pull_outcome
from ansible_collections.dockyard.fleet.plugins.module_utils._image_pull import (
    ImagePuller,
    is_transient_pull_error,
    with_pull_retries,
)

RESET = (
    'Head "https://172.29.84.250/v2/bench/small/manifests/v1": read tcp 172.29.84.13:48124->'
    "172.29.84.250:443: read: connection reset by peer"
)


@pytest.mark.parametrize(
    "message",
    [
        RESET,
        "Get https://reg:5000/v2/: dial tcp 10.0.0.5:5000: connect: connection refused",
        "Get https://reg:5000/v2/: net/http: TLS handshake timeout",
        'Get "https://reg/v2/app/blobs/sha256:ab": unexpected EOF',
        "received unexpected HTTP status: 502 Bad Gateway",
        "received unexpected HTTP status: 503 Service Unavailable",
    ],
)
def test_failover_errors_are_transient(message):
    assert is_transient_pull_error(APIError(500, "pull failed", message))


@pytest.mark.parametrize(
    "message",
    [
        "manifest for reg:5000/app:v9 not found: manifest unknown: manifest unknown",
        "pull access denied for reg:5000/team-b/app, repository does not exist or may require 'docker login'",
        "unauthorized: authentication required",
        'Get "https://reg:5000/v2/": x509: certificate signed by unknown authority',
    ],
)
def test_errors_about_the_image_or_its_access_are_not_retried(message):
    assert not is_transient_pull_error(message)


class Flaky:
    """Fails with the given errors in turn, then answers."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "pulled"


def test_a_reset_pull_is_retried_with_growing_pauses():
    pauses = []
    call = Flaky(APIError(500, "pull failed", RESET), APIError(500, "pull failed", RESET))
    assert with_pull_retries(call, attempts=3, delay=1.0, sleep=pauses.append) == ("pulled", 3)
    assert pauses == [1.0, 2.0]


def test_a_permanent_error_fails_at_the_first_attempt():
    pauses = []
    call = Flaky(APIError(404, "Not Found", "manifest unknown"))
    with pytest.raises(APIError, match="manifest unknown") as err:
        with_pull_retries(call, attempts=3, delay=1.0, sleep=pauses.append)
    assert (call.calls, pauses, err.value.attempts) == (1, [], 1)


def test_the_last_transient_error_is_raised_after_every_attempt():
    call = Flaky(*[APIError(500, "pull failed", RESET)] * 3)
    with pytest.raises(APIError, match="connection reset") as err:
        with_pull_retries(call, attempts=3, delay=0, sleep=lambda _: None)
    assert (call.calls, err.value.attempts) == (3, 3)


class FakeModule:
    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


class FakeAPI:
    def __init__(self, pull):
        self.pull = lambda repository, tag=None, **kwargs: pull()


class FakeClient:
    """An engine whose pull fails as told and whose image appears once a pull went through."""

    def __init__(self, pull):
        self.module = FakeModule()
        self.api = FakeAPI(self.pulled(pull))
        self.present = False
        self.failure = None

    def pulled(self, pull):
        def call():
            result = pull()
            self.present = True
            return result

        return call

    def image_or_none(self, reference):
        if not self.present:
            return None
        return {"Id": "sha256:" + "1" * 64, "RepoDigests": ["reg:5000/app@sha256:" + "2" * 64]}

    def fail(self, message):
        self.failure = message
        raise SystemExit(message)


def test_the_module_result_says_how_many_attempts_a_pull_took(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    client = FakeClient(Flaky(APIError(500, "pull failed", RESET)))
    result = ImagePuller(client, "reg:5000/app", tag="v1").run(check_mode=False)
    assert result["changed"] is True
    assert result["attempts"] == 2
    assert result["digest"] == "sha256:" + "2" * 64


def test_a_failure_after_retries_says_so_and_names_the_image(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    client = FakeClient(Flaky(*[APIError(500, "pull failed", RESET)] * 3))
    with pytest.raises(SystemExit):
        ImagePuller(client, "reg:5000/app", tag="v1").run(check_mode=False)
    assert client.failure.startswith("pulling reg:5000/app:v1 failed (after 3 attempts): ")
    assert "connection reset by peer" in client.failure


def test_the_sdk_answer_of_a_failed_pull_is_raised_too():
    """The SDK returns the progress stream as text (bytes on some versions): its error must not pass."""
    stream = (
        b'{"status":"Pulling from app"}\n{"errorDetail":{"message":"x"},"error":"'
        + RESET.encode().replace(b'"', b'\\"')
        + b'"}\n'
    )
    with pytest.raises(APIError, match="connection reset by peer"):
        pull_outcome(stream)
    assert pull_outcome('{"status":"Status: Downloaded newer image for app:v1"}\n') == {
        "status": "Status: Downloaded newer image for app:v1"
    }
