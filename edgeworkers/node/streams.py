"""kubelet's streaming ``exec`` and ``attach`` on the node endpoint, over WebSocket with the API server's channels.

``GET /exec/{namespace}/{pod}/{container}?command=sh&command=-c&command=...&stdin=1&stdout=1&stderr=1&tty=1`` and
``GET /attach/{namespace}/{pod}/{container}?...`` upgrade to a WebSocket speaking ``v5.channel.k8s.io`` or
``v4.channel.k8s.io``: every binary message starts with its channel (0 stdin, 1 stdout, 2 stderr, 3 error: the
outcome as a Status once the process has ended, 4 resize: ``{"Width": w, "Height": h}``), and v5 adds 255:
``[255, 0]`` closes stdin. The cloud relays the messages unchanged, as kube-apiserver relays kubelet's stream.

What is refused is refused before the upgrade, in kubelet's words as plain text: a bad request 400, a container
that is not running 404 (``container not found ("app")``), too many streams at once 429.

No thread waits on a stream: the Docker connection is a non-blocking socket read and written by the event loop, so
each direction has back-pressure (nothing is read from one side faster than the other side takes it). The Docker
calls that set a stream up and end it run on a small pool. A client that goes away, or a stream quiet both ways
for ``idle_timeout_s`` (kubelet's streamingConnectionIdleTimeout), ends it: the exec's process is killed.
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import WSMessage, WSMsgType, web
from multidict import MultiMapping

from edgeworkers.config import Settings, settings
from edgeworkers.runtime.errors import ContainerNotFound, ContainerRuntimeError, RuntimeUnavailable
from edgeworkers.runtime.protocol import Runtime, StreamSession
from edgeworkers.runtime.types import Container, ContainerState

log = structlog.get_logger(__name__)

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 64 * 1024
# After the output ends, how long the process gets to be reported ended before its exit code counts as unknown.
EXIT_WAIT_S = 10.0
MAX_MESSAGE = 1 << 20  # a stdin message at most (the cloud allows the same)
HEARTBEAT_S = 30.0  # a cloud that stops answering pings (gone without a goodbye) ends the stream
_TRUE = ("1", "true")


@dataclass(frozen=True)
class StreamLimits:
    idle_timeout_s: float = 4 * 3600.0
    max_concurrent: int = 64

    @classmethod
    def from_settings(cls, config: Settings) -> StreamLimits:
        return cls(config.stream_idle_timeout_s, config.stream_max_concurrent)


class StreamRequestError(Exception):
    """Refused before the upgrade; ``code`` is the HTTP status, ``message`` the body."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StreamOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def parse_options(query: MultiMapping[str], exec_: bool) -> StreamOptions:
    """kubelet's query parameters (``command`` repeated, ``stdin``, ``stdout``, ``stderr``, ``tty`` as 1/true):
    a TTY has no separate stderr, and at least one stream (and, for exec, a command) is needed."""
    command = tuple(query.getall("command", ()))
    if exec_ and not command:
        raise StreamRequestError(400, "command: Required value: you must specify at least one command for the container")
    flags = {name: query.get(name, "").lower() in _TRUE for name in ("stdin", "stdout", "stderr", "tty")}
    if flags["tty"]:
        flags["stderr"] = False
    if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
        raise StreamRequestError(400, "you must specify at least 1 of stdin, stdout, stderr")
    return StreamOptions(command, **flags)


def find_running(containers: Iterable[Container], namespace: str, pod: str, name: str) -> Container:
    """The running instance of ``name`` in pod ``namespace/pod``, as kubelet finds a container to exec in."""
    for container in containers:
        if (not container.is_sandbox and container.state == ContainerState.RUNNING and container.name == name
                and container.pod.namespace == namespace and container.pod.name == pod):
            return container
    raise StreamRequestError(404, f'container not found ("{name}")')


def exit_status(code: int | None) -> dict[str, Any]:
    """The Status the error channel carries when the process has ended, as kubelet writes it (v4 and v5)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    if code is None:
        return {"metadata": {}, "status": "Failure", "reason": "InternalError",
                "message": "the command's exit code is unknown: it was still running after its output ended"}
    return {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "reason": "InternalError", "message": message}


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a resize message (``{"Width": 80, "Height": 24}``); None when malformed."""
    try:
        size = orjson.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return (width, height) if 0 < width <= 65535 and 0 < height <= 65535 else None


class Demultiplexer:
    """Docker's multiplexed stream (an 8-byte header ``[stream, 0, 0, 0, size:4]`` before each payload) split into
    (channel, bytes), payloads passed on as they arrive: nothing but a partial header is ever held."""

    def __init__(self) -> None:
        self._header = b""
        self._stream = STDOUT
        self._remaining = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        view = memoryview(data)
        while view:
            if self._remaining:
                part, view = view[: self._remaining], view[self._remaining :]
                self._remaining -= len(part)
                out.append((self._stream, bytes(part)))
                continue
            need = 8 - len(self._header)
            self._header += bytes(view[:need])
            view = view[need:]
            if len(self._header) == 8:
                stream, self._remaining = struct.unpack(">B3xI", self._header)
                self._stream = STDERR if stream == 2 else STDOUT
                self._header = b""
        return out


@dataclass
class _Streams:
    runtime: Runtime
    pool: ThreadPoolExecutor
    active: int = 0

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func`` on the pool; shielded, so a cancelled caller does not cancel it (a close must happen)."""
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self.pool, lambda: func(*args, **kwargs)))


STREAMS_KEY = web.AppKey("streams", _Streams)
LIMITS_KEY = web.AppKey("stream_limits", StreamLimits)


def setup(app: web.Application, runtime: Runtime, limits: StreamLimits | None = None) -> None:
    """Add the exec and attach routes to the node endpoint."""
    app[LIMITS_KEY] = limits or StreamLimits.from_settings(settings())
    app[STREAMS_KEY] = _Streams(runtime, ThreadPoolExecutor(8, thread_name_prefix="node-streams"))
    app.router.add_get("/exec/{namespace}/{pod}/{container}", exec_handler)
    app.router.add_get("/attach/{namespace}/{pod}/{container}", attach_handler)

    async def shutdown(app: web.Application) -> None:
        app[STREAMS_KEY].pool.shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown)


async def exec_handler(request: web.Request) -> web.StreamResponse:
    return await _serve(request, exec_=True)


async def attach_handler(request: web.Request) -> web.StreamResponse:
    return await _serve(request, exec_=False)


async def _serve(request: web.Request, exec_: bool) -> web.StreamResponse:
    streams, limits = request.app[STREAMS_KEY], request.app[LIMITS_KEY]
    namespace, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
    where = {"pod": f"{namespace}/{pod}", "container": name}
    try:
        options = parse_options(request.query, exec_)
        container = find_running(await streams.run(streams.runtime.list_containers), namespace, pod, name)
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=MAX_MESSAGE, heartbeat=HEARTBEAT_S, compress=False)
        ready = ws.can_prepare(request)
        if not ready.ok:
            raise StreamRequestError(400, f"Upgrade request required: this node serves streams over WebSocket only "
                                          f"({', '.join(PROTOCOLS)})")
        if ready.protocol is None:
            raise StreamRequestError(400, f"none of the offered subprotocols is supported: use {' or '.join(PROTOCOLS)}")
        if streams.active >= limits.max_concurrent:
            raise StreamRequestError(429, f"too many streams on this node (at most {limits.max_concurrent})")
        streams.active += 1
    except StreamRequestError as exc:
        return web.Response(status=exc.code, text=exc.message)
    except RuntimeUnavailable as exc:
        return web.Response(status=503, text=str(exc))
    try:
        try:
            if exec_:
                session = await streams.run(streams.runtime.exec_stream, container.id, list(options.command),
                                            stdin=options.stdin, tty=options.tty)
            else:
                session = await streams.run(streams.runtime.attach_stream, container.id, stdin=options.stdin,
                                            tty=options.tty)
        except ContainerNotFound:
            return web.Response(status=404, text=f'container not found ("{name}")')
        except RuntimeUnavailable as exc:
            return web.Response(status=503, text=str(exc))
        except ContainerRuntimeError as exc:
            return web.Response(status=500, text=str(exc))
        try:
            await ws.prepare(request)
            outcome = await _pump(ws, session, options, ready.protocol, streams, limits.idle_timeout_s, exec_)
            log.debug("stream ended", **where, outcome=outcome)
        finally:
            await streams.run(session.close)
            await ws.close()
        return ws
    finally:
        streams.active -= 1


def frame_bytes(message: WSMessage) -> bytes:
    """A frame's bytes: binary frames as they are, text frames in UTF-8 (the official Python client sends a ``str``'s
    stdin as text; kube-apiserver reads both alike). Anything else (pings, closes) has none."""
    if message.type == WSMsgType.BINARY:
        return bytes(message.data)
    if message.type == WSMsgType.TEXT:
        return message.data.encode()
    return b""


async def _pump(ws: web.WebSocketResponse, session: StreamSession, options: StreamOptions, protocol: str,
                streams: _Streams, idle: float, exec_: bool) -> str:
    """Relay until the process's output ends (then send its Status), the client leaves, or the stream idles."""
    loop = asyncio.get_running_loop()
    sock = session.sock
    sock.setblocking(False)
    last = [loop.time()]
    wanted = {STDOUT: options.stdout, STDERR: options.stderr}

    async def output() -> bool:
        """Relay the output to its end (True), or until the client has gone (False)."""
        demux = None if session.tty else Demultiplexer()
        while data := await loop.sock_recv(sock, CHUNK):
            last[0] = loop.time()
            for channel, payload in [(STDOUT, data)] if demux is None else demux.feed(data):
                if wanted[channel] and payload:
                    try:
                        await ws.send_bytes(bytes((channel,)) + payload)
                    except (ConnectionError, RuntimeError):
                        return False
        return True

    async def input_() -> None:
        stdin_open = options.stdin
        async for message in ws:
            data = frame_bytes(message)
            if not data:
                continue
            last[0] = loop.time()
            channel, payload = data[0], data[1:]
            try:
                if channel == STDIN and stdin_open and payload:
                    await loop.sock_sendall(sock, payload)
                elif channel == RESIZE and session.tty and (size := parse_resize(payload)) is not None:
                    await streams.run(session.resize, *size)
                elif channel == CLOSE and protocol == V5 and payload[:1] == bytes((STDIN,)) and stdin_open:
                    stdin_open = False
                    if not session.tty:  # Docker ends a TTY's output with its input: the terminal stays open
                        sock.shutdown(socket.SHUT_WR)
            except OSError:  # the process closed its stdin (or ended): what follows has nowhere to go
                stdin_open = False

    out_task = asyncio.create_task(output(), name="stream-output")
    tasks = {out_task, asyncio.create_task(input_(), name="stream-input")}
    try:
        while True:
            done, _ = await asyncio.wait(tasks, timeout=max(min(idle / 4, 30.0), 0.01),
                                         return_when=asyncio.FIRST_COMPLETED)
            if out_task in done:
                if (exc := out_task.exception()) is not None:  # the engine's connection broke
                    return await _send_outcome(ws, failure_status(f"the stream from the container broke: {exc}"),
                                               "broken")
                if not out_task.result():
                    return "client left"
                code = await streams.run(session.exit_code, EXIT_WAIT_S) if exec_ else 0  # attach: the output ended
                return await _send_outcome(ws, exit_status(code), "ended")
            if done:
                return "client left"
            if loop.time() - last[0] >= idle:
                return await _send_outcome(ws, failure_status(
                    f"stream idle for {idle:g}s: closed (the node's stream_idle_timeout_s)"), "idle")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _send_outcome(ws: web.WebSocketResponse, outcome: dict[str, Any], what: str) -> str:
    """The Status on the error channel; a client gone meanwhile has nothing to be told."""
    try:
        await ws.send_bytes(bytes((ERROR,)) + orjson.dumps(outcome))
    except (ConnectionError, RuntimeError):
        return "client left"
    return what
