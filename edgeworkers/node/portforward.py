"""``/portForward/{namespace}/{pod}?port=N``: one forwarded TCP connection into a pod, over one WebSocket.

The cloud translates what its client speaks (kubectl's SPDY streams tunnelled in a WebSocket, or the channel protocol
of the official clients) into one such WebSocket per forwarded connection, so this end stays simple:

- binary messages both ways carry the connection's bytes; an empty binary message from the cloud ends what it
  sends (the connection's write side is shut down, as a SPDY stream's FIN does);
- a text message from the node is an error (the pod's port refused the connection), sent before the close;
- the node closes the WebSocket when the pod's side of the connection ends; the cloud closes it to end the
  connection.

The connection goes to the pod's own IP (its sandbox's, on Docker's network), never to an address a request names.
Only a pod whose sandbox shares the host's network (which the node created so only for a pod its admission let have
``hostNetwork``) is reached on 127.0.0.1; a pod whose sandbox has no address is refused on the connection's error
stream, never forwarded to the host's own loopback (the node's Redis and endpoint listen there). TCP only, as
kubelet's port-forward.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from edgeworkers.config import settings
from edgeworkers.runtime.errors import ContainerRuntimeError, RuntimeUnavailable
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import ContainerState

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT_S = 5.0
CHUNK = 32 * 1024  # bytes read from the pod at a time: one WebSocket message each
MAX_MESSAGE = 1 << 20  # the largest message the cloud may send


class PortForwardError(Exception):
    """The request cannot be served; ``code`` is the HTTP status to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_port(raw: str | None) -> int:
    try:
        port = int(raw or "")
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise PortForwardError(400, f"invalid port {raw!r}: want a port number between 1 and 65535")
    return port


def pod_address(runtime: Runtime, namespace: str, pod: str) -> str | None:
    """The IP of the pod's running sandbox (127.0.0.1 for host network; None when it has none); 404 when the pod runs
    no sandbox here."""
    sandboxes = sorted(
        (c for c in runtime.list_containers(f"{namespace}/{pod}")
         if c.is_sandbox and c.state == ContainerState.RUNNING),
        key=lambda c: c.created_at.timestamp() if c.created_at else 0.0, reverse=True,
    )
    if not sandboxes:
        raise PortForwardError(404, f'pod "{pod}" is not running on this node')
    if runtime.host_network(sandboxes[0].id):
        return LOOPBACK
    return runtime.container_ip(sandboxes[0].id)


async def port_forward(request: web.Request, runtime: Runtime, in_thread: Callable[..., Any],
                       idle_timeout_s: float | None = None) -> web.StreamResponse:
    namespace, pod = request.match_info["namespace"], request.match_info["pod"]
    try:
        port = parse_port(request.query.get("port"))
        address = await in_thread(pod_address, runtime, namespace, pod)
    except PortForwardError as exc:
        return web.Response(status=exc.code, text=exc.message)
    except RuntimeUnavailable as exc:
        return web.Response(status=503, text=str(exc))
    except ContainerRuntimeError as exc:
        return web.Response(status=500, text=str(exc))
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, autoping=True)
    await ws.prepare(request)
    if address is None:
        log.warning("port-forward refused: the pod's sandbox has no IP address", namespace=namespace, pod=pod)
        await ws.send_str(f"error forwarding port {port} to pod {namespace}/{pod}: the pod has no IP address on "
                          "this node (only a hostNetwork pod is reached on the node's loopback)")
        await ws.close()
        return ws
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        reason = "i/o timeout" if isinstance(exc, TimeoutError) else \
            (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        await ws.send_str(f"error forwarding port {port} to pod {namespace}/{pod}: "
                          f"dial tcp {address}:{port}: connect: {reason}")
        await ws.close()
        return ws
    try:
        await pump(ws, reader, writer, settings().stream_idle_timeout_s if idle_timeout_s is None else idle_timeout_s)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        await ws.close()
    return ws


async def pump(ws: web.WebSocketResponse, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               idle_timeout_s: float) -> None:
    """Copy both ways until the pod ends the connection, the cloud closes the WebSocket, or nothing has passed either
    way for ``idle_timeout_s`` (kubelet's streamingConnectionIdleTimeout)."""
    loop = asyncio.get_running_loop()
    last = [loop.time()]

    async def upstream() -> None:  # the cloud -> the pod
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                break
            last[0] = loop.time()
            if not msg.data:
                if writer.can_write_eof():
                    writer.write_eof()
                continue
            writer.write(msg.data)
            await writer.drain()

    async def downstream() -> None:  # the pod -> the cloud
        while chunk := await reader.read(CHUNK):
            last[0] = loop.time()
            await ws.send_bytes(chunk)

    tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
    try:
        # Either direction ending ends the connection, except the cloud's half-close (handled above).
        while True:
            done, _ = await asyncio.wait(tasks, timeout=max(min(idle_timeout_s / 4, 30.0), 0.01),
                                         return_when=asyncio.FIRST_COMPLETED)
            if done:
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        log.debug("port-forward connection ended", error=str(task.exception()))
                return
            if loop.time() - last[0] >= idle_timeout_s:
                log.info("port-forward connection idle: closed", idle_timeout_s=idle_timeout_s)
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
