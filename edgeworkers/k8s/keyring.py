"""Registry credentials from image pull secrets, matched to an image as kubelet's credential keyring matches them
(``pkg/credentialprovider/keyring.go`` and ``config.go``, ``secrets/secrets.go``'s ``MakeDockerKeyring``).

A ``kubernetes.io/dockerconfigjson`` secret holds ``{"auths": {location: entry}}`` under ``.dockerconfigjson``; a
legacy ``kubernetes.io/dockercfg`` secret holds ``{location: entry}`` under ``.dockercfg``. An entry has ``username``
and ``password`` (or ``auth``, base64 of ``username:password``, which wins), ``email``, and may carry an
``identitytoken`` or ``registrytoken``. A location is a registry host with an optional port and path, with or without
a scheme (``https://index.docker.io/v1/``, ``127.0.0.1:5000``, ``registry.example.com/team``); ``/v1/`` and ``/v2/``
mean the host alone. Its host parts may be globs (``*.example.com``).

An image matches a location when the host has as many dot-separated parts, each matching its glob, the ports are equal
and the location's path is a prefix of the image's repository path. Every matching credential is returned, the most
specific location first (the locations reverse-sorted); without any, Docker Hub's credentials (``index.docker.io``)
serve an image of Docker Hub. Pure: no I/O; nothing here puts a credential into a message or a ``repr``.
"""
from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
DOCKERCFG_KEY = ".dockercfg"
DEFAULT_REGISTRY_HOST = "index.docker.io"
DOCKER_HUB = "docker.io"


class KeyringError(ValueError):
    """A pull secret that cannot be read; the message names the secret, never its content."""


@dataclass(frozen=True)
class RegistryAuth:
    """One credential for a registry location (``registry``); the secret fields stay out of its ``repr``."""

    registry: str
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    def docker(self) -> dict[str, str]:
        """The ``auth_config`` Docker's pull takes (its ``X-Registry-Auth`` header)."""
        config = {"username": self.username, "password": self.password, "email": self.email,
                  "identitytoken": self.identity_token, "registrytoken": self.registry_token}
        return {key: value for key, value in config.items() if value}

    def redact(self, text: str) -> str:
        """``text`` with every secret of this credential (and its ``auth`` encoding) replaced by ``***``."""
        secrets = [self.password, self.identity_token, self.registry_token]
        if self.password:
            secrets.append(base64.b64encode(f"{self.username}:{self.password}".encode()).decode())
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def repository(image: str) -> str:
    """The repository an image reference pulls from, normalized as Docker does (kubelet's ``ParseImageName``):
    ``busybox:1.36`` -> ``docker.io/library/busybox``, ``127.0.0.1:5000/a/b@sha256:..`` -> ``127.0.0.1:5000/a/b``."""
    name = image.partition("@")[0]
    head, slash, last = name.rpartition("/")
    name = f"{head}{slash}{last.partition(':')[0]}"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return f"{DOCKER_HUB}/{rest}" if first == DEFAULT_REGISTRY_HOST else name
    return f"{DOCKER_HUB}/{name}" if rest else f"{DOCKER_HUB}/library/{name}"


def _entry(location: str, raw: Any, secret: str) -> RegistryAuth:
    if not isinstance(raw, dict):
        raise KeyringError(f'secret "{secret}": the entry of registry "{location}" is not an object')
    values = {key: raw.get(key) for key in ("username", "password", "email", "auth", "identitytoken",
                                            "registrytoken")}
    if any(value is not None and not isinstance(value, str) for value in values.values()):
        raise KeyringError(f'secret "{secret}": the entry of registry "{location}" holds a value that is not a string')
    username, password = values["username"] or "", values["password"] or ""
    if values["auth"]:
        try:
            decoded = base64.b64decode(values["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not colon:
            raise KeyringError(f'secret "{secret}": the auth field of registry "{location}" must be formatted as '
                               "base64(username:password)")
    return RegistryAuth(location, username, password, values["email"] or "", values["identitytoken"] or "",
                        values["registrytoken"] or "")


def _decoded(data: dict[str, Any], key: str, secret: str) -> Any:
    try:
        return json.loads(base64.b64decode(str(data.get(key) or ""), validate=True))
    except (binascii.Error, ValueError):
        raise KeyringError(f'secret "{secret}": {key} is not valid JSON') from None


def secret_entries(secret: dict[str, Any]) -> list[RegistryAuth]:
    """The credentials of a pull secret (as the API serves it: ``data`` in base64); none from a secret of another
    type or without its key, as kubelet ignores those. ``KeyringError`` for one that cannot be read."""
    name = (secret.get("metadata") or {}).get("name") or ""
    data = secret.get("data") or {}
    kind = secret.get("type")
    if kind == DOCKER_CONFIG_JSON and data.get(DOCKER_CONFIG_JSON_KEY):
        config = _decoded(data, DOCKER_CONFIG_JSON_KEY, name)
        auths = config.get("auths") if isinstance(config, dict) else None
    elif kind == DOCKERCFG and data.get(DOCKERCFG_KEY):
        auths = _decoded(data, DOCKERCFG_KEY, name)
    else:
        return []
    if auths is None:
        return []
    if not isinstance(auths, dict):
        raise KeyringError(f'secret "{name}": its registries are not an object')
    return [_entry(location, raw, name) for location, raw in auths.items()]


def _key(location: str) -> str:
    """The index key of a location: its host[:port] and path, without scheme; ``/v1/`` and ``/v2/`` are the host."""
    parsed = urlsplit(location if location.startswith(("https://", "http://")) else f"https://{location}")
    path = parsed.path[3:] if parsed.path.startswith(("/v1/", "/v2/")) else parsed.path
    return parsed.netloc + path if path and path != "/" else parsed.netloc


def _split(text: str) -> tuple[list[str], str, str]:
    """A schemeless URL's host parts, port and path."""
    parsed = urlsplit(f"https://{text}")
    host, port = parsed.netloc, ""
    if ":" in host and not host.endswith("]"):
        host, _, port = host.rpartition(":")
    return host.split("."), port, parsed.path


def matches(location_key: str, repo: str) -> bool:
    """Whether the credentials of ``location_key`` (a glob in its host parts) serve repository ``repo``."""
    glob_parts, glob_port, glob_path = _split(location_key)
    parts, port, path = _split(repo)
    return (glob_port == port and len(glob_parts) == len(parts) and path.startswith(glob_path)
            and all(fnmatch.fnmatchcase(part, glob) for glob, part in zip(glob_parts, parts)))


def _is_docker_hub(repo: str) -> bool:
    first, slash, _ = repo.partition("/")
    if not first:
        return False
    return not slash or first in (DOCKER_HUB, DEFAULT_REGISTRY_HOST) or not any(c in first for c in ".:")


def lookup(credentials: list[RegistryAuth], image: str) -> list[RegistryAuth]:
    """The credentials to try, in turn, for pulling ``image``: those of every matching location, most specific first;
    none when no location matches (the pull goes without credentials)."""
    by_key: dict[str, list[RegistryAuth]] = {}
    for credential in credentials:
        by_key.setdefault(_key(credential.registry), []).append(credential)
    repo = repository(image)
    found = [c for key in sorted(by_key, reverse=True) if matches(key, repo) for c in by_key[key]]
    if not found and _is_docker_hub(repo):
        return by_key.get(DEFAULT_REGISTRY_HOST, [])
    return found
