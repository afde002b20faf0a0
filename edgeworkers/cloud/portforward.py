"""``pods/{name}/portforward``: the client's streams, proxied to the node's endpoint one connection at a time.

Two client protocols, both over a WebSocket, as kube-apiserver 1.32 serves them:

- ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.32's default, its "tunnelling"): SPDY/3.1 frames inside the
  WebSocket's binary messages. Each forwarded connection is a pair of SPDY streams sharing a ``requestID`` header:
  ``streamType: error`` then ``streamType: data``, each naming the ``port``. The data stream carries the bytes, the
  error stream an error message; both end (FIN) when the connection does.
- ``v4.channel.k8s.io`` (the official Python client's ``portforward``): the ``ports`` query names the ports; port
  number i has data channel 2i and error channel 2i+1; each message starts with its channel's byte, and the
  server's first message on each channel is the port, 2 bytes little-endian. One connection per port.

Each forwarded connection becomes one WebSocket to the node (``edgeworkers.node.portforward``), which connects to
the pod. Nothing buffers a whole stream: a queue of a few chunks per connection, and the reader of the client
waits when one is full. A client that goes away closes every node WebSocket it opened; kubectl's plain SPDY upgrade
(its fallback) answers 400.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import WSMsgType, web

from edgeworkers.cloud import spdy
from edgeworkers.cloud.store import Store
from edgeworkers.config import settings
from edgeworkers.k8s import status

log = structlog.get_logger(__name__)

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
V4_CHANNEL = "v4.channel.k8s.io"
PROTOCOLS = (SPDY_TUNNEL, V4_CHANNEL)
MAX_CONNECTIONS = 128  # forwarded connections at once on one client session
QUEUE_CHUNKS = 8  # chunks waiting for a node WebSocket before the client's reader waits
MAX_MESSAGE = spdy.MAX_FRAME + 64
_EOF = b""  # in a queue: the client ended what it sends (a half-close)

Upstream = aiohttp.ClientWebSocketResponse
Connect = Callable[[int], Awaitable[Upstream]]


class UpstreamError(Exception):
    """The node could not be reached for this connection; the message is for the client."""


def node_url(node: dict, namespace: str, pod: str) -> str:
    """The node endpoint's port-forward URL, found as the API server finds a kubelet (InternalIP, daemon port)."""
    node_status = node.get("status") or {}
    port = (((node_status.get("daemonEndpoints") or {}).get("kubeletEndpoint")) or {}).get("Port")
    address = next((a["address"] for a in node_status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    if not port or not address:
        raise status.internal(f'node "{node["metadata"]["name"]}" reports no kubelet endpoint')
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"https://{host}:{port}/portForward/{quote(namespace, safe='')}/{quote(pod, safe='')}"


def parse_ports(raw: str | None) -> list[int]:
    """The ``ports`` query of the channel protocol: distinct TCP ports, as kube-apiserver checks them."""
    ports: list[int] = []
    for item in (raw or "").split(","):
        try:
            port = int(item)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise status.bad_request(f"invalid port {item!r}: want a port number between 1 and 65535")
        if port not in ports:
            ports.append(port)
    return ports


async def pod_port_forward(request: web.Request, store: Store, session: aiohttp.ClientSession,
                           namespace: str, name: str) -> web.StreamResponse:
    pod = store.get("pods", namespace, name)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise status.bad_request(f"pod {name} does not have a host assigned")
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        raise status.bad_request(f"cannot connect to a completed pod; current phase is {pod['status']['phase']}")
    url = node_url(store.get("nodes", "", node_name), namespace, name)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=MAX_MESSAGE, autoping=True)
    if not ws.can_prepare(request).ok:
        # kubectl's fallback (a SPDY upgrade) lands here, as does a plain GET.
        raise status.bad_request("port-forward needs a WebSocket upgrade with the subprotocol "
                                 f"{SPDY_TUNNEL} or {V4_CHANNEL}; SPDY upgrades are not supported")

    async def connect(port: int) -> Upstream:
        try:
            return await asyncio.wait_for(session.ws_connect(
                url, params={"port": str(port)}, server_hostname=node_name, max_msg_size=MAX_MESSAGE,
                autoping=True), settings().stream_connect_timeout_s)
        except aiohttp.WSServerHandshakeError as exc:  # the node's answer before the upgrade (its body is lost)
            reason = {404: f'pod "{name}" is not running there', 503: "its container runtime is unavailable"}.get(
                exc.status, f"{exc.status} {exc.message}")
            raise UpstreamError(f"node {node_name}: {reason}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise UpstreamError(f"node {node_name} is not reachable: {exc or type(exc).__name__}") from exc

    if ws.can_prepare(request).protocol == SPDY_TUNNEL:
        await ws.prepare(request)
        await SpdySession(ws, connect).run()
        return ws
    ports = parse_ports(request.query.get("ports"))
    upstreams: list[Upstream] = []
    try:
        for port in ports:  # before the upgrade, so an unreachable node is an HTTP error the client reports
            upstreams.append(await connect(port))
    except UpstreamError as exc:
        for upstream in upstreams:
            await upstream.close()
        raise status.internal(str(exc)) from exc
    await ws.prepare(request)
    await serve_channels(ws, ports, upstreams)
    return ws


# --- the channel protocol (v4.channel.k8s.io) -------------------------------------------------------------------


async def serve_channels(ws: web.WebSocketResponse, ports: list[int], upstreams: list[Upstream]) -> None:
    """Serve one client WebSocket: each port's data both ways, until every port's connection ended or the client
    left; then every upstream is closed."""

    async def from_node(index: int, upstream: Upstream) -> None:
        data_channel, error_channel = bytes([2 * index]), bytes([2 * index + 1])
        async for msg in upstream:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(data_channel + msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_bytes(error_channel + msg.data.encode())
            else:
                break

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel % 2 == 0 and channel // 2 < len(upstreams) and payload:
                with contextlib.suppress(ConnectionResetError):
                    await upstreams[channel // 2].send_bytes(payload)

    for index, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await ws.send_bytes(bytes([2 * index]) + prefix)
        await ws.send_bytes(bytes([2 * index + 1]) + prefix)
    node_tasks = [asyncio.create_task(from_node(i, u)) for i, u in enumerate(upstreams)]
    client_task = asyncio.create_task(from_client())
    try:
        await asyncio.wait([client_task, asyncio.gather(*node_tasks, return_exceptions=True)],
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in [client_task, *node_tasks]:
            task.cancel()
        await asyncio.gather(client_task, *node_tasks, return_exceptions=True)
        for upstream in upstreams:
            await upstream.close()
        await ws.close()


# --- SPDY inside a WebSocket (SPDY/3.1+portforward.k8s.io) ------------------------------------------------------


@dataclass
class Pair:
    """One forwarded connection: its SPDY error and data streams, and what waits for its node WebSocket."""

    request_id: str
    port: int
    error_stream: int | None = None
    data_stream: int | None = None
    inbound: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_CHUNKS))
    reset: asyncio.Event = field(default_factory=asyncio.Event)  # the client reset a stream, or went away
    task: asyncio.Task | None = None
    error_sent: bool = False


class SpdySession:
    """One kubectl port-forward session: SPDY frames in the client WebSocket's binary messages."""

    def __init__(self, ws: web.WebSocketResponse, connect: Connect) -> None:
        self._ws = ws
        self._connect = connect
        self._reader = spdy.FrameReader()
        self._writer = spdy.FrameWriter()
        self._send_lock = asyncio.Lock()
        self._pairs: dict[str, Pair] = {}
        self._by_stream: dict[int, Pair] = {}
        self._last_stream = 0

    async def run(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != WSMsgType.BINARY:
                    break
                for frame in self._reader.feed(msg.data):
                    if not await self._handle(frame):
                        return
        except spdy.ProtocolError as exc:
            log.info("port-forward: not SPDY/3.1 from the client", error=str(exc))
            with contextlib.suppress(ConnectionResetError):
                await self._send(spdy.goaway(self._last_stream, 1))
        except ConnectionResetError:
            pass
        finally:
            await self._ws.close()
            for pair in self._pairs.values():
                pair.reset.set()
            tasks = [pair.task for pair in self._pairs.values() if pair.task is not None]
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, frame: bytes) -> None:
        async with self._send_lock:
            await self._ws.send_bytes(frame)

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False ends the session."""
        if isinstance(frame, spdy.SynStream):
            await self._open(frame)
        elif isinstance(frame, spdy.Data):
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data_stream:
                if pair.task is None and pair.inbound.full():  # data before its error stream: no one would read it
                    await self._send(spdy.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
                    self._forget(pair)
                    return True
                if frame.data:
                    await pair.inbound.put(frame.data)
                if frame.fin:
                    await pair.inbound.put(_EOF)
        elif isinstance(frame, spdy.RstStream):
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None:
                pair.reset.set()
        elif isinstance(frame, spdy.Ping):
            await self._send(spdy.ping(frame.id))
        elif isinstance(frame, spdy.GoAway):
            return False
        return True

    async def _open(self, frame: spdy.SynStream) -> None:
        headers, stream_id = frame.headers, frame.stream_id
        self._last_stream = max(self._last_stream, stream_id)
        kind, request_id = headers.get("streamtype"), headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
        except ValueError:
            port = 0
        pair = self._pairs.get(request_id)
        refused = (kind not in ("error", "data") or not 0 < port < 65536 or
                   (pair is None and len(self._pairs) >= MAX_CONNECTIONS) or
                   (pair is not None and (pair.port != port or getattr(pair, f"{kind}_stream") is not None)))
        if refused:
            log.info("port-forward: stream refused", stream_type=kind, port=port)
            await self._send(spdy.rst_stream(stream_id, spdy.REFUSED_STREAM))
            return
        async with self._send_lock:  # compressed in the order sent
            await self._ws.send_bytes(self._writer.syn_reply(stream_id))
        if pair is None:
            pair = self._pairs[request_id] = Pair(request_id, port)
        setattr(pair, f"{kind}_stream", stream_id)
        self._by_stream[stream_id] = pair
        if pair.error_stream is not None and pair.data_stream is not None:
            pair.task = asyncio.create_task(self._forward(pair), name=f"portforward-{request_id}")

    async def _forward(self, pair: Pair) -> None:
        """One connection: a node WebSocket, fed from the data stream's queue and copied back to it, until the node
        ends it or the client resets it. Never cancelled midway (a handshake cut short would leave the node waiting):
        ``pair.reset`` ends it."""
        upstream = None
        try:
            upstream = await self._connect(pair.port)
            tasks = [asyncio.create_task(self._from_node(pair, upstream)), asyncio.create_task(pair.reset.wait()),
                     asyncio.create_task(self._to_node(pair, upstream))]
            try:
                await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        except UpstreamError as exc:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self._error(pair, str(exc))
        finally:
            if upstream is not None:
                await upstream.close()
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self._end(pair)
            while not pair.inbound.empty():  # frees a reader of the client waiting to queue more
                pair.inbound.get_nowait()

    async def _to_node(self, pair: Pair, upstream: Upstream) -> None:
        while True:
            chunk = await pair.inbound.get()
            await upstream.send_bytes(chunk)  # an empty message: the client's half-close
            if not chunk:
                return

    async def _from_node(self, pair: Pair, upstream: Upstream) -> None:
        assert pair.data_stream is not None
        async for msg in upstream:
            if msg.type == WSMsgType.BINARY:
                await self._send(spdy.data(pair.data_stream, msg.data))
            elif msg.type == WSMsgType.TEXT:
                await self._error(pair, msg.data)
            else:
                return

    async def _error(self, pair: Pair, message: str) -> None:
        assert pair.error_stream is not None
        if not pair.error_sent:
            pair.error_sent = True
            await self._send(spdy.data(pair.error_stream, message.encode(), fin=True))

    def _forget(self, pair: Pair) -> None:
        self._pairs.pop(pair.request_id, None)
        for stream in (pair.data_stream, pair.error_stream):
            self._by_stream.pop(stream or 0, None)

    async def _end(self, pair: Pair) -> None:
        """The connection is over: both streams end (FIN), and the pair is forgotten."""
        self._forget(pair)
        if self._ws.closed:
            return
        assert pair.data_stream is not None and pair.error_stream is not None
        await self._send(spdy.data(pair.data_stream, fin=True))
        if not pair.error_sent:
            pair.error_sent = True
            await self._send(spdy.data(pair.error_stream, fin=True))
