"""What only the real engine shows: the Docker configuration DockerRuntime writes, OOM, timeouts, images."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import DockerRuntime, parse_docker_time
from edgeworkers.runtime.errors import (
    ContainerCreateError,
    ContainerRuntimeError,
    ExecTimeout,
    ImageInUse,
)
from edgeworkers.runtime.types import (
    Container,
    ContainerConfig,
    ContainerID,
    ContainerState,
    Mount,
    PodRef,
    SandboxConfig,
)
from tests.polling import wait_for

MI = 1024 * 1024


def sh(name: str, script: str, **kwargs) -> ContainerConfig:
    return ContainerConfig(name=name, image="busybox", command=["sh", "-c"], args=[script], **kwargs)


def find(runtime: DockerRuntime, container: ContainerID) -> Container | None:
    return next((c for c in runtime.list_containers() if c.id == container), None)


def wait_exited(runtime: DockerRuntime, container: ContainerID, timeout_s: float = 15) -> Container:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = find(runtime, container)
        if found and found.state == ContainerState.EXITED:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{container} did not exit within {timeout_s}s")


@pytest.fixture
def runtime(node_name: str, docker_client: docker.DockerClient) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name)
    yield runtime
    runtime.close()


@pytest.fixture
def pod() -> PodRef:
    return PodRef(uid=str(uuid.uuid4()), namespace="team-a", name=f"db-{uuid.uuid4().hex[:6]}")


def test_app_container_config_reaches_docker(
    runtime: DockerRuntime, pod: PodRef, docker_client: docker.DockerClient, tmp_path
) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    config = ContainerConfig(
        name="app",
        image="busybox",
        command=["sh", "-c"],
        args=["sleep 300"],
        env={"GREETING": "hello"},
        working_dir="/tmp",
        cpu_limit_nano=500_000_000,
        cpu_shares=256,
        memory_limit_bytes=64 * MI,
        memory_request_bytes=32 * MI,
        user="1000",
        mounts=[Mount(str(tmp_path), "/data", read_only=True)],
        restart_count=4,
    )
    app_id = runtime.create_container(sandbox_id, pod, config)
    attrs = docker_client.api.inspect_container(app_id.id)
    host = attrs["HostConfig"]
    assert attrs["Name"] == f"/k8s_app_{pod.name}_{pod.namespace}_{pod.uid}_4"
    assert (host["NanoCpus"], host["CpuShares"]) == (500_000_000, 256)
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == (64 * MI, 64 * MI, 32 * MI)
    assert host["NetworkMode"] == host["IpcMode"] == f"container:{sandbox_id.id}"
    assert host["Binds"] == [f"{tmp_path}:/data:ro"]
    assert host["RestartPolicy"]["Name"] in ("", "no")
    assert attrs["Config"]["Entrypoint"] == ["sh", "-c"] and attrs["Config"]["Cmd"] == ["sleep 300"]
    assert "GREETING=hello" in attrs["Config"]["Env"]
    assert (attrs["Config"]["WorkingDir"], attrs["Config"]["User"]) == ("/tmp", "1000")
    assert attrs["Config"]["Labels"][labels.RESTART_COUNT] == "4"


def test_sandbox_holds_the_pods_namespaces(
    runtime: DockerRuntime, pod: PodRef, docker_client: docker.DockerClient
) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    attrs = docker_client.api.inspect_container(sandbox_id.id)
    assert attrs["Name"] == f"/k8s_POD_{pod.name}_{pod.namespace}_{pod.uid}_0"
    assert attrs["Config"]["Hostname"] == pod.name
    assert attrs["HostConfig"]["IpcMode"] == "shareable"
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")

    app_id = runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    runtime.start_container(app_id)
    addresses = runtime.exec(app_id, ["ip", "-o", "-4", "addr"], timeout_s=5).output.decode()
    assert runtime.container_ip(sandbox_id) in addresses


def test_a_long_pod_name_gets_a_cut_hostname(runtime: DockerRuntime, docker_client: docker.DockerClient) -> None:
    pod = PodRef(str(uuid.uuid4()), "default", "x" * 100)
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    assert runtime.exec(sandbox_id, ["hostname"], timeout_s=5).output == b"x" * 63 + b"\n"


def test_host_network_sandbox(runtime: DockerRuntime, pod: PodRef, docker_client: docker.DockerClient) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod, host_network=True))
    assert docker_client.api.inspect_container(sandbox_id.id)["HostConfig"]["NetworkMode"] == "host"


def test_host_namespaces_and_capabilities_a_pod_was_admitted_with_reach_docker(
    runtime: DockerRuntime, pod: PodRef, docker_client: docker.DockerClient
) -> None:
    """Node admission may allow hostPID, hostIPC and added capabilities: then the containers really get them."""
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod, host_ipc=True))
    assert docker_client.api.inspect_container(sandbox_id.id)["HostConfig"]["IpcMode"] == "host"
    app_id = runtime.create_container(sandbox_id, pod, sh("app", "sleep 300", host_pid=True, host_ipc=True,
                                                           cap_add=["NET_ADMIN"], cap_drop=["CHOWN"]))
    runtime.start_container(app_id)
    host = docker_client.api.inspect_container(app_id.id)["HostConfig"]
    assert (host["PidMode"], host["IpcMode"]) == ("host", "host")
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["CHOWN"]
    processes = runtime.exec(app_id, ["sh", "-c", "ls /proc 2>/dev/null | grep -c '^[0-9]'"], timeout_s=5).output
    assert int(processes) > 10  # the host's processes, not the pod's two


@pytest.mark.parametrize(
    ("command", "args", "entrypoint", "cmd", "output"),
    [
        (["echo", "from-command"], [], ["echo", "from-command"], None, b"from-command\n"),
        ([], ["echo", "from-args"], None, ["echo", "from-args"], b"from-args\n"),
        (["echo"], ["a", "b"], ["echo"], ["a", "b"], b"a b\n"),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(
    runtime: DockerRuntime,
    pod: PodRef,
    docker_client: docker.DockerClient,
    command: list[str],
    args: list[str],
    entrypoint: list[str] | None,
    cmd: list[str] | None,
    output: bytes,
) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    app_id = runtime.create_container(sandbox_id, pod, ContainerConfig("app", "busybox", command=command, args=args))
    config = docker_client.api.inspect_container(app_id.id)["Config"]
    assert (config["Entrypoint"], config["Cmd"]) == (entrypoint, cmd)
    runtime.start_container(app_id)
    wait_exited(runtime, app_id)
    assert b"".join(runtime.logs(app_id)) == output


def test_settings_the_engine_refuses_raise_container_create_error(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    with pytest.raises(ContainerCreateError, match="[Mm]emory"):
        runtime.create_container(sandbox_id, pod, sh("app", "true", memory_limit_bytes=MI))  # under Docker's 6 MB


def test_out_of_memory_reads_oomkilled(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    hog = sh("hog", "head -c 256m /dev/zero | tail", memory_limit_bytes=16 * MI)
    app_id = runtime.create_container(sandbox_id, pod, hog)
    runtime.start_container(app_id)
    done = wait_exited(runtime, app_id, timeout_s=30)
    assert done.reason == "OOMKilled" and done.exit_code != 0


def test_exec_timeout(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    began = time.monotonic()
    with pytest.raises(ExecTimeout):
        runtime.exec(sandbox_id, ["sleep", "30"], timeout_s=0.5)
    assert time.monotonic() - began < 3
    # Killed, as CRI's ExecSync kills: not left running in the container.
    count = ["sh", "-c", "ps -o args | grep -c '^sleep 30'"]
    wait_for(lambda: runtime.exec(sandbox_id, count, timeout_s=5).output == b"0\n", 5, "the timed-out exec killed")


def test_exec_in_a_stopped_container_is_a_runtime_error(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    app_id = runtime.create_container(sandbox_id, pod, sh("app", "exit 0"))
    with pytest.raises(ContainerRuntimeError):
        runtime.exec(app_id, ["true"], timeout_s=2)


def test_follow_logs_until_the_container_exits(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    app_id = runtime.create_container(sandbox_id, pod, sh("app", "echo a; sleep 1; echo b"))
    runtime.start_container(app_id)
    assert b"".join(runtime.logs(app_id, follow=True)) == b"a\nb\n"  # returns once the output closes
    assert wait_exited(runtime, app_id).exit_code == 0


def test_logs_since_a_line_timestamp(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    app_id = runtime.create_container(sandbox_id, pod, sh("app", "echo one; sleep 1; echo two"))
    runtime.start_container(app_id)
    wait_exited(runtime, app_id)
    second = b"".join(runtime.logs(app_id, timestamps=True)).splitlines()[1]
    since = parse_docker_time(second.split(b" ", 1)[0].decode())
    assert b"".join(runtime.logs(app_id, since=since)) == b"two\n"


def test_relisting_an_unchanged_node_inspects_nothing(
    runtime: DockerRuntime, pod: PodRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    app_id = runtime.create_container(sandbox_id, pod, sh("app", "exit 5"))
    runtime.start_container(app_id)
    first = wait_exited(runtime, app_id)
    inspected: list[str] = []
    original = docker.APIClient.inspect_container
    monkeypatch.setattr(
        docker.APIClient, "inspect_container", lambda self, c: inspected.append(c) or original(self, c)
    )
    again = {c.id: c for c in runtime.list_containers()}
    assert inspected == []
    assert again[app_id] == first and again[sandbox_id].state == ContainerState.RUNNING


def test_requests_for_many_containers_share_one_connection_pool(runtime: DockerRuntime, pod: PodRef) -> None:
    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    app_id = runtime.create_container(sandbox_id, pod, sh("app", "sleep 300"))
    runtime.start_container(app_id)
    assert {c.id for c in runtime.list_containers(pod.key)} == {sandbox_id, app_id}
    assert runtime.container_ip(app_id)  # an inspect of each
    runtime.usage([app_id, sandbox_id])
    assert len(runtime._api().adapters["http+docker://"].pools) == 1


def test_images_list_and_in_use_removal(
    runtime: DockerRuntime, pod: PodRef, docker_client: docker.DockerClient
) -> None:
    busybox = next(image for image in runtime.list_images() if "busybox:latest" in image.tags)
    assert busybox.id.startswith("sha256:") and busybox.size_bytes > 0 and busybox.created_at is not None

    sandbox_id = runtime.create_sandbox(SandboxConfig(pod))
    tag = f"edgeworkers-test/{pod.name}:1"
    image_id = docker_client.api.commit(sandbox_id.id, repository=tag.split(":")[0], tag="1")["Id"]
    try:
        app_id = runtime.create_container(sandbox_id, pod, ContainerConfig("app", tag))
        with pytest.raises(ImageInUse):
            runtime.remove_image(image_id)
        runtime.remove_container(app_id)
        runtime.remove_image(image_id)
        assert not runtime.image_present(tag)
        runtime.remove_image(image_id)  # already gone: not an error
    finally:
        for container in docker_client.api.containers(all=True, filters={"ancestor": image_id}):
            docker_client.api.remove_container(container["Id"], force=True)
        if runtime.image_present(image_id):
            docker_client.api.remove_image(image_id, force=True)
