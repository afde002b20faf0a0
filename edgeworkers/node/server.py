"""The node's own kubelet-style HTTP endpoint: container logs and health.

The cloud API proxies ``pods/{name}/log`` here (the port is in the Node's ``status.daemonEndpoints``).
The Docker SDK blocks, so every runtime call runs in a thread pool of its own; a followed log is pulled
one chunk at a time, which gives back-pressure and ends the stream when the container ends.

It serves only the cloud, as kubelet's port with x509 client authentication: HTTPS with the node's certificate
(``node.crt``/``node.key``, signed by the cloud's kubelet-serving CA for this node alone, issued with the node's
credentials and renewed by ``node.credentials``), and every request needs a client certificate signed by the cluster
CA (``ca.crt``) naming the cloud's kubelet client; any other caller gets 401,
``/healthz`` included (kubelet's anonymous healthz port has no counterpart here), and plain HTTP no answer at all.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from edgeworkers.node import portforward, streams
from edgeworkers.node.logs import (
    LogOptions,
    LogRequestError,
    parse_log_options,
    select_container,
)
from edgeworkers.runtime.errors import (
    ContainerNotFound,
    ContainerRuntimeError,
    RuntimeFault,
    RuntimeUnavailable,
)
from edgeworkers.runtime.protocol import Runtime

log = structlog.get_logger(__name__)

RUNTIME_KEY = web.AppKey("runtime", Runtime)
EXECUTOR_KEY = web.AppKey("executor", ThreadPoolExecutor)
CLOCK_KEY = web.AppKey("clock", Callable[[], datetime])
# Each followed log holds one thread while it waits for the container's next line.
MAX_LOG_THREADS = 64
_END = object()


# The client certificates' common names the endpoint serves: the cloud's kubelet client (kube-apiserver's).
ALLOWED_CLIENTS = frozenset({"kube-apiserver-kubelet-client"})
UNAUTHORIZED = "Unauthorized"


def client_name(request: web.Request) -> str | None:
    """The common name of the caller's verified client certificate, or None (plain HTTP, or no certificate)."""
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


@web.middleware
async def require_cloud(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    if client_name(request) not in ALLOWED_CLIENTS:
        return web.Response(status=401, text=UNAUTHORIZED)
    return await handler(request)


def create_app(runtime: Runtime, clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
               allow_anonymous: bool = False) -> web.Application:
    """The endpoint; every request needs the cloud's client certificate unless ``allow_anonymous`` (tests)."""
    app = web.Application(middlewares=[] if allow_anonymous else [require_cloud])
    app[RUNTIME_KEY] = runtime
    app[EXECUTOR_KEY] = ThreadPoolExecutor(MAX_LOG_THREADS, thread_name_prefix="node-logs")
    app[CLOCK_KEY] = clock
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    app.router.add_get("/portForward/{namespace}/{pod}", port_forward)
    streams.setup(app, runtime)  # /exec and /attach
    app.on_cleanup.append(_shutdown_executor)
    return app


async def _shutdown_executor(app: web.Application) -> None:
    app[EXECUTOR_KEY].shutdown(wait=False, cancel_futures=True)


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def container_logs(request: web.Request) -> web.StreamResponse:
    app = request.app
    namespace, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
    try:
        options = parse_log_options(request.query, app[CLOCK_KEY]())
        chunks = await _in_thread(app, _open_logs, app[RUNTIME_KEY], namespace, pod, name, options)
    except LogRequestError as exc:
        return web.Response(status=exc.code, text=exc.message)
    except RuntimeUnavailable as exc:
        return web.Response(status=503, text=str(exc))
    except ContainerRuntimeError as exc:
        return web.Response(status=500, text=str(exc))
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    remaining = options.limit_bytes
    try:
        while remaining is None or remaining > 0:
            chunk = await _in_thread(app, next, chunks, _END)
            if chunk is _END:
                break
            if remaining is not None:
                chunk, remaining = chunk[:remaining], remaining - len(chunk)
            await response.write(chunk)
    except ConnectionResetError:
        log.debug("log reader went away", pod=f"{namespace}/{pod}", container=name)
        return response
    except RuntimeFault as exc:  # the container or the engine went away mid-stream
        log.info("log stream ended", pod=f"{namespace}/{pod}", container=name, reason=str(exc))
    finally:
        # Unless cancelled, no thread is inside the iterator now: closing it releases the engine's connection at once
        # (a followed log cut short by limitBytes or by the reader leaving would otherwise stay open).
        close = getattr(chunks, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):  # cancelled mid-read: that read ends on its own
                await _in_thread(app, close)
    await response.write_eof()
    return response


async def port_forward(request: web.Request) -> web.StreamResponse:
    return await portforward.port_forward(request, request.app[RUNTIME_KEY], lambda *a: _in_thread(request.app, *a))


def _open_logs(runtime: Runtime, namespace: str, pod: str, name: str, options: LogOptions) -> Iterator[bytes]:
    container = select_container(runtime.list_containers(), namespace, pod, name, options.previous)
    try:
        return iter(runtime.logs(
            container.id,
            follow=options.follow,
            tail=options.tail_lines,
            since=options.since,
            timestamps=options.timestamps,
        ))
    except ContainerNotFound:
        raise LogRequestError(404, f'container "{name}" in pod "{pod}" is not available') from None


async def _in_thread(app: web.Application, func: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(app[EXECUTOR_KEY], func, *args)


def tls_context(credentials_dir: Path) -> ssl.SSLContext:
    """Serve with ``node.crt``/``node.key`` (loaded again in place when renewed); ask for a client certificate signed
    by ``ca.crt`` (the cluster CA)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(credentials_dir / "ca.crt"))
    ctx.load_cert_chain(credentials_dir / "node.crt", credentials_dir / "node.key")
    ctx.verify_mode = ssl.CERT_OPTIONAL  # no certificate: the request is answered 401, not a failed handshake
    return ctx


async def start(app: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None) -> web.AppRunner:
    """Serve ``app`` on host:port, over HTTPS with ``tls`` (plain HTTP only for tests); the caller keeps the runner
    and calls its ``cleanup()`` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    log.info("node endpoint listening", host=host, port=port, https=tls is not None)
    return runner
