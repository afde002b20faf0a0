"""The node's exec and attach streams: channel framing (v4, v5), Status of the exit code, Docker's stream
demultiplexed, refusals before the upgrade; over a real WebSocket against the FakeRuntime."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from multidict import MultiDict

from edgeworkers.node import streams
from edgeworkers.node.server import create_app
from edgeworkers.node.streams import (
    Demultiplexer,
    StreamLimits,
    StreamRequestError,
    exit_status,
    find_running,
    parse_options,
    parse_resize,
)
from edgeworkers.runtime.fake import FakeRuntime, frame
from edgeworkers.runtime.types import Container, ContainerConfig, ContainerID, ExecResult, PodRef, SandboxConfig

Client = Callable[..., Awaitable[TestClient]]
POD = PodRef("uid-1", "default", "web")
EXEC = "/exec/default/web/app"


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(node_name="edge-1")


def start_app(runtime: FakeRuntime, name: str = "app") -> ContainerID:
    sandbox = runtime.create_sandbox(SandboxConfig(POD))
    container = runtime.create_container(sandbox, POD, ContainerConfig(name, "busybox"))
    runtime.start_container(container)
    return container


async def connect(aiohttp_client: Client, runtime: FakeRuntime, limits: StreamLimits | None = None) -> TestClient:
    app = create_app(runtime, allow_anonymous=True)
    if limits is not None:
        app[streams.LIMITS_KEY] = limits
    return await aiohttp_client(app)


def read_all_frames(received: list[bytes]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for message in received:
        out[message[0]] = out.get(message[0], b"") + message[1:]
    return out


async def drain(ws) -> list[bytes]:  # noqa: ANN001 (aiohttp's client WebSocket)
    received = []
    async for message in ws:
        assert message.type == WSMsgType.BINARY
        received.append(message.data)
    return received


# --- pure parts ---------------------------------------------------------------------------------


def test_options_follow_kubelet() -> None:
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo hi"), ("stdout", "true"),
                       ("stderr", "1"), ("tty", "true"), ("stdin", "true")])
    options = parse_options(query, exec_=True)
    assert options.command == ("sh", "-c", "echo hi")
    assert (options.stdin, options.stdout, options.stderr, options.tty) == (True, True, False, True)  # TTY: no stderr

    with pytest.raises(StreamRequestError, match="at least one command"):
        parse_options(MultiDict([("stdout", "1")]), exec_=True)
    with pytest.raises(StreamRequestError, match="at least 1 of stdin, stdout, stderr"):
        parse_options(MultiDict([("command", "true")]), exec_=True)
    assert parse_options(MultiDict([("stdout", "1")]), exec_=False).command == ()  # attach runs nothing


def test_exit_status_is_kubelets_status() -> None:
    assert exit_status(0) == {"metadata": {}, "status": "Success"}
    failed = exit_status(3)
    assert failed["status"] == "Failure"
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert exit_status(None)["reason"] == "InternalError"


@pytest.mark.parametrize(("payload", "size"), [
    (b'{"Width":80,"Height":24}', (80, 24)),
    (b'{"Width":0,"Height":24}', None),
    (b'{"width":80}', None),
    (b"not json", None),
    (b"[1,2]", None),
])
def test_resize_messages(payload: bytes, size: tuple[int, int] | None) -> None:
    assert parse_resize(payload) == size


def test_demultiplexer_splits_frames_across_any_chunking() -> None:
    raw = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"x" * 100_000) + frame(2, b"")
    for size in (1, 3, 7, 8, 9, 4096, len(raw)):
        demux = Demultiplexer()
        got: dict[int, bytes] = {1: b"", 2: b""}
        for start in range(0, len(raw), size):
            for channel, payload in demux.feed(raw[start:start + size]):
                got[channel] += payload
        assert got == {1: b"out\n" + b"x" * 100_000, 2: b"err\n"}, size


def test_demultiplexer_never_holds_a_payload() -> None:
    demux = Demultiplexer()
    assert demux.feed(frame(1, b"abcdef")[:10]) == [(1, b"ab")]  # the first bytes of a payload go on at once
    assert demux.feed(b"cdef") == [(1, b"cdef")]


def test_find_running_skips_dead_instances_and_sandboxes(runtime: FakeRuntime) -> None:
    app = start_app(runtime)
    containers: list[Container] = runtime.list_containers()
    assert find_running(containers, "default", "web", "app").id == app
    with pytest.raises(StreamRequestError, match=r'container not found \("POD"\)'):
        find_running(containers, "default", "web", "POD")
    runtime.exit(app, 0)
    with pytest.raises(StreamRequestError) as refused:
        find_running(runtime.list_containers(), "default", "web", "app")
    assert (refused.value.code, refused.value.message) == (404, 'container not found ("app")')


# --- over a WebSocket ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
async def test_exec_sends_stdout_stderr_and_the_exit_status(aiohttp_client: Client, runtime: FakeRuntime,
                                                            protocol: str) -> None:
    start_app(runtime)

    def process(_c: Container, command: list[str], sock: socket.socket, tty: bool) -> int:
        assert command == ["sh", "-c", "x"] and not tty
        sock.sendall(frame(1, b"out\n") + frame(2, b"err\n"))
        return 3

    runtime.stream_handler = process
    client = await connect(aiohttp_client, runtime)
    params = [("command", "sh"), ("command", "-c"), ("command", "x"), ("stdout", "1"), ("stderr", "1")]
    async with client.ws_connect(EXEC, params=params, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")
                                 if protocol.startswith("v5") else (protocol,)) as ws:
        assert ws.protocol == protocol
        received = read_all_frames(await drain(ws))
    assert received[1] == b"out\n"
    assert received[2] == b"err\n"
    assert orjson.loads(received[3])["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert not runtime.open_streams  # closed


@pytest.mark.asyncio
@pytest.mark.parametrize("text", [False, True], ids=["binary frames", "text frames (the Python client's str)"])
async def test_stdin_is_relayed_and_v5_closes_it(aiohttp_client: Client, runtime: FakeRuntime, text: bool) -> None:
    start_app(runtime)

    def cat(_c: Container, _command: list[str], sock: socket.socket, _tty: bool) -> int:
        while data := sock.recv(65536):
            sock.sendall(frame(1, data))
        return 0  # stdin reached EOF: only a close on channel 255 can tell

    runtime.stream_handler = cat
    client = await connect(aiohttp_client, runtime)
    params = [("command", "cat"), ("stdin", "true"), ("stdout", "true")]
    async with client.ws_connect(EXEC, params=params, protocols=("v5.channel.k8s.io",)) as ws:
        for message in ("\x00hello ", "\x00world"):
            await (ws.send_str(message) if text else ws.send_bytes(message.encode()))
        await ws.send_bytes(b"\xff\x00")  # close stdin (channel 255 is not a one-byte character in UTF-8)
        received = read_all_frames(await drain(ws))
    assert received[1] == b"hello world"
    assert orjson.loads(received[3]) == {"metadata": {}, "status": "Success"}


@pytest.mark.asyncio
async def test_tty_output_is_raw_and_resize_reaches_the_session(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    start_app(runtime)
    sessions: list = []

    def shell(_c: Container, _command: list[str], sock: socket.socket, tty: bool) -> int:
        assert tty
        sock.recv(1)  # wait for a keystroke
        sock.sendall(b"\x01\x00\x00\x00raw")  # what looks like a Docker header is plain terminal output
        return 0

    runtime.stream_handler = shell
    client = await connect(aiohttp_client, runtime)
    params = [("command", "sh"), ("stdin", "1"), ("stdout", "1"), ("stderr", "1"), ("tty", "1")]
    async with client.ws_connect(EXEC, params=params, protocols=("v4.channel.k8s.io",)) as ws:
        sessions.extend(runtime.open_streams)
        await ws.send_bytes(b'\x04{"Width":120,"Height":40}')
        await ws.send_bytes(b"\x04not json")
        await ws.send_bytes(b"\x00k")
        received = read_all_frames(await drain(ws))
    assert received[1] == b"\x01\x00\x00\x00raw"
    assert sessions[0].resizes == [(120, 40)]


@pytest.mark.asyncio
async def test_a_client_that_leaves_closes_the_session(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    start_app(runtime)
    started = []

    def sleeper(_c: Container, _command: list[str], sock: socket.socket, _tty: bool) -> int:
        started.append(True)
        sock.recv(1)  # until the stream is closed under it
        return 0

    runtime.stream_handler = sleeper
    client = await connect(aiohttp_client, runtime)
    ws = await client.ws_connect(EXEC, params=[("command", "sleep"), ("stdout", "1")],
                                 protocols=("v5.channel.k8s.io",))
    assert runtime.open_streams
    await ws.close()
    await _until(lambda: not runtime.open_streams)  # the session was closed: the process's stream with it
    assert started


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_an_idle_stream_is_ended(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    start_app(runtime)
    runtime.stream_handler = lambda _c, _cmd, sock, _tty: len(sock.recv(1))
    client = await connect(aiohttp_client, runtime, StreamLimits(idle_timeout_s=0.2, max_concurrent=4))
    async with client.ws_connect(EXEC, params=[("command", "sleep"), ("stdout", "1")],
                                 protocols=("v5.channel.k8s.io",)) as ws:
        received = read_all_frames(await drain(ws))
    assert "idle" in orjson.loads(received[3])["message"]
    assert not runtime.open_streams


@pytest.mark.asyncio
async def test_refusals_come_before_the_upgrade(aiohttp_client: Client, runtime: FakeRuntime) -> None:
    start_app(runtime)
    runtime.stream_handler = lambda _c, _cmd, sock, _tty: len(sock.recv(1))
    client = await connect(aiohttp_client, runtime, StreamLimits(idle_timeout_s=60, max_concurrent=1))
    ok = [("command", "true"), ("stdout", "1")]

    missing = await client.get("/exec/default/web/nope", params=ok)
    assert (missing.status, await missing.text()) == (404, 'container not found ("nope")')
    plain = await client.get(EXEC, params=ok)  # kubectl's SPDY fallback reaches the node as a plain request
    assert plain.status == 400
    assert "WebSocket only" in await plain.text()
    bad = await client.get(EXEC, params=[("stdout", "1")])
    assert bad.status == 400
    async with client.ws_connect(EXEC, params=ok, protocols=("v5.channel.k8s.io",)):
        busy = await client.get(EXEC, params=ok, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                          "Sec-WebSocket-Version": "13",
                                                          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                          "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        assert busy.status == 429
    assert not [c for c in runtime.calls if c[0] == "exec_stream" and c[1:2] == ("nope",)]


@pytest.mark.asyncio
async def test_the_endpoint_refuses_a_caller_without_the_clouds_certificate(runtime: FakeRuntime,
                                                                              aiohttp_client: Client) -> None:
    start_app(runtime)
    client = await aiohttp_client(create_app(runtime))  # plain HTTP: no client certificate
    response = await client.get(EXEC, params=[("command", "true"), ("stdout", "1")])
    assert response.status == 401
    assert not [c for c in runtime.calls if c[0] == "exec_stream"]


@pytest.mark.asyncio
async def test_attach_relays_the_containers_output_and_ends_with_success(aiohttp_client: Client,
                                                                         runtime: FakeRuntime) -> None:
    start_app(runtime)
    runtime.exec_handler = lambda _c, _cmd: ExecResult(0, b"main output\n")
    client = await connect(aiohttp_client, runtime)
    async with client.ws_connect("/attach/default/web/app", params=[("stdout", "1")],
                                 protocols=("v5.channel.k8s.io",)) as ws:
        received = read_all_frames(await drain(ws))
    assert received[1] == b"main output\n"
    assert orjson.loads(received[3])["status"] == "Success"
    assert [c[0] for c in runtime.calls if c[0].endswith("_stream")] == ["attach_stream"]
