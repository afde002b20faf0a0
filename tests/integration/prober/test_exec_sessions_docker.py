"""Exec probe sessions on the real engine: one Docker exec serves many runs, a hanging command times out with its
shell killed, an image without /bin/sh falls back to plain execs, and nothing stays open once a container is gone."""
from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import psutil
import pytest

from edgeworkers.k8s.pod import Pod
from edgeworkers.prober.execsession import ExecSessions
from edgeworkers.prober.handlers import MAX_OUTPUT, run_exec
from edgeworkers.prober.manager import ProbeManager
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerConfig, ContainerID, PodRef, SandboxConfig
from edgeworkers.status.proberesults import MemoryProbeResults
from tests.polling import wait_for


@pytest.fixture
def runtime(node_name: str, docker_client: docker.DockerClient) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name)
    yield runtime
    runtime.close()


@pytest.fixture
def engine_execs(runtime: DockerRuntime) -> dict[str, int]:
    """How many streaming execs (sessions) and plain execs the runtime was asked for."""
    counts = {"exec_stream": 0, "exec": 0}
    for name in counts:
        method = getattr(runtime, name)

        def counted(*args, _method=method, _name=name, **kwargs):
            counts[_name] += 1
            return _method(*args, **kwargs)

        setattr(runtime, name, counted)
    return counts


@pytest.fixture
def sessions(runtime: DockerRuntime) -> Iterator[ExecSessions]:
    sessions = ExecSessions(runtime)
    yield sessions
    sessions.close()


def start_app(runtime: DockerRuntime, image: str = "busybox", command: list[str] | None = None) -> ContainerID:
    ref = PodRef(str(uuid.uuid4()), "default", f"p-{uuid.uuid4().hex[:6]}")
    sandbox = runtime.create_sandbox(SandboxConfig(ref))
    app = runtime.create_container(sandbox, ref, ContainerConfig("app", image, command=command or ["sleep", "300"]))
    runtime.start_container(app)
    return app


def processes(docker_client: docker.DockerClient, container: ContainerID) -> list[str]:
    """The command lines running in the container (``docker top``)."""
    top = docker_client.api.top(container.id, ps_args="-o pid,args")
    return [row[-1] for row in top["Processes"] or []]


def running_execs(docker_client: docker.DockerClient, container: ContainerID) -> int:
    return len(docker_client.api.inspect_container(container.id)["ExecIDs"] or [])


def test_one_session_serves_100_runs(runtime, engine_execs, sessions, docker_client) -> None:
    app = start_app(runtime)
    started = time.monotonic()
    for i in range(100):
        result = sessions.exec(app, ["sh", "-c", 'echo "run $0"; exit $(($0 % 3))', str(i)], 5)
        assert (result.exit_code, result.output) == (i % 3, f"run {i}\n".encode())
    elapsed = time.monotonic() - started
    assert engine_execs == {"exec_stream": 1, "exec": 0}
    assert running_execs(docker_client, app) == 1 and sessions.open_sessions() == 1
    assert elapsed < 20, f"100 runs took {elapsed:.1f} s"


def test_a_hanging_probe_fails_in_its_timeout_and_the_next_run_works(
    runtime, engine_execs, sessions, docker_client
) -> None:
    app = start_app(runtime)
    assert sessions.exec(app, ["true"], 5).exit_code == 0
    started = time.monotonic()
    assert run_exec(sessions, app, ["sleep", "10"], 1) == (False, 'command "sleep 10" timed out')
    assert time.monotonic() - started < 3.5  # the timeout, then an inspect and a kill on a busy engine
    # The session's shell and its `sleep 10` are killed, not left behind (as a plain Docker exec's would be).
    wait_for(lambda: processes(docker_client, app) == ["sleep 300"], 5, "only the app's own process left")
    assert sessions.exec(app, ["sh", "-c", "echo again"], 5).output == b"again\n"
    assert engine_execs["exec_stream"] == 2 and running_execs(docker_client, app) == 1


@pytest.fixture
def shell_less_image(docker_client: docker.DockerClient, tmp_path: Path) -> Iterator[str]:
    """An image holding only /bin/busybox (no /bin/sh), tagged for this test alone and removed after it."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
    tag = f"edgeworkers-test/noshell:{uuid.uuid4().hex[:10]}"
    repository, _, version = tag.partition(":")
    docker_client.api.import_image_from_data(data.getvalue(), repository=repository, tag=version)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_an_image_without_a_shell_gets_plain_execs(runtime, engine_execs, sessions, shell_less_image) -> None:
    app = start_app(runtime, shell_less_image, ["/bin/busybox", "sleep", "300"])
    for _ in range(3):
        result = sessions.exec(app, ["/bin/busybox", "echo", "plain"], 5)
        assert (result.exit_code, result.output) == (0, b"plain\n")
    # The shell that could not start, then one plain exec per run (itself a stream the runtime can kill).
    assert engine_execs == {"exec_stream": 1 + 3, "exec": 3}
    assert sessions.open_sessions() == 0


def test_a_plain_exec_that_hangs_is_killed_at_its_timeout_and_its_output_bounded(
    runtime, sessions, shell_less_image, docker_client
) -> None:
    app = start_app(runtime, shell_less_image, ["/bin/busybox", "sleep", "300"])
    assert sessions.exec(app, ["/bin/busybox", "true"], 5).exit_code == 0  # the container is known shell-less now
    started = time.monotonic()
    assert run_exec(sessions, app, ["/bin/busybox", "sleep", "30"], 1) == (False, 'command "/bin/busybox sleep 30" timed out')
    assert time.monotonic() - started < 3.5
    wait_for(lambda: processes(docker_client, app) == ["/bin/busybox sleep 300"], 5, "the hanging command killed")

    flood = ["/bin/busybox", "dd", "if=/dev/zero", "bs=1024", "count=1024"]  # 1 MiB of output (and dd's report)
    result = runtime.exec(app, flood, 10)
    assert result.exit_code == 0 and len(result.output) == MAX_OUTPUT == 10 * 1024


def open_files() -> set[str]:
    """What this process's file descriptors point to (``socket:[inode]`` for a socket)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # closed meanwhile
    return found


def pod_of(name: str, uid: str) -> Pod:
    return Pod.model_validate({"metadata": {"name": name, "namespace": "default", "uid": uid}, "spec": {"containers": [
        {"name": "app", "image": "busybox", "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}},
    ]}})  # fmt: skip


def test_nothing_stays_open_once_the_pod_is_gone(runtime, docker_client) -> None:
    ref = PodRef(str(uuid.uuid4()), "default", "gone")
    sandbox = runtime.create_sandbox(SandboxConfig(ref))
    app = runtime.create_container(sandbox, ref, ContainerConfig("app", "busybox", command=["sleep", "300"]))
    runtime.start_container(app)
    me = psutil.Process()
    pods = [pod_of("gone", ref.uid)]
    prober = ProbeManager(runtime, MemoryProbeResults(), lambda: pods, lambda key: None, workers=2)
    try:
        prober.tick(runtime.list_containers())
        wait_for(lambda: any("/bin/sh" in line for line in processes(docker_client, app)), 10, "the session's shell")
        wait_for(lambda: not any(state.running for state in prober._states.values()), 10, "the first run done")
        (shell,) = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["/bin/sh"]
                    and p.ppid() and app.id in Path(f"/proc/{p.pid}/cgroup").read_text()]  # fmt: skip
        (session,) = prober._sessions._idle[app.id]
        socket_inode = os.readlink(f"/proc/self/fd/{session.stream.sock.fileno()}")
        threads = me.num_threads()

        pods.clear()  # the pod deleted: the prober no longer sees its containers
        runtime.remove_container(app)
        runtime.remove_container(sandbox)
        prober.tick(runtime.list_containers())
        wait_for(lambda: not shell.is_running(), 10, "the session's shell gone")
        wait_for(lambda: prober._sessions.open_sessions() == 0, 10, "the session closed")
        wait_for(lambda: socket_inode not in open_files(), 10, "the session's socket closed")
        assert me.num_threads() <= threads
    finally:
        prober.close()
