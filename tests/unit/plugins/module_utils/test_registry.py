from ansible_collections.dockyard.fleet.plugins.module_utils._registry import (
    _next_link,
    parse_challenge,
    refusal_hint,
    registry_ca,
)
from ansible_collections.dockyard.fleet.plugins.modules.image_build import registry_and_repository


def test_bearer_challenge():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:a/b:pull",
    }


def test_basic_and_missing_challenge():
    assert parse_challenge('Basic realm="Registry"') == ("basic", {"realm": "Registry"})
    assert parse_challenge(None) == ("", {})


def test_next_page_link():
    assert _next_link('</v2/_catalog?last=b&n=2>; rel="next"') == "/v2/_catalog?last=b&n=2"
    assert _next_link(None) is None


def test_registry_ca_falls_back_to_system_trust(tmp_path, monkeypatch):
    import ansible_collections.dockyard.fleet.plugins.module_utils._registry as registry

    monkeypatch.setattr(registry, "CERTS_D", str(tmp_path))
    assert registry_ca("reg:5000") is True
    (tmp_path / "reg:5000").mkdir()
    (tmp_path / "reg:5000" / "ca.crt").write_text("x")
    assert registry_ca("reg:5000") == str(tmp_path / "reg:5000" / "ca.crt")


def test_registry_and_repository():
    assert registry_and_repository("reg.example.com:5000/shop/web") == ("reg.example.com:5000", "shop/web")
    assert registry_and_repository("localhost/web") == ("localhost", "web")
    assert registry_and_repository("nginx") == ("registry-1.docker.io", "library/nginx")
    assert registry_and_repository("team/app") == ("registry-1.docker.io", "team/app")


def test_refusal_hints_say_who_and_what():
    assert refusal_hint(401, None, "repository:team-a/app:pull") == (
        ": anonymous access is not enough (repository:team-a/app:pull); give registry_username and registry_password"
    )
    assert refusal_hint(401, "ci", None) == ": the registry did not accept the credentials of ci"
    assert refusal_hint(403, "alice", "repository:team-b/app:pull") == (
        ": alice is not allowed this (repository:team-b/app:pull) by the registry's rules"
    )
    assert refusal_hint(404, "alice", "repository:x:pull") == ""
