"""The Runtime's streaming exec (kubectl exec's engine side), against both FakeRuntime and the real dockerd: stdin in,
output out as Docker frames (raw with a TTY), the exit code, and ``close`` ending a process that still runs."""
from __future__ import annotations

import socket

import docker

from edgeworkers.node.streams import Demultiplexer
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.fake import FakeRuntime, frame
from edgeworkers.runtime.protocol import StreamSession
from edgeworkers.runtime.types import Container, ContainerID, PodRef, SandboxConfig
from tests.integration.runtime.test_runtime_contract import Driver, driver, pod, sh  # noqa: F401 (fixtures)
from tests.polling import wait_for


def running_app(driver: Driver, pod: PodRef) -> ContainerID:  # noqa: F811
    sandbox = driver.runtime.create_sandbox(SandboxConfig(pod))
    app = driver.runtime.create_container(sandbox, pod, sh("app", "sleep 300"))
    driver.runtime.start_container(app)
    return app


def read_to_end(session: StreamSession) -> bytes:
    session.sock.settimeout(15)
    chunks = []
    while chunk := session.sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_exec_stream_takes_stdin_and_gives_demultiplexable_output(driver: Driver, pod: PodRef) -> None:  # noqa: F811
    app = running_app(driver, pod)
    if isinstance(driver.runtime, FakeRuntime):
        def process(_c: Container, _command: list[str], sock: socket.socket, _tty: bool) -> int:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            sock.sendall(frame(1, data) + frame(2, b"err\n"))
            return 4
        driver.runtime.stream_handler = process
    session = driver.runtime.exec_stream(app, ["sh", "-c", "cat; echo err >&2; exit 4"], stdin=True, tty=False)
    try:
        session.sock.sendall(b"hello\n")
        session.sock.shutdown(socket.SHUT_WR)  # stdin's end
        out: dict[int, bytes] = {1: b"", 2: b""}
        for channel, payload in Demultiplexer().feed(read_to_end(session)):
            out[channel] += payload
        assert out == {1: b"hello\n", 2: b"err\n"}
        assert session.exit_code(10) == 4
    finally:
        session.close()


def test_exec_stream_with_a_tty_is_raw(driver: Driver, pod: PodRef) -> None:  # noqa: F811
    app = running_app(driver, pod)
    if isinstance(driver.runtime, FakeRuntime):
        driver.runtime.stream_handler = lambda _c, _cmd, sock, tty: len(sock.sendall(b"/dev/pts/0\r\n") or b"")
    session = driver.runtime.exec_stream(app, ["tty"], stdin=False, tty=True)
    try:
        assert session.tty
        assert read_to_end(session).startswith(b"/dev/pts/")
    finally:
        session.close()


def test_close_ends_a_process_still_running(driver: Driver, pod: PodRef) -> None:  # noqa: F811
    app = running_app(driver, pod)
    if isinstance(driver.runtime, FakeRuntime):
        driver.runtime.stream_handler = lambda _c, _cmd, sock, _tty: len(sock.recv(1))
    # A shell with a child: both must go (the child would otherwise outlive its shell).
    session = driver.runtime.exec_stream(app, ["sh", "-c", "sleep 1000; echo never"], stdin=False, tty=False)
    assert session.exit_code(0.2) is None  # still running
    session.close()
    session.close()  # idempotent
    if isinstance(driver.runtime, DockerRuntime):
        client = docker.APIClient(version="auto")
        try:
            def gone() -> bool:
                states = [client.exec_inspect(e) for e in client.inspect_container(app.id)["ExecIDs"] or []]
                return not any(s["Running"] for s in states)
            wait_for(gone, 10, "the exec's processes killed")
            top = client.top(app.id)
            assert not [p for p in top["Processes"] if "sleep 1000" in " ".join(p)], top
        finally:
            client.close()
    else:
        assert not driver.runtime.open_streams
