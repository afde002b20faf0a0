"""hostPath by allowlist on real Docker (PodSyncer, DockerRuntime, HostMounter): what the allowlist allows is mounted,
read-only where it says so, the rest refused with a clear status; a symlink swapped in during a (simulated, slow)
pull or during a bind never exposes what lies outside."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from edgeworkers.config import AllowedHostPath, Settings
from edgeworkers.k8s.pod import Pod
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.runtime.types import ContainerConfig, ContainerID, PodRef
from edgeworkers.volumes.builders import NoSources
from edgeworkers.volumes.downward import PodFacts
from edgeworkers.volumes.errors import VolumeError
from edgeworkers.volumes.hostpath import HostPathPolicy
from edgeworkers.volumes.manager import VolumeManager
from edgeworkers.volumes.mounter import HostMounter
from tests.integration.volumes.test_volumes_docker import box, output, pod, sync_until_running
from tests.polling import wait_for


class Host:
    """Host directories: ``rw`` allowed writable, ``ro`` allowed read-only, ``outside`` allowed neither (it holds
    what must never be seen, ``secret``); ``rw/data`` holds ``marker`` = inside."""

    def __init__(self, root: Path) -> None:
        self.rw, self.ro, self.outside = root / "rw", root / "ro", root / "outside"
        self.data = self.rw / "data"
        for directory in (self.data, self.ro, self.outside):
            directory.mkdir(parents=True)
        (self.data / "marker").write_text("inside\n")
        (self.ro / "app.log").write_text("log line\n")
        (self.outside / "secret").write_text("secret\n")

    def swap(self) -> None:
        """What a pod with the allowed directory mounted can do: its hostPath turned into a symlink leading out."""
        self.data.rename(self.rw / "data.orig")
        self.data.symlink_to(self.outside)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "host")


def node_settings(settings: Settings, host: Host) -> Settings:
    return settings.model_copy(update={"default_grace_period_s": 1, "admission_allowed_host_paths": [
        AllowedHostPath(pathPrefix=str(host.rw)), AllowedHostPath(pathPrefix=str(host.ro), readOnly=True)]})


@pytest.fixture
def runtime(node_name: str, settings: Settings) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(node_name, docker_host=settings.docker_host, sandbox_image=settings.sandbox_image)
    yield runtime
    runtime.close()


def make_syncer(runtime: DockerRuntime, settings: Settings, host: Host,
                mounter: HostMounter | None = None) -> PodSyncer:
    config = node_settings(settings, host)
    manager = VolumeManager(config.data_dir, NoSources(), mounter or HostMounter(),
                            host_paths=HostPathPolicy.from_settings(config))
    return PodSyncer(runtime, MemoryBackoffStore(), config, volumes=manager)


def host_pod(name: str, path: Path, script: str, mount: dict[str, Any] | None = None, **container: Any) -> Pod:
    return pod(name, [box("app", script, volumeMounts=[{"name": "h", "mountPath": "/h", **(mount or {})}],
                          **container)], volumes=[{"name": "h", "hostPath": {"path": str(path)}}])


def app_status(status: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in status.get("containerStatuses") or [] if s["name"] == "app")


def test_host_paths_are_mounted_as_the_allowlist_says(runtime: DockerRuntime, settings: Settings, host: Host,
                                                      docker_client: docker.DockerClient) -> None:
    syncer = make_syncer(runtime, settings, host)
    writer = host_pod("writer", host.data, "cat /h/marker; echo from-pod > /h/out; echo END; sleep 3600")
    sync_until_running(syncer, writer)
    assert "inside\n" in output(runtime, "app")
    wait_for(lambda: (host.data / "out").exists(), 15, "the pod's file on the host")
    # Docker mounts the bind the node made from its descriptor, never the pod's path.
    app = next(c for c in runtime.list_containers(writer.key) if c.name == "app")
    mounts = docker_client.containers.get(app.id.id).attrs["Mounts"]
    sources = [m["Source"] for m in mounts if m["Destination"] == "/h"]
    assert sources == [str(settings.data_dir / "pods" / "uid-writer" / "volume-subpaths" / "h" / "app" / "0")]

    reader = host_pod("reader", host.ro, "cat /h/app.log; touch /h/new || echo REFUSED; echo END; sleep 3600",
                      {"readOnly": True})
    sync_until_running(syncer, reader)
    seen = wait_for(lambda: (lambda t: t if "END" in t else None)(b"".join(runtime.logs(next(
        c for c in runtime.list_containers(reader.key) if c.name == "app").id)).decode()), 15, "reader's output")
    assert "log line\n" in seen and "Read-only file system" in seen and "REFUSED" in seen
    assert not (host.ro / "new").exists()

    for name, path, mount, wanted in (
        ("writable", host.ro, None, f'container "app" mounts hostPath "{host.ro}" of volume "h" writable: '
                                    "EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS allows it read-only only"),
        ("outside", host.outside, None, f'hostPath "{host.outside}" of volume "h" is not allowed: it is not under a '
                                        "pathPrefix of EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS"),
        ("through", host.rw / ".." / "outside", {"readOnly": True}, "is not allowed: it is not under a pathPrefix"),
    ):  # fmt: skip
        refused = host_pod(name, path, "sleep 3600", mount)
        status = syncer.sync(refused.key, refused).status
        assert (status["phase"], status["reason"]) == ("Failed", "Forbidden"), status
        assert wanted in status["message"]
        assert runtime.list_containers(refused.key) == []


class SlowPull(DockerRuntime):
    """A pull that takes long enough for a pod to swap its hostPath for a symlink meanwhile (simulated: the local
    image is there, the swap happens where the pull would wait)."""

    def __init__(self, *args: Any, swap: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.swap = swap
        self.pulls = 0

    def pull_image(self, image: str, auth: Any = None) -> None:
        self.pulls += 1
        if self.pulls == 1:
            self.swap()


def test_a_symlink_swapped_in_during_a_pull_does_not_escape(node_name: str, settings: Settings, host: Host) -> None:
    runtime = SlowPull(node_name, docker_host=settings.docker_host, sandbox_image=settings.sandbox_image,
                       swap=host.swap)
    try:
        syncer = make_syncer(runtime, settings, host)
        victim = host_pod("victim", host.data, "cat /h/marker; echo END; sleep 3600", imagePullPolicy="Always")
        status = syncer.sync(victim.key, victim).status  # admitted (the path was allowed), then the pull, the swap
        assert runtime.pulls == 1
        waiting = app_status(status)["state"]["waiting"]
        assert waiting["reason"] == "CreateContainerConfigError"
        assert f'volume "h": hostPath {host.data} (it leads to {host.outside}) is not allowed: it is not under a ' \
               "pathPrefix of EDGEWORKERS_ADMISSION_ALLOWED_HOST_PATHS" in waiting["message"]
        assert [c.name for c in runtime.list_containers(victim.key)] == ["POD"]  # no app container was created
        status = syncer.sync(victim.key, victim).status  # admission sees it now: the pod is refused
        assert (status["phase"], status["reason"]) == ("Failed", "Forbidden")
        assert sorted(p.name for p in host.outside.iterdir()) == ["secret"]
    finally:
        runtime.close()


class SwapBeforeCreate(DockerRuntime):
    """The symlink swapped in after the node bound the hostPath, just before Docker creates the container."""

    def __init__(self, *args: Any, swap: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.swap = swap

    def create_container(self, sandbox: ContainerID, pod: PodRef, config: ContainerConfig) -> ContainerID:
        if config.name == "app" and self.swap is not None:
            self.swap()
            self.swap = None
        return super().create_container(sandbox, pod, config)


def test_a_symlink_swapped_in_after_the_bind_is_not_what_docker_mounts(node_name: str, settings: Settings,
                                                                        host: Host) -> None:
    runtime = SwapBeforeCreate(node_name, docker_host=settings.docker_host, sandbox_image=settings.sandbox_image,
                               swap=host.swap)
    try:
        syncer = make_syncer(runtime, settings, host)
        sync_until_running(syncer, host_pod("late", host.data, "cat /h/marker; echo END; sleep 3600"))
        seen = output(runtime, "app")
        assert "inside\n" in seen and "secret" not in seen
    finally:
        runtime.close()


class SwappingMounter(HostMounter):
    """Swaps the subPath for a symlink leading out between its open and its bind."""

    def __init__(self, swap: Callable[[], None]) -> None:
        super().__init__()
        self.swap = swap

    def bind_fd(self, fd: int, target: Path, *, recursive: bool = False, read_only: bool = False) -> None:
        if self.swap is not None:
            self.swap()
            self.swap = None
        super().bind_fd(fd, target, recursive=recursive, read_only=read_only)


def test_a_symlink_swapped_in_during_a_sub_path_bind_does_not_escape(runtime: DockerRuntime, settings: Settings,
                                                                     host: Host) -> None:
    syncer = make_syncer(runtime, settings, host, SwappingMounter(host.swap))
    p = pod("sub", [box("app", "cat /x/marker; echo END; sleep 3600",
                        volumeMounts=[{"name": "h", "mountPath": "/x", "subPath": "data"}])],
            volumes=[{"name": "h", "hostPath": {"path": str(host.rw)}}])
    sync_until_running(syncer, p)
    seen = output(runtime, "app")
    assert "inside\n" in seen and "secret" not in seen


def test_binds_never_show_outside_while_a_symlink_flips(settings: Settings, host: Host) -> None:
    """A container flipping the subPath between its directory and a symlink leading out, as fast as it can, while
    the node binds it again and again: each bind fails or shows the directory, never what lies outside."""
    config = node_settings(settings, host)
    manager = VolumeManager(config.data_dir, NoSources(), HostMounter(),
                            host_paths=HostPathPolicy.from_settings(config))
    volume = pod("flip", [box("app", "true")], volumes=[{"name": "h", "hostPath": {"path": str(host.rw)}}])
    ready = manager.setup(volume, PodFacts(host_ip="127.0.0.1"))["h"]
    stop = threading.Event()

    flips = []

    def flip() -> None:
        while not stop.is_set():
            host.data.rename(host.rw / "data.orig")
            try:
                host.data.symlink_to(host.outside)
                host.data.unlink()
            except FileExistsError:  # a bind made the missing subPath meanwhile (an empty directory)
                pass
            (host.rw / "data.orig").rename(host.data)  # over that empty directory, if any
            flips.append(1)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    seen, refused = [], 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                target = manager.bind(volume, "app", 0, "h", ready, "data")
            except VolumeError:  # UnsafePath among them: the symlink met on the way
                refused += 1
                continue
            seen.append(tuple(sorted(os.listdir(target))))  # the directory, or an empty one made while it was away
            HostMounter().unmount(target)
    finally:
        stop.set()
        flipper.join(10)
        manager.teardown(volume.metadata.uid or "")
    assert len(flips) > 100
    assert ("marker",) in seen and set(seen) <= {("marker",), ()}, (len(seen), refused, set(seen))
