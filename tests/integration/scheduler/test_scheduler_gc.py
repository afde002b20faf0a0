"""Container GC and image GC on real Docker (and Redis): each acting only on what the test made."""
from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator

import docker
import pytest
import redis

from edgeworkers.gc.containers import ContainerGC, ContainerGCPolicy
from edgeworkers.gc.images import ImageGC, ImageGCPolicy
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerConfig, ContainerState, PodRef, SandboxConfig
from tests.polling import wait_for


@pytest.fixture
def runtime(node_name: str, docker_client: docker.DockerClient) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name)
    yield runtime
    runtime.close()


def test_container_gc_keeps_the_configured_number_of_dead_containers(runtime: DockerRuntime) -> None:
    pod = PodRef(str(uuid.uuid4()), "default", "crashy")
    sandbox = runtime.create_sandbox(SandboxConfig(pod))
    for count in range(4):
        ident = runtime.create_container(sandbox, pod, ContainerConfig("app", "busybox", command=["true"],
                                                                        restart_count=count))  # fmt: skip
        runtime.start_container(ident)

    def dead() -> list:
        return sorted((c for c in runtime.list_containers() if c.name == "app" and c.state == ContainerState.EXITED),
                      key=lambda c: c.restart_count)  # fmt: skip

    wait_for(lambda: len(dead()) == 4, 30, "four dead instances")
    ContainerGC(runtime, lambda: {pod.uid}, ContainerGCPolicy(max_per_pod_container=2)).collect()
    assert [c.restart_count for c in dead()] == [2, 3]  # the newest two
    ContainerGC(runtime, lambda: {pod.uid}, ContainerGCPolicy(max_per_pod_container=1)).collect()
    assert [c.restart_count for c in dead()] == [3]
    assert any(c.is_sandbox and c.state == ContainerState.RUNNING for c in runtime.list_containers())
    ContainerGC(runtime, set, ContainerGCPolicy()).collect()  # the pod is no longer desired
    assert dead() == []


def _tiny_rootfs() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = uuid.uuid4().hex.encode()  # a distinct image each time
        info = tarfile.TarInfo("marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_image_gc_deletes_an_unused_image_and_never_one_in_use(
    runtime: DockerRuntime, docker_client: docker.DockerClient, node_name: str, real_redis: redis.Redis
) -> None:
    repo = f"edgeworkers-test/{node_name}"
    made = []
    try:
        for tag in ("unused", "used"):
            docker_client.api.import_image_from_data(
                _tiny_rootfs(), repository=repo, tag=tag, changes=[f"LABEL io.edgeworkers.test={node_name}"]
            )
            made.append(f"{repo}:{tag}")
        # A container the agent does not manage (no pod labels) uses it: Docker's own view counts.
        user = docker_client.containers.create(f"{repo}:used", command=["/marker"],
                                               labels={"io.edgeworkers.node": node_name})  # fmt: skip
        # Full disk, as far as the GC knows; it may act only on this test's two images.
        gc = ImageGC(runtime, real_redis, lambda: (100, 99), ImageGCPolicy(85, 80, min_age_s=0),
                     runtime.sandbox_image, candidates=lambda image: any(t.startswith(repo) for t in image.tags))
        freed = gc.collect()

        assert freed > 0
        assert [t for i in docker_client.images.list(name=repo) for t in i.tags] == [f"{repo}:used"]
        user.remove(force=True)
    finally:
        for tag in made:
            try:
                docker_client.images.remove(tag, force=True)
            except docker.errors.ImageNotFound:
                pass
