"""pods/exec and pods/attach through the cloud to the node's real endpoint (FakeRuntime behind it, over TLS with the
cloud's client certificate): relayed messages, refusals in kubectl's words, the SPDY fallback, an unreachable node."""
from __future__ import annotations

import asyncio
import socket
import time

import orjson
import pytest
import pytest_asyncio
from aiohttp import WSMsgType
from multidict import MultiDict

from edgeworkers.cloud.app import create_app
from edgeworkers.cloud.auth import node_identity
from edgeworkers.cloud.authorizer import Attributes, authorize
from edgeworkers.cloud.streams_proxy import node_params
from edgeworkers.k8s import status
from edgeworkers.node.server import create_app as create_node_app
from edgeworkers.runtime.fake import FakeRuntime, frame
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig
from tests.unit.cloud.test_app import AUTH, PODS, TOKEN, create, node, node_tls, pod

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
EXEC = f"{PODS}/web/exec"


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, TOKEN), headers=AUTH)


@pytest.fixture
def runtime() -> FakeRuntime:
    fake = FakeRuntime(node_name="edge-1")
    ref = PodRef("uid-1", "default", "web")
    container = fake.create_container(fake.create_sandbox(SandboxConfig(ref)), ref, ContainerConfig("c", "busybox"))
    fake.start_container(container)
    return fake


@pytest_asyncio.fixture
async def edge(client, aiohttp_server, settings, runtime):
    """The node's endpoint (TLS, the cloud's client certificate required) and a pod bound to it."""
    server = await aiohttp_server(create_node_app(runtime), ssl=node_tls(settings))
    await create(client, "/api/v1/nodes", node(port=server.port))
    await create(client, PODS, pod(nodeName="edge-1"))
    return server


def test_node_params_keep_the_commands_order_and_the_flags():
    query = MultiDict([("command", "sh"), ("container", "c"), ("command", "-c"), ("stdout", "true"), ("tty", "1")])
    assert node_params(query) == [("command", "sh"), ("command", "-c"), ("stdout", "true"), ("tty", "1")]


def test_a_node_may_not_exec_into_pods():
    for sub, verb in (("exec", "get"), ("exec", "create"), ("attach", "get"), ("attach", "create")):
        with pytest.raises(status.APIError) as refused:
            authorize(node_identity("edge-1"), Attributes(verb, "pods", sub, "default", "web"), _NoObjects())
        assert refused.value.code == 403
        assert f'cannot create resource "pods/{sub}"' in refused.value.status["message"]  # whatever the method


class _NoObjects:
    def find(self, resource, namespace, name):
        return None

    def list(self, resource, namespace=None):
        return []


@pytest.mark.asyncio
@pytest.mark.parametrize("protocols", [(V5, V4), (V4,)])
async def test_exec_is_relayed_to_the_node_and_back(client, edge, runtime, protocols):
    def process(_container, command, sock: socket.socket, _tty):
        assert command == ["sh", "-c", "echo"]
        assert sock.recv(5) == b"input"
        sock.sendall(frame(1, b"out\n") + frame(2, b"err\n"))
        return 2

    runtime.stream_handler = process
    params = [("command", "sh"), ("command", "-c"), ("command", "echo"), ("stdin", "true"), ("stdout", "true"),
              ("stderr", "true"), ("container", "c")]
    async with client.ws_connect(EXEC, params=params, protocols=protocols) as ws:
        assert ws.protocol == protocols[0]
        await ws.send_bytes(b"\x00input")
        received: dict[int, bytes] = {}
        async for message in ws:
            assert message.type == WSMsgType.BINARY
            received[message.data[0]] = received.get(message.data[0], b"") + message.data[1:]
    assert received[1] == b"out\n" and received[2] == b"err\n"
    assert orjson.loads(received[3])["details"]["causes"] == [{"reason": "ExitCode", "message": "2"}]
    assert not runtime.open_streams


@pytest.mark.asyncio
async def test_a_client_leaving_ends_the_nodes_stream(client, edge, runtime):
    runtime.stream_handler = lambda _c, _cmd, sock, _tty: len(sock.recv(1))  # runs until closed under it
    ws = await client.ws_connect(EXEC, params=[("command", "sleep"), ("stdout", "true")], protocols=(V5,))
    assert runtime.open_streams
    await ws.close()
    deadline = time.monotonic() + 5
    while runtime.open_streams:
        assert time.monotonic() < deadline, "the node's stream stayed open"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_kubectls_spdy_fallback_gets_the_nodes_refusal_as_text(client, edge, runtime):
    runtime.exit(next(c.id for c in runtime.list_containers() if c.name == "c"), 0)
    spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    resp = await client.post(EXEC, params={"command": "true", "stdout": "true"}, headers=spdy)
    assert resp.status == 404
    assert await resp.text() == 'container not found ("c")'  # kubectl: unable to upgrade connection: container ...


@pytest.mark.asyncio
async def test_kubectls_spdy_fallback_is_told_only_websocket_is_served(client, edge):
    spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    resp = await client.post(EXEC, params={"command": "true", "stdout": "true"}, headers=spdy)
    assert resp.status == 400
    body = await resp.json()
    assert body["reason"] == "BadRequest" and "WebSocket only" in body["message"]


@pytest.mark.asyncio
async def test_refusals_before_the_node(client, edge):
    missing = await client.get(f"{PODS}/nope/exec", params={"command": "true", "stdout": "true"})
    assert missing.status == 404 and (await missing.json())["message"] == 'pods "nope" not found'
    wrong = await client.get(EXEC, params={"command": "true", "stdout": "true", "container": "x"})
    assert (await wrong.json())["message"] == "container x is not valid for pod web"
    old = await client.get(EXEC, params={"command": "true", "stdout": "true"},
                           headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                    "Sec-WebSocket-Protocol": "v3.channel.k8s.io"})
    assert old.status == 400 and "none of the offered subprotocols" in (await old.json())["message"]


@pytest.mark.asyncio
async def test_an_unreachable_node_is_a_clear_error_at_once(client):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await create(client, "/api/v1/nodes", node(port=port))
    await create(client, PODS, pod(nodeName="edge-1"))
    started = time.monotonic()
    resp = await client.get(EXEC, params={"command": "true", "stdout": "true"},
                            headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": V5})
    assert resp.status == 500
    assert "error dialing backend" in (await resp.json())["message"]
    assert time.monotonic() - started < 5
