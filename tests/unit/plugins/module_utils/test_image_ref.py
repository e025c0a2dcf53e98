import pytest

from ansible_collections.dockyard.fleet.plugins.module_utils._image_ref import (
    ImageRefError,
    normalize_repository,
    repo_digest,
    split_reference,
    validate_reference,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "reference, expected",
    [
        ("nginx", ("nginx", None, None)),
        ("nginx:1.22", ("nginx", "1.22", None)),
        ("reg.example.com:5000/team/app", ("reg.example.com:5000/team/app", None, None)),
        ("reg.example.com:5000/team/app:abc", ("reg.example.com:5000/team/app", "abc", None)),
        ("reg:5000/app@" + DIGEST, ("reg:5000/app", None, DIGEST)),
        ("reg:5000/app:v1@" + DIGEST, ("reg:5000/app", "v1", DIGEST)),
    ],
)
def test_split_reference(reference, expected):
    assert split_reference(reference) == expected


@pytest.mark.parametrize(
    "repository, tag, digest, message",
    [
        ("Team/App", None, None, "invalid image repository 'Team/App'"),
        ("", None, None, "invalid image repository ''"),
        ("app", "bad tag", None, "invalid image tag 'bad tag'"),
        ("app", None, "sha256:xyz", "invalid image digest 'sha256:xyz'"),
        ("app", None, "md5:" + "a" * 32, "invalid image digest 'md5:"),
    ],
)
def test_validate_reference_names_the_bad_part(repository, tag, digest, message):
    with pytest.raises(ImageRefError) as err:
        validate_reference(repository, tag, digest)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "repository, tag, digest",
    [
        ("nginx", "latest", None),
        ("origin.dockyard.test:5000/demo-app", "0" * 40, None),
        ("localhost:5000/a/b_c/d-e", None, DIGEST),
        ("[::1]:5000/app", "v1", None),
    ],
)
def test_validate_reference_accepts(repository, tag, digest):
    validate_reference(repository, tag, digest)


@pytest.mark.parametrize(
    "repository, expected",
    [
        ("nginx", "docker.io/library/nginx"),
        ("team/app", "docker.io/team/app"),
        ("localhost/app", "localhost/app"),
        ("reg.example.com/app", "reg.example.com/app"),
        ("reg:5000/app", "reg:5000/app"),
    ],
)
def test_normalize_repository(repository, expected):
    assert normalize_repository(repository) == expected


def test_repo_digest_picks_the_repository_asked_for():
    other = "sha256:" + "cd" * 32
    image = {"RepoDigests": ["reg:5000/other@" + other, "reg:5000/app@" + DIGEST]}
    assert repo_digest(image, "reg:5000/app") == DIGEST
    assert repo_digest(image, "reg:5000/missing") is None


def test_repo_digest_matches_docker_hub_short_names():
    assert repo_digest({"RepoDigests": ["nginx@" + DIGEST]}, "docker.io/library/nginx") == DIGEST
    assert repo_digest({"RepoDigests": ["docker.io/library/nginx@" + DIGEST]}, "nginx") == DIGEST


def test_repo_digest_of_nothing():
    assert repo_digest(None, "app") is None
    assert repo_digest({"RepoDigests": None}, "app") is None
