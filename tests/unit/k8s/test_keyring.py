"""The pull secrets' keyring (k8s.keyring): kubelet's credentialprovider matching, from tables."""
from __future__ import annotations

import base64
import json

import pytest

from edgeworkers.k8s.keyring import (
    DOCKER_CONFIG_JSON,
    DOCKERCFG,
    KeyringError,
    RegistryAuth,
    lookup,
    matches,
    repository,
    secret_entries,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def config_secret(auths: dict, name: str = "regcred") -> dict:
    return {"metadata": {"name": name}, "type": DOCKER_CONFIG_JSON,
            "data": {".dockerconfigjson": b64(json.dumps({"auths": auths}))}}


@pytest.mark.parametrize(("image", "repo"), [
    ("busybox", "docker.io/library/busybox"),
    ("busybox:1.36", "docker.io/library/busybox"),
    ("team/app:1", "docker.io/team/app"),
    ("docker.io/team/app", "docker.io/team/app"),
    ("index.docker.io/team/app", "docker.io/team/app"),
    ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app"),
    ("localhost/app", "localhost/app"),
    ("registry.example.com/app@sha256:" + "a" * 64, "registry.example.com/app"),
])
def test_an_image_pulls_from_its_normalized_repository(image: str, repo: str) -> None:
    assert repository(image) == repo


@pytest.mark.parametrize(("location", "repo", "expected"), [
    ("127.0.0.1:5000", "127.0.0.1:5000/team/app", True),
    ("127.0.0.1:5001", "127.0.0.1:5000/team/app", False),  # another port
    ("127.0.0.1", "127.0.0.1:5000/team/app", False),  # no port is another port
    ("registry.example.com/team", "registry.example.com/team/app", True),  # a path prefix
    ("registry.example.com/other", "registry.example.com/team/app", False),
    ("*.example.com", "registry.example.com/app", True),  # globs in host parts
    ("*.example.com", "a.registry.example.com/app", False),  # a glob matches one part
    ("example.com", "registry.example.com/app", False),
])
def test_a_location_matches_by_host_port_and_path_prefix(location: str, repo: str, expected: bool) -> None:
    assert matches(location, repo) is expected


def test_every_matching_credential_is_returned_the_most_specific_first() -> None:
    credentials = secret_entries(config_secret({
        "https://registry.example.com": {"username": "all", "password": "p1"},
        "registry.example.com/team": {"username": "team", "password": "p2"},
        "other.example.com": {"username": "other", "password": "p3"},
    }))
    found = lookup(credentials, "registry.example.com/team/app:1")
    assert [c.username for c in found] == ["team", "all"]
    assert lookup(credentials, "unrelated.io/app") == []


def test_docker_hub_credentials_serve_docker_hub_images_only() -> None:
    credentials = secret_entries(config_secret({"https://index.docker.io/v1/": {"auth": b64("hub:secret")}}))
    assert [(c.username, c.password) for c in lookup(credentials, "team/app")] == [("hub", "secret")]
    assert [c.username for c in lookup(credentials, "docker.io/library/busybox")] == ["hub"]
    assert lookup(credentials, "127.0.0.1:5000/app") == []


def test_the_auth_field_wins_over_username_and_password() -> None:
    [entry] = secret_entries(config_secret({"r.io": {"username": "u", "password": "x", "auth": b64("bob:pa:ss"),
                                                     "email": "b@example.com"}}))
    assert (entry.username, entry.password, entry.email) == ("bob", "pa:ss", "b@example.com")
    assert entry.docker() == {"username": "bob", "password": "pa:ss", "email": "b@example.com"}


def test_a_legacy_dockercfg_secret_is_read_too() -> None:
    secret = {"metadata": {"name": "old"}, "type": DOCKERCFG,
              "data": {".dockercfg": b64(json.dumps({"r.io:5000": {"username": "u", "password": "p"}}))}}
    assert [(c.registry, c.username) for c in secret_entries(secret)] == [("r.io:5000", "u")]


def test_secrets_of_other_types_hold_no_credential() -> None:
    assert secret_entries({"type": "Opaque", "data": {".dockerconfigjson": b64("{}")}}) == []
    assert secret_entries({"type": DOCKER_CONFIG_JSON, "data": {}}) == []


@pytest.mark.parametrize("auths", [
    {"r.io": {"auth": b64("no-colon-secret")}},
    {"r.io": "not-an-object"},
    {"r.io": {"password": 1234}},
])
def test_an_unreadable_secret_is_refused_without_its_content(auths: dict) -> None:
    with pytest.raises(KeyringError) as caught:
        secret_entries(config_secret(auths))
    assert "regcred" in str(caught.value) and "secret" in str(caught.value)
    assert "no-colon-secret" not in str(caught.value) and "1234" not in str(caught.value)


def test_a_secret_that_is_not_json_is_refused() -> None:
    secret = {"metadata": {"name": "bad"}, "type": DOCKER_CONFIG_JSON, "data": {".dockerconfigjson": b64("{oops")}}
    with pytest.raises(KeyringError, match='secret "bad": .dockerconfigjson is not valid JSON'):
        secret_entries(secret)


def test_a_credential_shows_no_secret_in_its_repr_and_redacts_them_from_text() -> None:
    auth = RegistryAuth("r.io", "bob", "hunter22", identity_token="tok-123")
    assert "hunter22" not in repr(auth) and "tok-123" not in repr(auth)
    text = f"denied: hunter22 tok-123 {b64('bob:hunter22')}"
    assert auth.redact(text) == "denied: *** *** ***"
