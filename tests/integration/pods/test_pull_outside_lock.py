"""A pull that hangs on a poor link holds no pod lock: a registry on 127.0.0.1 that accepts dockerd's connections
and never answers keeps a pod task pulling, while another task takes that pod's lock at once, and another pod of
that image is synced at once (ContainerCreating) instead of waiting for the pull on the image's lock; once the
registry goes, the pull fails, the pod reads ErrImagePull with kubelet's events, and the waiting pod, woken, reads
ImagePullBackOff."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from edgeworkers.config import Settings
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.backoff import RedisBackoffStore
from edgeworkers.pods.lock import pod_lock
from edgeworkers.pods.reconcile import PodWorkers, reconcile
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.docker import DockerRuntime
from edgeworkers.status.manager import StatusManager
from tests.polling import wait_for


class SilentRegistry:
    """Accepts connections on 127.0.0.1 and answers nothing until ``close``."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()
        self.thread.join(5)


@pytest.fixture
def registry() -> Iterator[SilentRegistry]:
    registry = SilentRegistry()
    yield registry
    registry.close()


@pytest.fixture
def woken() -> list[str]:
    return []


@pytest.fixture
def workers(
    real_settings: Settings, real_redis: redis.Redis, node_name: str, woken: list[str]
) -> Iterator[tuple[PodWorkers, list]]:
    events: list[tuple[str, str]] = []
    runtime = DockerRuntime(node_name)
    syncer = PodSyncer(
        runtime, RedisBackoffStore(real_redis), real_settings, image_locks=real_redis,
        events=lambda pod, reason, message, kind: reason == "MissingClusterDNS"  # every pod's: no cluster DNS here
        or events.append((reason, message)),
        wake=woken.append,
    )  # fmt: skip
    store = MetaStore(real_redis)
    yield PodWorkers(real_redis, store, StatusManager(store, Outbox(real_redis)), syncer, None, real_settings), events
    runtime.close()


def pod(name: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {"containers": [{"name": "app", "image": image}]}}  # fmt: skip


def waiting(workers: PodWorkers, name: str) -> dict:
    return workers.status.get(f"default/{name}")["containerStatuses"][0]["state"]["waiting"]


def start_hanging_pull(workers: PodWorkers, registry: SilentRegistry) -> tuple[str, threading.Thread]:
    """Pod "slow" of an image of ``registry``, reconciled in a thread until dockerd is connected and waits; its image
    and the thread."""
    image = f"127.0.0.1:{registry.port}/edgeworkers-test/app:1"
    workers.store.put(POD, pod("slow", image))
    task = threading.Thread(target=reconcile, args=(workers, "default/slow"), daemon=True)
    task.start()
    wait_for(lambda: registry.accepted, 20, "dockerd connecting to the registry")
    return image, task


def test_a_hanging_pull_leaves_the_pod_lock_free(workers, registry) -> None:
    workers, events = workers
    image, task = start_hanging_pull(workers, registry)

    with pod_lock(workers.redis, "default/slow"):  # another task of the pod: not kept waiting by the pull
        assert task.is_alive()
    registry.close()  # the link drops: the pull fails
    task.join(60)
    assert not task.is_alive()
    assert waiting(workers, "slow")["reason"] == "ErrImagePull"
    assert [reason for reason, _ in events] == ["Pulling", "Failed"]
    assert events[0][1] == f'Pulling image "{image}"'


def test_another_pod_of_a_hanging_pulls_image_is_synced_at_once_and_woken_when_it_ends(workers, registry, woken) -> None:
    workers, events = workers
    image, task = start_hanging_pull(workers, registry)

    workers.store.put(POD, pod("second", image))
    started = time.monotonic()
    assert reconcile(workers, "default/second") == workers.settings.backoff_initial_s  # looks again later
    assert time.monotonic() - started < 5 and task.is_alive()  # not parked behind the pull
    assert waiting(workers, "second") == {"reason": "ContainerCreating"} and woken == []

    registry.close()
    task.join(60)
    assert not task.is_alive() and woken == ["default/second"]
    reconcile(workers, "default/second")
    assert waiting(workers, "second")["reason"] == "ImagePullBackOff"
    assert [reason for reason, _ in events] == ["Pulling", "Failed", "BackOff"]
