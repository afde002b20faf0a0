"""DockerRuntime's container names: a dead container of the name is removed first; one the engine cannot remove (its
root filesystem busy after an engine restart) never blocks its pod: the new container takes the next attempt's name.
A stand-in for the SDK's APIClient, no engine needed."""
from __future__ import annotations

from typing import Any

import docker
import pytest
import requests

from edgeworkers.runtime.docker import NAME_ATTEMPTS, DockerRuntime
from edgeworkers.runtime.errors import ContainerCreateError
from edgeworkers.runtime.types import ContainerID


def api_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(message, response=response, explanation=message)


class Engine:
    """Containers by name: (id, running, removable)."""

    def __init__(self) -> None:
        self.containers: dict[str, tuple[str, bool, bool]] = {}
        self.created: list[str] = []

    def create_container(self, name: str, **_kwargs: Any) -> dict[str, str]:
        if name in self.containers:
            raise api_error(409, f'Conflict. The container name "/{name}" is already in use')
        self.containers[name] = (f"id-{name}", False, True)
        self.created.append(name)
        return {"Id": f"id-{name}"}

    def inspect_container(self, name: str) -> dict[str, Any]:
        if name not in self.containers:
            raise docker.errors.NotFound("gone")
        ident, running, _ = self.containers[name]
        return {"Id": ident, "State": {"Running": running}}

    def remove_container(self, ident: str, force: bool = False) -> None:
        name = next(n for n, c in self.containers.items() if c[0] == ident)
        if not self.containers[name][2]:
            raise api_error(500, 'driver "overlay2" failed to remove root filesystem: unlinkat merged: device or '
                                 'resource busy')
        del self.containers[name]


@pytest.fixture
def engine() -> tuple[DockerRuntime, Engine]:
    runtime, engine = DockerRuntime("node"), Engine()
    runtime._client = engine
    return runtime, engine


def test_a_dead_container_of_the_name_is_removed_first(engine) -> None:
    runtime, api = engine
    api.containers["k8s_POD_web_default_uid_0"] = ("old", False, True)
    assert runtime._create("k8s_POD_web_default_uid_0") == ContainerID("docker", "id-k8s_POD_web_default_uid_0")
    assert api.created == ["k8s_POD_web_default_uid_0"]


def test_a_dead_container_the_engine_cannot_remove_is_passed_by(engine) -> None:
    runtime, api = engine
    api.containers["k8s_POD_web_default_uid_0"] = ("stuck", False, False)
    api.containers["k8s_POD_web_default_uid_0_1"] = ("stuck-too", False, False)
    assert runtime._create("k8s_POD_web_default_uid_0") == ContainerID("docker", "id-k8s_POD_web_default_uid_0_2")
    assert api.containers["k8s_POD_web_default_uid_0"][0] == "stuck"  # left to the container GC


def test_a_running_container_of_the_name_is_a_conflict_not_passed_by(engine) -> None:
    runtime, api = engine
    api.containers["k8s_app_web_default_uid_0"] = ("live", True, True)
    with pytest.raises(ContainerCreateError, match="already in use"):
        runtime._create("k8s_app_web_default_uid_0")
    assert api.created == []


def test_the_names_tried_are_bounded(engine) -> None:
    runtime, api = engine
    for attempt in range(NAME_ATTEMPTS):
        api.containers["c" if attempt == 0 else f"c_{attempt}"] = (f"stuck-{attempt}", False, False)
    with pytest.raises(ContainerCreateError, match="cannot be removed"):
        runtime._create("c")
