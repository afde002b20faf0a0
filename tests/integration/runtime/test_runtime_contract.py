"""The Runtime contract, run against both FakeRuntime and DockerRuntime (the real dockerd).

A driver per implementation plays what only the real engine does by itself: a container's command running
to its end, printing output. For DockerRuntime that is real (the test waits for it); for FakeRuntime the
driver simulates it, so both must then look the same through the protocol.
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from edgeworkers.process import node_oom_score_floor
from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.errors import (
    ContainerCreateError,
    ImageNotPresent,
    ImagePullError,
    RuntimeUnavailable,
)
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.protocol import EXEC_OUTPUT_MAX, Runtime
from edgeworkers.runtime.types import (
    Container,
    ContainerConfig,
    ContainerID,
    ContainerSecurity,
    ContainerState,
    ContainerUsage,
    ExecResult,
    PodRef,
    PortMapping,
    SandboxConfig,
)
from tests.integration.cloud.conftest import free_port
from tests.polling import wait_for

UNREACHABLE_IMAGE = "127.0.0.1:1/edgeworkers/absent:1"  # a registry on a closed loopback port


@dataclass
class Driver:
    kind: str
    runtime: Runtime
    node_name: str

    def ran(self, container: ContainerID, exit_code: int, output: bytes = b"") -> Container:
        """The container's command printed ``output`` and exited with ``exit_code``; returns it as listed."""
        if isinstance(self.runtime, FakeRuntime):
            if output:
                self.runtime.write_log(container, output)
            self.runtime.exit(container, exit_code)
        return wait_for(lambda: exited(self.runtime, container), 15, f"{container} to exit")

    def answers_exec(self, result: ExecResult) -> None:
        if isinstance(self.runtime, FakeRuntime):
            self.runtime.exec_handler = lambda _container, _command: result

    def stops_with(self, exit_code: int) -> None:
        """How the next stopped container ends (real busybox decides by itself whether it traps TERM)."""
        if isinstance(self.runtime, FakeRuntime):
            self.runtime.stop_exit_code = exit_code

    def reopened(self) -> Runtime:
        """A new runtime on the same engine: it knows nothing but what the engine holds."""
        if isinstance(self.runtime, FakeRuntime):
            return self.runtime
        return DockerRuntime(self.node_name)

    def without_sandbox_image(self) -> Runtime:
        if isinstance(self.runtime, FakeRuntime):
            return FakeRuntime(self.node_name, images=["busybox"])
        return DockerRuntime(self.node_name, sandbox_image="edgeworkers/absent-pause:latest")

    def answers_from_config(self, read: Callable[[ContainerConfig], str]) -> None:
        """What the real engine enforces by itself, as the fake's exec answers it: ``read`` of the container's config."""
        if isinstance(self.runtime, FakeRuntime):
            fake = self.runtime
            fake.exec_handler = lambda container, _command: ExecResult(0, read(fake.config_of(container.id)).encode())

    def lowest(self, score: int) -> int:
        """The score a process gets when asked ``score``: no lower than the node allows (without CAP_SYS_RESOURCE,
        as on some CI sandboxes, the engine is never asked less)."""
        return score if isinstance(self.runtime, FakeRuntime) else max(score, node_oom_score_floor())

    def unavailable(self) -> Runtime:
        if isinstance(self.runtime, FakeRuntime):
            self.runtime.unavailable = True
            return self.runtime
        return DockerRuntime(self.node_name, docker_host="unix:///nonexistent/docker.sock")


def exited(runtime: Runtime, container: ContainerID) -> Container | None:
    found = find(runtime, container)
    return found if found and found.state == ContainerState.EXITED else None


def find(runtime: Runtime, container: ContainerID) -> Container | None:
    return next((c for c in runtime.list_containers() if c.id == container), None)


@pytest.fixture(params=["fake", "docker"])
def driver(request: pytest.FixtureRequest, node_name: str) -> Iterator[Driver]:
    if request.param == "fake":
        yield Driver("fake", FakeRuntime(node_name), node_name)
        return
    request.getfixturevalue("docker_client")  # fails loudly when dockerd is not running
    runtime = DockerRuntime(node_name)
    yield Driver("docker", runtime, node_name)
    runtime.close()


@pytest.fixture
def pod() -> PodRef:
    return PodRef(uid=str(uuid.uuid4()), namespace="default", name=f"web-{uuid.uuid4().hex[:6]}")


def sh(name: str, script: str, **kwargs) -> ContainerConfig:
    return ContainerConfig(name=name, image="busybox", command=["sh", "-c"], args=[script], **kwargs)


def test_sandbox_and_app_container_lifecycle(driver: Driver, pod: PodRef) -> None:
    runtime = driver.runtime
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod, spec_hash="s1"))
    sandbox = find(runtime, sandbox_id)
    assert sandbox is not None
    assert (sandbox.state, sandbox.is_sandbox, sandbox.name, sandbox.pod) == (
        ContainerState.RUNNING, True, labels.SANDBOX_NAME, pod,
    )

    app_id = runtime.create_container(sandbox_id, pod, sh("app", "sleep 300", spec_hash="h1"))
    app = find(runtime, app_id)
    assert app is not None and app.state == ContainerState.CREATED and not app.is_sandbox
    assert str(app_id).startswith("docker://")

    runtime.start_container(app_id)
    running = find(runtime, app_id)
    assert running is not None and running.state == ContainerState.RUNNING and running.started_at is not None
    assert {c.id for c in runtime.list_containers(pod.key)} == {sandbox_id, app_id}

    driver.stops_with(137)
    runtime.stop_container(app_id, 1)
    assert exited(runtime, app_id) is not None
    runtime.remove_container(app_id)
    runtime.remove_container(sandbox_id)
    assert runtime.list_containers(pod.key) == []
    runtime.remove_container(app_id)  # already gone: not an error
    runtime.stop_container(app_id, 1)


def test_state_is_rebuilt_from_the_engine_alone(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    init_id = driver.runtime.create_container(
        sandbox_id, pod, sh("setup", "exit 0", is_init=True, restart_count=0, spec_hash="aa")
    )
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300", restart_count=2, spec_hash="bb"))

    listed = {c.id: c for c in driver.reopened().list_containers(pod.key)}
    assert listed[init_id].is_init and listed[init_id].name == "setup" and listed[init_id].spec_hash == "aa"
    assert (listed[app_id].name, listed[app_id].restart_count, listed[app_id].spec_hash) == ("app", 2, "bb")
    assert not listed[app_id].is_init and listed[sandbox_id].is_sandbox
    assert all(c.pod == pod and c.labels[labels.NODE] == driver.node_name for c in listed.values())
    assert listed[app_id].image == "busybox" and listed[app_id].image_id.startswith("sha256:")
    assert listed[app_id].labels[labels.CONTAINER_TYPE] == labels.TYPE_APP


def test_other_nodes_and_pods_are_not_listed(driver: Driver, pod: PodRef) -> None:
    other = PodRef(str(uuid.uuid4()), "default", "other")
    mine = driver.runtime.create_sandbox(SandboxConfig(pod))
    theirs = driver.runtime.create_sandbox(SandboxConfig(other))
    assert [c.id for c in driver.runtime.list_containers(pod.key)] == [mine]
    assert {c.id for c in driver.runtime.list_containers()} == {mine, theirs}


@pytest.mark.parametrize(("code", "reason"), [(0, "Completed"), (3, "Error")])
def test_exit_code_and_reason(driver: Driver, pod: PodRef, code: int, reason: str) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", f"exit {code}"))
    driver.runtime.start_container(app_id)
    done = driver.ran(app_id, code)
    assert (done.exit_code, done.reason) == (code, reason)
    assert done.started_at is not None and done.finished_at is not None and done.finished_at >= done.started_at


def test_a_dead_container_of_the_same_name_is_replaced(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    first = driver.runtime.create_container(sandbox_id, pod, sh("app", "exit 1"))
    driver.runtime.start_container(first)
    driver.ran(first, 1)
    second = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    assert second != first
    assert [c.id for c in driver.runtime.list_containers(pod.key) if c.name == "app"] == [second]

    driver.runtime.start_container(second)
    with pytest.raises(ContainerCreateError):
        driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))


def test_stop_of_a_container_trapping_term_ends_at_once(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    script = "trap 'exit 0' TERM; echo ready; while :; do sleep 1; done"
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", script))
    driver.runtime.start_container(app_id)
    if driver.kind == "docker":  # the trap must be installed before the signal comes
        wait_for(lambda: b"ready" in b"".join(driver.runtime.logs(app_id)), 15, "the trap")
    driver.stops_with(0)
    began = time.monotonic()
    driver.runtime.stop_container(app_id, 10)
    assert time.monotonic() - began < 5
    stopped = exited(driver.runtime, app_id)
    assert stopped is not None and (stopped.exit_code, stopped.reason) == (0, "Completed")


def test_stop_kills_a_container_ignoring_term_after_the_grace_period(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "trap '' TERM; while :; do sleep 1; done"))
    driver.runtime.start_container(app_id)
    driver.stops_with(137)
    began = time.monotonic()
    driver.runtime.stop_container(app_id, 2)
    if driver.kind == "docker":
        assert time.monotonic() - began >= 1.9
    stopped = exited(driver.runtime, app_id)
    assert stopped is not None and (stopped.exit_code, stopped.reason) == (137, "Error")


def test_a_missing_image_is_not_present(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    assert driver.runtime.image_present("busybox")
    assert not driver.runtime.image_present("edgeworkers/absent:1")
    with pytest.raises(ImageNotPresent):
        driver.runtime.create_container(sandbox_id, pod, ContainerConfig("app", "edgeworkers/absent:1"))
    assert [c.id for c in driver.runtime.list_containers(pod.key)] == [sandbox_id]


def test_a_missing_sandbox_image_is_not_present(driver: Driver, pod: PodRef) -> None:
    with pytest.raises(ImageNotPresent):
        driver.without_sandbox_image().create_sandbox(SandboxConfig(pod))
    assert driver.runtime.list_containers(pod.key) == []


def test_a_failed_pull_raises_image_pull_error(driver: Driver) -> None:
    with pytest.raises(ImagePullError, match="absent"):
        driver.runtime.pull_image(UNREACHABLE_IMAGE)
    assert not driver.runtime.image_present(UNREACHABLE_IMAGE)


def test_exec_returns_exit_code_and_output(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    driver.runtime.start_container(app_id)
    driver.answers_exec(ExecResult(2, b"out\nerr\n"))
    result = driver.runtime.exec(app_id, ["sh", "-c", "echo out; echo err >&2; exit 2"], timeout_s=5)
    assert result.exit_code == 2
    assert sorted(result.output.splitlines()) == [b"err", b"out"]  # stdout and stderr interleave freely


def test_exec_keeps_the_first_10_kib_of_output(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    driver.runtime.start_container(app_id)
    driver.answers_exec(ExecResult(0, b"x" * 100_000))
    result = driver.runtime.exec(app_id, ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"], timeout_s=5)
    assert (result.exit_code, result.output) == (0, b"x" * EXEC_OUTPUT_MAX)


def test_logs_tail_and_timestamps(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "echo one; echo two; echo three"))
    driver.runtime.start_container(app_id)
    driver.ran(app_id, 0, b"one\ntwo\nthree\n")
    assert b"".join(driver.runtime.logs(app_id)) == b"one\ntwo\nthree\n"
    assert b"".join(driver.runtime.logs(app_id, tail=1)) == b"three\n"
    stamped = b"".join(driver.runtime.logs(app_id, timestamps=True)).splitlines()
    assert [line.split(b" ", 1)[1] for line in stamped] == [b"one", b"two", b"three"]
    assert all(line[:2] == b"20" and line.split(b" ", 1)[0].endswith(b"Z") for line in stamped)


@pytest.mark.parametrize("host_network", [False, True])
def test_pod_ip_unless_host_network(driver: Driver, pod: PodRef, host_network: bool) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod, host_network=host_network))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    ip = driver.runtime.container_ip(sandbox_id)
    if host_network:
        assert ip is None
    else:
        assert ip is not None and ip.count(".") == 3
    assert driver.runtime.container_ip(app_id) == ip
    assert driver.runtime.host_network(sandbox_id) is host_network
    assert driver.runtime.host_network(app_id) is host_network


def test_an_unreachable_engine_raises_runtime_unavailable(driver: Driver, pod: PodRef) -> None:
    runtime = driver.unavailable()
    with pytest.raises(RuntimeUnavailable):
        runtime.ping()
    with pytest.raises(RuntimeUnavailable):
        runtime.list_containers()
    with pytest.raises(RuntimeUnavailable):
        runtime.create_sandbox(SandboxConfig(pod))


def test_version_names_the_engine_as_a_container_id_scheme(driver: Driver) -> None:
    engine, sep, number = driver.runtime.version().partition("://")
    assert sep and engine in {"docker", "fake"}
    assert number[0].isdigit()


def test_the_data_root_is_an_existing_directory(driver: Driver) -> None:
    """Image GC measures the filesystem holding it (KubeEdge measured the root filesystem instead)."""
    root = driver.runtime.data_root()
    assert os.path.isabs(root) and os.path.isdir(root)


def test_usage_of_running_containers_only(driver: Driver, pod: PodRef) -> None:
    sandbox = driver.runtime.create_sandbox(SandboxConfig(pod))
    running = driver.runtime.create_container(sandbox, pod, sh("app", "sleep 300"))
    driver.runtime.start_container(running)
    stopped = driver.runtime.create_container(sandbox, pod, sh("done", "exit 0"))
    driver.runtime.start_container(stopped)
    driver.ran(stopped, 0)
    if isinstance(driver.runtime, FakeRuntime):  # what the real engine measures by itself
        driver.runtime.usages[running] = driver.runtime.usages[stopped] = ContainerUsage(1_000_000, 300_000)
    usage = driver.runtime.usage([running, stopped])
    assert set(usage) == {running}
    assert usage[running].cpu_usage_ns > 0 and usage[running].memory_working_set_bytes > 0
    assert driver.runtime.usage([]) == {}


def test_a_sandbox_holds_its_pods_host_ports_and_its_oom_score(driver: Driver, pod: PodRef) -> None:
    # (SCTP too, where the kernel has it: docker-proxy answers "protocol not supported" on this test machine.)
    mappings = (PortMapping(80, free_port(), "TCP", "127.0.0.1"), PortMapping(53, free_port(), "UDP"))
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod, port_mappings=mappings, oom_score_adj=-998))
    listed = find(driver.reopened(), sandbox_id)
    assert listed is not None and listed.port_mappings == mappings
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    assert find(driver.runtime, app_id).port_mappings == ()
    driver.answers_from_config(lambda config: f"{config.oom_score_adj}\n")
    score = driver.runtime.exec(sandbox_id, ["cat", "/proc/1/oom_score_adj"], timeout_s=5).output
    assert score == f"{driver.lowest(-998)}\n".encode()


def test_a_host_port_published_already_is_refused(driver: Driver, pod: PodRef) -> None:
    mapping = PortMapping(80, free_port())
    driver.runtime.create_sandbox(SandboxConfig(pod, port_mappings=(mapping,)))
    other = PodRef(str(uuid.uuid4()), "default", "other")
    with pytest.raises(ContainerCreateError, match="port is already allocated"):
        driver.runtime.create_sandbox(SandboxConfig(other, port_mappings=(PortMapping(8080, mapping.host_port),)))
    assert driver.runtime.list_containers(other.key) == []
    host = PodRef(str(uuid.uuid4()), "default", "host")  # a host-network pod's ports are recorded, not published
    host_id = driver.runtime.create_sandbox(SandboxConfig(host, host_network=True, port_mappings=(mapping,)))
    assert find(driver.runtime, host_id).port_mappings == (mapping,)


def test_a_containers_oom_score_and_pid_limit_reach_the_engine(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod))
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300", oom_score_adj=-997, pids_limit=20))
    driver.runtime.start_container(app_id)
    driver.answers_from_config(lambda config: f"{config.oom_score_adj} {config.pids_limit}\n")
    read = "echo $(cat /proc/1/oom_score_adj) $(cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null)"
    assert driver.runtime.exec(app_id, ["sh", "-c", read], timeout_s=5).output == f"{driver.lowest(-997)} 20\n".encode()
    best = driver.runtime.create_container(sandbox_id, pod, sh("best", "sleep 300", oom_score_adj=1000))
    driver.runtime.start_container(best)
    assert driver.runtime.exec(best, ["sh", "-c", read], timeout_s=5).output.split()[0] == b"1000"


def test_an_images_user(driver: Driver) -> None:
    assert driver.runtime.image_user("busybox") == ""  # no USER: root
    with pytest.raises(ImageNotPresent):
        driver.runtime.image_user("edgeworkers/absent:1")


def test_a_containers_confinement_and_sysctls_reach_the_engine(driver: Driver, pod: PodRef) -> None:
    sandbox_id = driver.runtime.create_sandbox(SandboxConfig(pod, sysctls={"kernel.shm_rmid_forced": "1"}))
    security = ContainerSecurity(groups=(2000, 4000), read_only_root=True, no_new_privileges=True, share_pid=True)
    app_id = driver.runtime.create_container(sandbox_id, pod, sh("app", "sleep 300", user="1000", security=security))
    driver.runtime.start_container(app_id)
    driver.answers_from_config(lambda config: "1000 0 2000 4000 trap 1 1\n")
    read = ("echo $(id -u) $(id -G) $(grep -o trap /proc/1/cmdline) $(grep NoNewPrivs /proc/self/status | cut -f2) "
            "$(cat /proc/sys/kernel/shm_rmid_forced); touch /x 2>/dev/null && echo writable")
    # PID 1 is the sandbox's process (shared PID namespace); the root filesystem is read-only.
    assert driver.runtime.exec(app_id, ["sh", "-c", read], timeout_s=5).output == b"1000 0 2000 4000 trap 1 1\n"
