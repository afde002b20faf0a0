"""``pods/{name}/exec`` and ``pods/{name}/attach``: the client's WebSocket relayed to the node's own endpoint.

As kube-apiserver proxies kubelet's stream: the node (found as ``logs_proxy`` finds it, over HTTPS with the cloud's
kubelet client certificate, its certificate checked for the node's name) upgrades ``/exec/...`` or ``/attach/...``
with the subprotocol the client chose among ``v5.channel.k8s.io`` and ``v4.channel.k8s.io``, and each message is
passed on unchanged both ways until either side closes. Each direction waits for the other side to take a message
before it reads the next (aiohttp's writer drains), so nothing piles up here.

A request that is not a WebSocket upgrade (kubectl's SPDY fallback after a refused WebSocket) is answered with what
the node answers for it: its refusal passed through as text (kubectl prints ``error: unable to upgrade connection:
container not found ("app")``), or a 400 Status saying that only WebSocket is served.
"""
from __future__ import annotations

import asyncio
import contextlib
import os

import aiohttp
from aiohttp import WSMsgType, web
from multidict import MultiMapping

from edgeworkers.cloud import logs_proxy
from edgeworkers.cloud.store import Store
from edgeworkers.config import settings
from edgeworkers.k8s import status

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
FORWARDED = ("stdin", "stdout", "stderr", "tty")
HEARTBEAT_S = 30.0  # a peer that stops answering pings (a node gone silent) ends the stream
MAX_MESSAGE = 1 << 20


def stream_url(node: dict, pod: dict, container: str, kind: str) -> str:
    """The node's ``/exec/<ns>/<pod>/<container>`` (or ``/attach/...``) URL."""
    return logs_proxy.log_url(node, pod, container).replace("/containerLogs/", f"/{kind}/", 1)


def node_params(query: MultiMapping[str]) -> list[tuple[str, str]]:
    """The options passed on: every ``command`` in order, and the stream flags."""
    return [("command", c) for c in query.getall("command", ())] + [(k, query[k]) for k in FORWARDED if k in query]


async def pod_stream(request: web.Request, store: Store, session: aiohttp.ClientSession, namespace: str, name: str,
                     kind: str) -> web.StreamResponse:
    pod = store.get("pods", namespace, name)
    container = logs_proxy.container_name(pod, request.query.get("container"))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise status.bad_request(f"pod {name} does not have a host assigned")
    url = stream_url(store.get("nodes", "", node_name), pod, container, kind)
    params = node_params(request.query)
    timeout = settings().stream_connect_timeout_s
    # No permessage-deflate on either hop: the streams are mostly a terminal or a tar, and compressing each message
    # on a small edge costs more CPU than the link saves.
    client = web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE,
                                   compress=False)
    ready = client.can_prepare(request)
    if not ready.ok:
        return await _refusal(session, url, params, node_name, timeout)
    if ready.protocol is None:
        raise status.bad_request(f"none of the offered subprotocols is supported: use {' or '.join(PROTOCOLS)}")
    try:
        async with asyncio.timeout(timeout):
            upstream = await session.ws_connect(url, params=params, protocols=(ready.protocol,),
                                                server_hostname=node_name, heartbeat=HEARTBEAT_S,
                                                max_msg_size=MAX_MESSAGE, compress=0)
    except aiohttp.WSServerHandshakeError:  # the node refused: ask it why (its refusals come before any exec)
        return await _refusal(session, url, params, node_name, timeout)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _unreachable(url, exc, timeout) from exc
    async with upstream:
        await client.prepare(request)
        await _relay(client, upstream)
    return client


async def _refusal(session: aiohttp.ClientSession, url: str, params: list[tuple[str, str]], node_name: str,
                   timeout: float) -> web.Response:
    """The node's answer to the request as a plain GET: its refusal, passed through (a 400 as a Status)."""
    try:
        async with session.get(url, params=params, server_hostname=node_name,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as upstream:
            text = (await upstream.text()).strip()
            code = upstream.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _unreachable(url, exc, timeout) from exc
    if code <= 400:
        raise status.bad_request(text)
    return web.Response(status=code, text=text)


def _unreachable(url: str, exc: BaseException, timeout: float) -> status.APIError:
    """Worded as the API server words a kubelet it cannot reach."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        reason = os.strerror(errno).lower() if errno else str(exc.os_error)
        return status.internal(f'error dialing backend: dial tcp {exc.host}:{exc.port}: connect: {reason}')
    if isinstance(exc, TimeoutError):
        return status.internal(f"error dialing backend: {url}: no answer within {timeout:g}s")
    return status.internal(f"error dialing backend: {exc}")


async def _relay(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Pass messages both ways until either side closes; then close the other."""

    async def pipe(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                   sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        async for message in source:
            if message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)

    tasks = [asyncio.create_task(pipe(client, upstream)), asyncio.create_task(pipe(upstream, client))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError, RuntimeError):
                await task
        await upstream.close()
        await client.close(code=upstream.close_code or aiohttp.WSCloseCode.OK)
