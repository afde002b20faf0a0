"""The node endpoint serves only the cloud: HTTPS with the node's certificate, the cloud's client certificate
required (401 without it); plain HTTP gets /healthz and 401 for anything else."""
from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from edgeworkers.cloud.tls import ensure_credentials, issue_node_credentials, node_client_context
from edgeworkers.node import server
from edgeworkers.runtime.fake import FakeRuntime

LOGS = "/containerLogs/default/web/app"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest_asyncio.fixture
async def endpoint(settings) -> AsyncIterator[tuple[int, object]]:
    directory = issue_node_credentials(settings, "edge-1").parent
    port = free_port()
    running = await server.start(server.create_app(FakeRuntime(node_name="edge-1")), "127.0.0.1", port,
                                 server.tls_context(directory))
    yield port, directory
    await running.cleanup()


@pytest.mark.asyncio
async def test_the_cloud_with_its_client_certificate_is_served(endpoint, settings) -> None:
    port, _ = endpoint
    cloud = node_client_context(ensure_credentials(settings.cloud_data_dir))
    async with aiohttp.ClientSession() as session:
        # The cloud dials the node by its name, which its certificate names (127.0.0.1 names every machine: not it).
        resp = await session.get(f"https://127.0.0.1:{port}/healthz", ssl=cloud, server_hostname="edge-1")
        assert (resp.status, await resp.text()) == (200, "ok")
        resp = await session.get(f"https://127.0.0.1:{port}{LOGS}", ssl=cloud, server_hostname="edge-1")
        assert resp.status == 404  # served: the fake runtime has no such container


@pytest.mark.asyncio
async def test_any_other_caller_gets_401(endpoint, settings) -> None:
    port, directory = endpoint
    anonymous = ssl.create_default_context(cafile=str(settings.cloud_data_dir / "kubelet-serving-ca.crt"))
    anonymous.check_hostname = False
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", LOGS):
            resp = await session.get(f"https://127.0.0.1:{port}{path}", ssl=anonymous)
            assert (resp.status, await resp.text()) == (401, "Unauthorized"), path
        for path in ("/healthz", LOGS):  # plain HTTP: no answer at all
            with pytest.raises(aiohttp.ClientError):
                await session.get(f"http://127.0.0.1:{port}{path}")


@pytest.mark.asyncio
async def test_a_certificate_from_another_ca_fails_the_handshake(endpoint, tmp_path, settings) -> None:
    port, _ = endpoint
    other = settings.model_copy(update={"cloud_data_dir": tmp_path / "other-cloud"})
    stranger = node_client_context(ensure_credentials(other.cloud_data_dir))
    stranger.check_hostname = False
    stranger.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"https://127.0.0.1:{port}{LOGS}", ssl=stranger)
