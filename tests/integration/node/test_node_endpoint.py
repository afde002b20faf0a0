"""The node endpoint on the real Docker engine: containers found by their labels, plain and followed logs."""
from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

import docker
import pytest
from aiohttp.test_utils import TestClient

from edgeworkers.node.server import create_app
from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import PodRef

Client = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def runtime(node_name: str) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name, timeout_s=3600)
    yield runtime
    runtime.close()


def run_container(
    client: docker.DockerClient, node: str, pod: PodRef, name: str, script: str, restarts: int = 0
) -> docker.models.containers.Container:
    return client.containers.run(
        "busybox", ["sh", "-c", script], detach=True,
        name=labels.docker_name(pod, name, restarts),
        labels=labels.for_container(node, pod, name, labels.TYPE_APP, restarts),
    )


def wait_exited(container: docker.models.containers.Container, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            return
        time.sleep(0.05)
    raise AssertionError(f"{container.name} still {container.status}")


@pytest.mark.asyncio
async def test_logs_tail_timestamps_and_previous(
    aiohttp_client: Client, docker_client: docker.DockerClient, node_name: str, runtime: DockerRuntime
) -> None:
    pod = PodRef(uuid.uuid4().hex, "default", "web")
    first = run_container(docker_client, node_name, pod, "app", "echo first life; exit 1")
    wait_exited(first)
    second = run_container(docker_client, node_name, pod, "app", "echo one; echo two; echo three", restarts=1)
    wait_exited(second)
    client = await aiohttp_client(create_app(runtime, allow_anonymous=True))

    assert await (await client.get("/containerLogs/default/web/app")).text() == "one\ntwo\nthree\n"
    assert await (await client.get("/containerLogs/default/web/app?tailLines=1")).text() == "three\n"
    stamped = await (await client.get("/containerLogs/default/web/app?tailLines=1&timestamps=true")).text()
    assert stamped.endswith("Z three\n") and stamped.startswith("20")
    assert await (await client.get("/containerLogs/default/web/app?previous=true")).text() == "first life\n"
    missing = await client.get("/containerLogs/default/web/db")
    assert (missing.status, await missing.text()) == (404, 'container "db" in pod "web" is not available')


@pytest.mark.asyncio
async def test_follow_streams_until_the_container_ends(
    aiohttp_client: Client, docker_client: docker.DockerClient, node_name: str, runtime: DockerRuntime
) -> None:
    pod = PodRef(uuid.uuid4().hex, "default", "ticker")
    run_container(docker_client, node_name, pod, "app", "for i in 1 2 3; do echo tick $i; sleep 0.5; done")
    client = await aiohttp_client(create_app(runtime, allow_anonymous=True))

    started = time.monotonic()
    response = await client.get("/containerLogs/default/ticker/app?follow=true")
    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    first = await response.content.readline()
    assert first == b"tick 1\n"
    assert time.monotonic() - started < 1.0, "the first line arrives before the container ends"
    rest = await response.content.read()  # returns once the server ends the stream
    assert rest == b"tick 2\ntick 3\n"
