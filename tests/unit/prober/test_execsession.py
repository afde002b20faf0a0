"""Exec probe sessions on a FakeRuntime whose streaming exec is a fake /bin/sh: one exec per container, the marker
protocol (split frames, stderr, output without a newline, a forged marker), the 10 KiB cap, a timeout that kills the
session, containers without a shell, concurrency, and nothing left open."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from edgeworkers.prober.execsession import MAX_OUTPUT, ExecSessions, Session, SessionEnded, command_line
from edgeworkers.prober.handlers import run_exec
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.fake import FakeRuntime, frame
from edgeworkers.runtime.types import ContainerConfig, ContainerID, ExecResult, PodRef, SandboxConfig
from tests.polling import wait_for
from tests.unit.prober.fakeshell import FakeShell


@pytest.fixture
def fake() -> FakeRuntime:
    return FakeRuntime("node")


@pytest.fixture
def shell(fake: FakeRuntime) -> FakeShell:
    shell = FakeShell(fake)
    fake.stream_handler = shell
    return shell


@pytest.fixture
def sessions(fake: FakeRuntime, shell: FakeShell):
    sessions = ExecSessions(fake)
    yield sessions
    sessions.close()


def app(fake: FakeRuntime, name: str = "web") -> ContainerID:
    ref = PodRef(f"uid-{name}", "default", name)
    ident = fake.create_container(fake.create_sandbox(SandboxConfig(ref)), ref, ContainerConfig("app", "busybox"))
    fake.start_container(ident)
    return ident


def test_runs_share_one_exec_and_get_their_own_output_and_status(fake, shell, sessions) -> None:
    container = app(fake)
    fake.exec_handler = lambda _c, command: ExecResult(int(command[1]), f"out {command[1]}".encode())
    results = [sessions.exec(container, ["check", str(i % 3)], 1) for i in range(50)]
    assert results == [ExecResult(i % 3, f"out {i % 3}".encode()) for i in range(50)]
    assert len(fake.calls_named("exec_stream")) == 1 and fake.calls_named("exec") == []
    assert shell.runs[0] == ["check", "0"] and sessions.open_sessions() == 1


def test_arguments_reach_the_command_unexpanded(fake, shell, sessions) -> None:
    container = app(fake)
    argv = ["sh", "-c", "echo $HOME; echo 'quoted' \"double\" ) ;", "a b", ""]
    assert sessions.exec(container, argv, 1).exit_code == 0
    assert shell.runs == [argv]
    assert command_line(["x'y"], "m", 1) == b"""(exec 'x'"'"'y' ) </dev/null 2>&1; echo "m 1 $?"\n"""


def reader() -> tuple[Session, socket.socket]:
    ours, theirs = socket.socketpair()

    class Stream:
        sock = ours

        def close(self) -> None:
            ours.close()

    return Session(ContainerID("docker", "c1"), Stream(), marker="m4rk"), theirs


def test_the_answer_is_found_across_split_frames_and_streams() -> None:
    session, shell = reader()
    payload = frame(1, b"partial") + frame(2, b" err\nm4") + frame(1, b"rk 1 ") + frame(1, b"3\n")
    for i in range(0, len(payload), 5):  # the frames themselves arrive in pieces
        shell.sendall(payload[i : i + 5])
    assert session.run(["x"], time.monotonic() + 1) == ExecResult(3, b"partial err\n")
    shell.close()
    session.stream.close()


def test_a_marker_of_another_run_or_another_session_is_output() -> None:
    session, shell = reader()
    shell.sendall(frame(1, b"m4rk 0 0\nother 1 0\nm4rk 1 9\n"))
    assert session.run(["x"], time.monotonic() + 1) == ExecResult(9, b"m4rk 0 0\nother 1 0\n")
    shell.sendall(frame(1, b"m4rk 2 nonsense\n"))
    with pytest.raises(SessionEnded):
        session.run(["x"], time.monotonic() + 1)
    shell.close()
    session.stream.close()


def test_output_is_capped_at_10_kib_and_the_status_still_read(fake, shell, sessions) -> None:
    container = app(fake)
    fake.exec_handler = lambda _c, _command: ExecResult(1, b"x" * (5 * MAX_OUTPUT))
    result = sessions.exec(container, ["noisy"], 2)
    assert result == ExecResult(1, b"x" * MAX_OUTPUT)
    assert sessions.exec(container, ["noisy"], 2).exit_code == 1  # the session is still in step


def test_a_hanging_command_times_out_its_session_is_killed_and_the_next_run_opens_another(fake, shell, sessions):
    container = app(fake)
    release = threading.Event()
    fake.exec_handler = lambda _c, command: release.wait(10) and ExecResult(0, b"") if command == ["sleep", "10"] \
        else ExecResult(0, b"fine")  # fmt: skip
    assert sessions.exec(container, ["true"], 1).output == b"fine"
    started = time.monotonic()
    assert run_exec(sessions, container, ["sleep", "10"], 0.3) == (False, 'command "sleep 10" timed out')
    assert time.monotonic() - started < 2
    assert sessions.open_sessions() == 0 and fake.open_streams == set()  # the shell killed, its stream closed
    assert sessions.exec(container, ["true"], 1).output == b"fine"
    assert len(fake.calls_named("exec_stream")) == 2
    release.set()


def test_a_container_without_a_shell_gets_a_plain_exec_per_run(fake, shell, sessions) -> None:
    shell.available = False
    container = app(fake)
    fake.exec_handler = lambda _c, command: ExecResult(0, b" ".join(c.encode() for c in command))
    for _ in range(3):
        assert sessions.exec(container, ["check", "it"], 1) == ExecResult(0, b"check it")
    assert len(fake.calls_named("exec_stream")) == 1 and len(fake.calls_named("exec")) == 3
    assert sessions.open_sessions() == 0 and fake.open_streams == set()


def test_a_shell_that_ends_fails_the_run_and_the_next_run_opens_another(fake, shell, sessions) -> None:
    container = app(fake)
    sessions.exec(container, ["true"], 1)
    for stream in list(fake.open_streams):
        stream.close()  # as when its container stops
    with pytest.raises(SessionEnded):
        sessions.exec(container, ["true"], 1)
    assert sessions.exec(container, ["true"], 1).exit_code == 0


def test_errors_of_the_engine_and_empty_commands_are_errors(fake, shell, sessions) -> None:
    with pytest.raises(ContainerRuntimeError, match="no command"):
        sessions.exec(app(fake), [], 1)
    with pytest.raises(ContainerRuntimeError):
        sessions.exec(ContainerID("docker", "gone"), ["true"], 1)
    assert sessions.open_sessions() == 0


def test_concurrent_runs_in_one_container_use_a_session_each(fake, shell, sessions) -> None:
    container = app(fake)
    inside = threading.Barrier(2, timeout=5)
    fake.exec_handler = lambda _c, command: inside.wait() is not None and ExecResult(0, command[0].encode())
    with_threads = [threading.Thread(target=sessions.exec, args=(container, [kind], 5)) for kind in ("live", "ready")]
    for thread in with_threads:
        thread.start()
    for thread in with_threads:
        thread.join(5)
    assert sorted(argv[0] for argv in shell.runs) == ["live", "ready"] and sessions.open_sessions() == 2


def test_sessions_of_containers_no_longer_probed_are_closed_and_nothing_is_left(fake, shell, sessions) -> None:
    threads = threading.active_count()
    kept, gone = app(fake, "kept"), app(fake, "gone")
    for container in (kept, gone):
        sessions.exec(container, ["true"], 1)
    assert len(fake.open_streams) == 2
    assert sessions.retain({kept.id}) is True
    assert sessions.open_sessions() == 2  # the dropped one waits for close_dropped (off the prober's tick)
    sessions.close_dropped()
    assert sessions.open_sessions() == 1 and len(fake.open_streams) == 1
    assert sessions.retain({kept.id}) is False
    sessions.close()
    assert sessions.open_sessions() == 0 and fake.open_streams == set()
    wait_for(lambda: threading.active_count() == threads, 5, "the fake shells' threads gone")
