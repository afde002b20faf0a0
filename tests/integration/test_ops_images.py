"""ops/images: the local images every manifest and the sandbox rely on, built without a registry."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import docker
import pytest

from edgeworkers.runtime import labels

OPS = Path(__file__).resolve().parents[2] / "ops"
TAGS = [
    "busybox", "busybox:latest", "busybox:1.28", "busybox:1.36",
    "registry.k8s.io/busybox", "registry.k8s.io/busybox:1.27.2", "edgeworkers/pause:latest",
]


@pytest.fixture(scope="module")
def built() -> str:
    first = subprocess.run([OPS / "images"], capture_output=True, text=True, check=True)
    second = subprocess.run([OPS / "images"], capture_output=True, text=True, check=True)
    return first.stderr + second.stderr


def test_running_twice_builds_nothing_the_second_time(built: str) -> None:
    assert built.rstrip().endswith("local images present")


@pytest.mark.parametrize("tag", TAGS)
def test_every_tag_exists_and_is_labelled_local(built: str, docker_client: docker.DockerClient, tag: str) -> None:
    assert docker_client.images.get(tag).labels.get("io.edgeworkers.image") == "local"


def test_busybox_runs_its_applets_as_root_and_nobody(built: str, docker_client: docker.DockerClient, node_name: str) -> None:
    out = docker_client.containers.run(
        "busybox:1.28", ["sh", "-c", "id -un; wget --help 2>&1 | head -n 1"],
        labels={labels.NODE: node_name},
    )
    assert out.decode().splitlines()[0] == "root"
    assert b"BusyBox" in out
    assert docker_client.containers.run("busybox", ["id", "-un"], user="65534", labels={labels.NODE: node_name}) == b"nobody\n"


def test_busybox_default_command_is_sh(built: str, docker_client: docker.DockerClient) -> None:
    assert docker_client.images.get("busybox").attrs["Config"]["Cmd"] == ["sh"]


def test_sandbox_waits_then_exits_zero_at_once_on_sigterm(
    built: str, docker_client: docker.DockerClient, node_name: str
) -> None:
    sandbox = docker_client.containers.run("edgeworkers/pause:latest", detach=True, labels={labels.NODE: node_name})
    deadline = time.monotonic() + 10
    while sandbox.status != "running":
        assert time.monotonic() < deadline, "sandbox did not start"
        time.sleep(0.05)
        sandbox.reload()
    started = time.monotonic()
    sandbox.stop(timeout=10)
    assert time.monotonic() - started < 3
    sandbox.reload()
    assert sandbox.attrs["State"]["ExitCode"] == 0
