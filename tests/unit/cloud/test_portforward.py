"""Port-forward end to end in one process: a client's protocol at the cloud's translation, the node endpoint (with a
FakeRuntime whose pod is host-network, so its address is 127.0.0.1) and a TCP server standing for the pod's port."""
from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from edgeworkers.cloud import portforward, spdy
from edgeworkers.node import portforward as node_portforward
from edgeworkers.node.server import create_app
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import PodRef, SandboxConfig

pytestmark = pytest.mark.asyncio


class PodPort:
    """A TCP server on 127.0.0.1: answers ``hello <what it read>`` and closes, unless ``hold`` (then it keeps the
    connection until the peer ends it, and records that)."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.ended = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hold:
            await reader.read()  # until the peer goes
            self.ended.set()
        else:
            request = await reader.readuntil(b"\n")
            writer.write(b"hello " + request)
            await writer.drain()
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]


@pytest_asyncio.fixture
async def pod_port() -> AsyncIterator[PodPort]:
    served = PodPort()
    served.server = await asyncio.start_server(served.handle, "127.0.0.1", 0)
    yield served
    served.server.close()


@pytest_asyncio.fixture
async def node(aiohttp_client: Any) -> Any:
    runtime = FakeRuntime(node_name="edge-1")
    runtime.create_sandbox(SandboxConfig(pod=PodRef("uid-1", "default", "web"), host_network=True))
    return await aiohttp_client(create_app(runtime, allow_anonymous=True))


@pytest_asyncio.fixture
async def cloud(aiohttp_client: Any, node: Any) -> Any:
    """An app serving the cloud's side of both protocols, its node connections going to ``node``."""

    async def connect(port: int) -> Any:
        return await node.ws_connect(f"/portForward/default/web?port={port}")

    async def tunnel(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=portforward.PROTOCOLS)
        await ws.prepare(request)
        await portforward.SpdySession(ws, connect).run()
        return ws

    async def channels(request: web.Request) -> web.WebSocketResponse:
        ports = portforward.parse_ports(request.query["ports"])
        upstreams = [await connect(port) for port in ports]
        ws = web.WebSocketResponse(protocols=portforward.PROTOCOLS)
        await ws.prepare(request)
        await portforward.serve_channels(ws, ports, upstreams)
        return ws

    app = web.Application()
    app.router.add_get("/tunnel", tunnel)
    app.router.add_get("/channels", channels)
    return await aiohttp_client(app)


class Kubectl:
    """What kubectl's SPDY client does on the tunnel: streams, data, and the frames it gets back."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
        self.reader = spdy.FrameReader()
        self.inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
        self.pending: list[Any] = []

    async def syn_stream(self, stream_id: int, kind: str, port: int, request_id: int) -> None:
        headers = {"streamType": kind, "port": str(port), "requestID": str(request_id)}
        block = self.deflate.compress(spdy.encode_headers(headers)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIH", stream_id, 0, 0) + block
        await self.ws.send_bytes(struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(payload)) + payload)

    async def connection(self, first_stream: int, port: int, request_id: int) -> tuple[int, int]:
        error, data = first_stream, first_stream + 2
        await self.syn_stream(error, "error", port, request_id)
        await self.syn_stream(data, "data", port, request_id)
        return error, data

    async def frame(self) -> Any:
        while not self.pending:
            msg = await asyncio.wait_for(self.ws.receive(), 5)
            assert msg.type == WSMsgType.BINARY, msg
            if msg.data[:4] == struct.pack(">HH", 0x8003, spdy.SYN_REPLY):  # the reader ignores replies: check here
                self.pending.append(("reply", struct.unpack_from(">I", msg.data, 8)[0]))
                self.inflate.decompress(msg.data[12:])
            else:
                self.pending += self.reader.feed(msg.data)
        return self.pending.pop(0)

    async def stream_contents(self, streams: set[int]) -> dict[int, bytes]:
        """What each of ``streams`` carries, until each ended (FIN)."""
        contents = {s: b"" for s in streams}
        open_streams = set(streams)
        while open_streams:
            frame = await self.frame()
            if isinstance(frame, spdy.Data) and frame.stream_id in open_streams:
                contents[frame.stream_id] += frame.data
                if frame.fin:
                    open_streams.discard(frame.stream_id)
        return contents


async def test_kubectls_tunnel_forwards_a_connection_and_ends_both_streams(cloud: Any, pod_port: PodPort) -> None:
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        assert ws.protocol == portforward.SPDY_TUNNEL
        kubectl = Kubectl(ws)
        error, data = await kubectl.connection(1, pod_port.port, 0)
        assert [await kubectl.frame(), await kubectl.frame()] == [("reply", error), ("reply", data)]
        await ws.send_bytes(spdy.data(data, b"GET /\n"))
        assert await kubectl.stream_contents({error, data}) == {error: b"", data: b"hello GET /\n"}


async def test_connections_at_once_on_one_tunnel_each_get_their_own_answer(cloud: Any, pod_port: PodPort) -> None:
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        kubectl = Kubectl(ws)
        pairs = [await kubectl.connection(1 + 4 * i, pod_port.port, i) for i in range(5)]
        for i, (_, data) in enumerate(pairs):
            await ws.send_bytes(spdy.data(data, f"number {i}\n".encode()))
        contents = await kubectl.stream_contents({s for pair in pairs for s in pair})
        assert [contents[data] for _, data in pairs] == [f"hello number {i}\n".encode() for i in range(5)]
        await ws.send_bytes(spdy.ping(1))
        assert await kubectl.frame() == spdy.Ping(1)


async def test_a_closed_port_is_reported_on_the_error_stream(cloud: Any, pod_port: PodPort) -> None:
    closed = pod_port.port
    assert pod_port.server is not None
    pod_port.server.close()
    await pod_port.server.wait_closed()
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        kubectl = Kubectl(ws)
        error, data = await kubectl.connection(1, closed, 0)
        contents = await kubectl.stream_contents({error, data})
        assert contents[data] == b""
        assert contents[error].decode().endswith(f"dial tcp 127.0.0.1:{closed}: connect: connection refused")


async def test_a_client_that_goes_away_ends_the_pods_connection(cloud: Any, pod_port: PodPort) -> None:
    pod_port.hold = True
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        kubectl = Kubectl(ws)
        _, data = await kubectl.connection(1, pod_port.port, 0)
        await ws.send_bytes(spdy.data(data, b"partial"))
        await kubectl.frame()
        await kubectl.frame()
    await asyncio.wait_for(pod_port.ended.wait(), 5)


async def test_a_reset_stream_ends_its_connection_only(cloud: Any, pod_port: PodPort) -> None:
    pod_port.hold = True
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        kubectl = Kubectl(ws)
        error, data = await kubectl.connection(1, pod_port.port, 0)
        await ws.send_bytes(spdy.data(data, b"x"))
        await ws.send_bytes(spdy.rst_stream(data, spdy.CANCEL))
        await asyncio.wait_for(pod_port.ended.wait(), 5)
        await ws.send_bytes(spdy.ping(3))
        frames = [await kubectl.frame() for _ in range(5)]
        assert spdy.Ping(3) in frames  # the session lives on
        assert spdy.Data(data, b"", True) in frames and spdy.Data(error, b"", True) in frames


async def test_a_stream_without_a_valid_port_is_refused(cloud: Any) -> None:
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        kubectl = Kubectl(ws)
        await kubectl.syn_stream(1, "error", 0, 0)
        await kubectl.syn_stream(3, "stdin", 80, 0)
        assert [await kubectl.frame(), await kubectl.frame()] == [
            spdy.RstStream(1, spdy.REFUSED_STREAM), spdy.RstStream(3, spdy.REFUSED_STREAM)]


async def test_the_channel_protocol_announces_the_port_then_carries_the_data(cloud: Any, pod_port: PodPort) -> None:
    async with cloud.ws_connect(f"/channels?ports={pod_port.port}",
                                protocols=["v5.channel.k8s.io", portforward.V4_CHANNEL]) as ws:
        assert ws.protocol == portforward.V4_CHANNEL
        prefix = struct.pack("<H", pod_port.port)
        assert [(await ws.receive_bytes(timeout=5)) for _ in range(2)] == [b"\0" + prefix, b"\1" + prefix]
        await ws.send_bytes(b"\0GET /\n")
        assert await ws.receive_bytes(timeout=5) == b"\0hello GET /\n"
        closing = await ws.receive(timeout=5)  # the pod closed: so does the client's WebSocket
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)


@pytest.mark.parametrize(("raw", "ok"), [("80", [80]), ("80,8080,80", [80, 8080]), ("0", None), ("x", None),
                                         ("70000", None), ("", None)])
async def test_ports_are_checked(raw: str, ok: list[int] | None) -> None:
    if ok is None:
        with pytest.raises(Exception, match="invalid port"):
            portforward.parse_ports(raw)
    else:
        assert portforward.parse_ports(raw) == ok


async def test_the_node_ends_a_connection_idle_both_ways(aiohttp_client: Any, pod_port: PodPort) -> None:
    runtime = FakeRuntime(node_name="edge-1")
    runtime.create_sandbox(SandboxConfig(pod=PodRef("uid-1", "default", "web"), host_network=True))

    async def in_thread(func: Any, *args: Any) -> Any:
        return func(*args)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await node_portforward.port_forward(request, runtime, in_thread, idle_timeout_s=0.3)

    app = web.Application()
    app.router.add_get("/portForward/{namespace}/{pod}", handler)
    node = await aiohttp_client(app)
    pod_port.hold = True
    async with node.ws_connect(f"/portForward/default/web?port={pod_port.port}") as ws:
        await ws.send_bytes(b"some")
        closing = await ws.receive(timeout=5)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    await asyncio.wait_for(pod_port.ended.wait(), 5)


async def test_the_node_answers_404_for_a_pod_it_does_not_run_and_400_for_a_bad_port(node: Any) -> None:
    missing = await node.get("/portForward/default/nope?port=80")
    assert (missing.status, await missing.text()) == (404, 'pod "nope" is not running on this node')
    bad = await node.get("/portForward/default/web?port=99999")
    assert bad.status == 400


async def test_data_on_a_stream_whose_pair_never_completes_is_refused_not_queued_forever(cloud: Any) -> None:
    async with cloud.ws_connect("/tunnel", protocols=[portforward.SPDY_TUNNEL]) as ws:
        kubectl = Kubectl(ws)
        await kubectl.syn_stream(3, "data", 80, 0)  # no error stream: the connection never starts
        assert await kubectl.frame() == ("reply", 3)
        for _ in range(portforward.QUEUE_CHUNKS + 1):
            await ws.send_bytes(spdy.data(3, b"x"))
        assert await kubectl.frame() == spdy.RstStream(3, spdy.PROTOCOL_ERROR)
        await ws.send_bytes(spdy.ping(5))
        assert await kubectl.frame() == spdy.Ping(5)
