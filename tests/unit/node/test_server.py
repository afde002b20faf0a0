"""The node endpoint over HTTP, against the FakeRuntime: logs by labels, options, kubelet-style errors."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from edgeworkers.node.server import create_app
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import (
    ContainerConfig,
    ContainerID,
    PodRef,
    SandboxConfig,
)
from tests.unit.clock import Clock

Client = Callable[..., Awaitable[TestClient]]
POD = PodRef("uid-1", "default", "web")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 26, 14, 0, 0, tzinfo=UTC))


@pytest.fixture
def runtime(clock: Clock) -> FakeRuntime:
    return FakeRuntime(node_name="edge-1", clock=clock)


def start_app(runtime: FakeRuntime, name: str = "app", restarts: int = 0) -> ContainerID:
    sandbox = runtime.create_sandbox(SandboxConfig(POD))
    container = runtime.create_container(sandbox, POD, ContainerConfig(name, "busybox", restart_count=restarts))
    runtime.start_container(container)
    return container


@pytest.mark.asyncio
async def test_healthz(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    client = await aiohttp_client(create_app(runtime, allow_anonymous=True))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.text() == "ok"


@pytest.mark.asyncio
async def test_logs_are_found_by_labels_and_filtered(
    aiohttp_client: Client, runtime: FakeRuntime, clock: Clock
) -> None:
    app = start_app(runtime)
    runtime.write_log(app, b"one\ntwo\n")
    clock.now += timedelta(seconds=60)
    runtime.write_log(app, b"three\n")
    client = await aiohttp_client(create_app(runtime, clock, allow_anonymous=True))

    whole = await client.get("/containerLogs/default/web/app")
    assert whole.status == 200
    assert whole.headers["Content-Type"] == "text/plain"
    assert await whole.text() == "one\ntwo\nthree\n"
    assert await (await client.get("/containerLogs/default/web/app?tailLines=2")).text() == "two\nthree\n"
    assert await (await client.get("/containerLogs/default/web/app?sinceSeconds=10")).text() == "three\n"
    assert await (await client.get("/containerLogs/default/web/app?limitBytes=5")).text() == "one\nt"
    stamped = await (await client.get("/containerLogs/default/web/app?tailLines=1&timestamps=true")).text()
    assert stamped == "2026-11-26T14:01:00Z three\n"


@pytest.mark.asyncio
async def test_previous_reads_the_last_exited_instance(
    aiohttp_client: Client, runtime: FakeRuntime, clock: Clock
) -> None:
    first = start_app(runtime)
    runtime.write_log(first, b"first life\n")
    runtime.exit(first, 1)
    clock.now += timedelta(seconds=1)
    sandbox = next(c.id for c in runtime.list_containers() if c.is_sandbox)
    second = runtime.create_container(sandbox, POD, ContainerConfig("app", "busybox", restart_count=1))
    runtime.start_container(second)
    runtime.write_log(second, b"second life\n")
    client = await aiohttp_client(create_app(runtime, clock, allow_anonymous=True))

    assert await (await client.get("/containerLogs/default/web/app")).text() == "second life\n"
    assert await (await client.get("/containerLogs/default/web/app?previous=true")).text() == "first life\n"


@pytest.mark.asyncio
async def test_errors_read_as_kubelets(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    start_app(runtime)
    client = await aiohttp_client(create_app(runtime, allow_anonymous=True))

    missing = await client.get("/containerLogs/default/web/nope")
    assert missing.status == 404
    assert await missing.text() == 'container "nope" in pod "web" is not available'
    no_previous = await client.get("/containerLogs/default/web/app?previous=true")
    assert no_previous.status == 400
    assert await no_previous.text() == 'previous terminated container "app" in pod "web" not found'
    bad = await client.get("/containerLogs/default/web/app?tailLines=-3")
    assert bad.status == 400
    runtime.unavailable = True
    down = await client.get("/containerLogs/default/web/app")
    assert down.status == 503
    assert "Cannot connect to the Docker daemon" in await down.text()


@pytest.mark.asyncio
async def test_an_engine_error_is_a_500_with_its_message(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    start_app(runtime)
    runtime.fail("logs", ContainerRuntimeError("logs of docker://x: 500 Server Error"))
    client = await aiohttp_client(create_app(runtime, allow_anonymous=True))
    response = await client.get("/containerLogs/default/web/app")
    assert (response.status, await response.text()) == (500, "logs of docker://x: 500 Server Error")
