"""A private registry for one test: Debian's `docker-registry` on 127.0.0.1 and a free port, with htpasswd (bcrypt)
authentication, holding images pushed from the local busybox. Plain HTTP: dockerd treats 127.0.0.0/8 registries as
insecure by default, so it pulls from one without TLS and without `--insecure-registry`.

The registry process is stopped by its PID, its data lives in the test's temporary directory, and the tags the test
made are removed from Docker (the busybox image itself stays: other tests use it).
"""
from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from tests.integration.cloud.conftest import free_port, stop_process
from tests.polling import wait_for

REGISTRY = "/usr/bin/docker-registry"
HTPASSWD = "/usr/bin/htpasswd"
SOURCE_IMAGE = "busybox"


@dataclass(frozen=True)
class Registry:
    address: str  # 127.0.0.1:<port>
    username: str
    password: str

    def image(self, repository: str, tag: str = "v1") -> str:
        return f"{self.address}/{repository}:{tag}"


def _config(root: Path, port: int) -> str:
    return (f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
            f"auth:\n  htpasswd:\n    realm: edgeworkers-test\n    path: {root / 'htpasswd'}\n")


@contextmanager
def private_registry(root: Path, client: docker.DockerClient, repositories: list[str]) -> Iterator[Registry]:
    """A running registry requiring a login, holding ``SOURCE_IMAGE`` as each of ``repositories`` (tag ``v1``), none
    of them left in the local Docker."""
    assert shutil.which(REGISTRY) and shutil.which(HTPASSWD), "ops/setup installs docker-registry and apache2-utils"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    registry = Registry(f"127.0.0.1:{free_port()}", "edge-puller", secrets.token_urlsafe(18))
    line = subprocess.run([HTPASSWD, "-Bbn", registry.username, registry.password], capture_output=True, text=True,
                          check=True).stdout
    (root / "htpasswd").write_text(line)
    (root / "htpasswd").chmod(0o600)
    (root / "config.yml").write_text(_config(root, int(registry.address.rpartition(":")[2])))
    with (root / "registry.log").open("ab") as log:
        process = subprocess.Popen([REGISTRY, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    made: list[str] = []
    try:
        wait_for(lambda: _answers(registry.address), 15, "the registry to answer")
        login = {"username": registry.username, "password": registry.password}
        for repository in repositories:
            image = registry.image(repository)
            client.images.get(SOURCE_IMAGE).tag(image)
            made.append(image)
            for event in client.api.push(image, stream=True, decode=True, auth_config=login):
                assert "error" not in event, event["error"]
            client.api.remove_image(image)  # the pull must come from the registry
        yield registry
    finally:
        stop_process(process)
        shutil.rmtree(root / "data", ignore_errors=True)
        for image in made:  # a tag of busybox's image: removing it (forced: a container may use it) only untags
            try:
                client.api.remove_image(image, force=True)
            except docker.errors.NotFound:
                pass


def _answers(address: str) -> bool:
    try:
        return requests.get(f"http://{address}/v2/", timeout=1).status_code == 401
    except requests.ConnectionError:
        return False
