"""eviction.manager with a FakeRuntime, fakeredis, a real PodSyncer and signals the test sets: reclaim first, then one
pod per step in rank order, Failed/Evicted with an event; an evicted pod stays stopped; eviction off stops nothing."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgeworkers.config import Settings
from edgeworkers.events.recorder import EventRecorder
from edgeworkers.eviction.manager import EvictionManager
from edgeworkers.eviction.policy import (
    AGENTFS_AVAILABLE,
    CONTAINERS,
    IMAGEFS_AVAILABLE,
    IMAGES,
    MEMORY_AVAILABLE,
    Observation,
)
from edgeworkers.eviction.policy import parse_threshold as threshold
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.backoff import MemoryBackoffStore
from edgeworkers.pods.reconcile import PodWorkers, reconcile
from edgeworkers.pods.sync import PodSyncer
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerState, ContainerUsage
from edgeworkers.status.manager import StatusManager
from tests.unit.clock import Clock
from tests.unit.pods.podkit import T0

Gi = 1024**3
GUARANTEED = {"limits": {"cpu": "100m", "memory": "64Mi"}}


def raw_pod(name: str, resources: dict | None = None, priority: int | None = None) -> dict:
    app = {"name": "app", "image": "busybox", "command": ["sleep", "3600"], **({"resources": resources} if resources
                                                                               else {})}
    spec = {"containers": [app], "terminationGracePeriodSeconds": 1, **({"priority": priority} if priority else {})}
    return {"apiVersion": "v1", "kind": "Pod", "spec": spec,
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "1"}}


class Node:
    """The agent, its runtime and the signals, which the test sets."""

    def __init__(self, client, tmp_path: Path, enabled: bool = True) -> None:
        self.clock = Clock(T0)
        self.runtime = FakeRuntime(node_name="n1", clock=self.clock, images=["edgeworkers/pause:latest", "busybox"])
        settings = Settings(node_name="n1", data_dir=tmp_path)
        store = MetaStore(client)
        syncer = PodSyncer(self.runtime, MemoryBackoffStore(), settings, self.clock)
        self.agent = PodWorkers(client, store, StatusManager(store, Outbox(client)), syncer, None, settings)
        self.signals = {IMAGEFS_AVAILABLE: Observation(50 * Gi, 100 * Gi), MEMORY_AVAILABLE: Observation(4 * Gi, 8 * Gi)}
        self.reclaimed: list[str] = []
        self.free_on_reclaim: dict[str, Observation] = {}
        self.events = EventRecorder(client, "n1", self.clock)
        self.manager = EvictionManager(
            self.agent, self.runtime,
            [threshold(IMAGEFS_AVAILABLE, "15%"), threshold(MEMORY_AVAILABLE, "100Mi"), threshold(AGENTFS_AVAILABLE, "256Mi")],
            lambda: dict(self.signals), {CONTAINERS: lambda: self.reclaim(CONTAINERS), IMAGES: lambda: self.reclaim(IMAGES)},
            self.events, enabled=enabled, clock=self.clock,
        )

    def reclaim(self, kind: str) -> None:
        self.reclaimed.append(kind)
        self.signals.update(self.free_on_reclaim)

    def run(self, *pods: dict) -> None:
        for pod in pods:
            self.agent.store.put(POD, pod)
            reconcile(self.agent, f"default/{pod['metadata']['name']}")

    def status(self, name: str) -> dict:
        return self.agent.status.get(f"default/{name}") or {}

    def running(self, name: str) -> bool:
        return any(c.state == ContainerState.RUNNING and not c.is_sandbox
                   for c in self.runtime.list_containers(f"default/{name}"))

    def events_sent(self) -> list[tuple[str, str, str]]:
        return [(i.payload["event"]["reason"], i.payload["event"]["involvedObject"]["name"], i.payload["event"]["type"])
                for i in Outbox(self.agent.redis).peek() if i.payload.get("event")]


@pytest.fixture
def node(fake_redis, tmp_path) -> Node:
    return Node(fake_redis, tmp_path)


def test_no_pressure_no_reclaim_no_eviction(node):
    node.run(raw_pod("web"))
    assert node.manager.synchronize() == []
    assert node.reclaimed == [] and node.running("web")


def test_reclaim_that_clears_the_threshold_evicts_nothing(node):
    node.run(raw_pod("web"))
    node.signals[IMAGEFS_AVAILABLE] = Observation(10 * Gi, 100 * Gi)
    node.free_on_reclaim = {IMAGEFS_AVAILABLE: Observation(20 * Gi, 100 * Gi)}
    assert node.manager.synchronize() == []
    assert node.reclaimed == [CONTAINERS, IMAGES] and node.running("web")


def test_under_disk_pressure_best_effort_goes_before_guaranteed_one_pod_per_step(node):
    node.run(raw_pod("guaranteed", GUARANTEED), raw_pod("besteffort"))
    node.signals[IMAGEFS_AVAILABLE] = Observation(10 * Gi, 100 * Gi)
    assert node.manager.synchronize() == ["default/besteffort"]
    assert node.reclaimed == [CONTAINERS, IMAGES]
    assert not node.running("besteffort") and node.running("guaranteed")
    status = node.status("besteffort")
    message = "The node was low on resource: ephemeral-storage. Threshold quantity: 15Gi, available: 10Gi. "
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "Evicted", message)
    assert {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet", "message": message}.items() \
        <= next(c for c in status["conditions"] if c["type"] == "DisruptionTarget").items()
    assert "terminated" in status["containerStatuses"][0]["state"]
    assert ("Evicted", "besteffort", "Warning") in node.events_sent()

    assert node.manager.synchronize() == ["default/guaranteed"]  # still under pressure: the next one
    assert node.manager.synchronize() == []  # nobody left


def test_an_evicted_pod_is_never_started_again_by_its_sync(node):
    node.run(raw_pod("web"))
    node.signals[MEMORY_AVAILABLE] = Observation(10 * 1024**2, 8 * Gi)
    assert node.manager.synchronize() == ["default/web"]
    assert node.reclaimed == []  # memory: nothing to reclaim at node level
    evicted = node.status("web")
    node.clock.advance(60)
    reconcile(node.agent, "default/web")  # what the PLEG's sync of the dead container does
    assert not node.running("web") and node.status("web") == evicted


def test_memory_pressure_evicts_the_pod_most_above_its_request(node):
    node.run(raw_pod("small", {"requests": {"memory": "64Mi"}}), raw_pod("big", {"requests": {"memory": "64Mi"}}))
    for container in node.runtime.list_containers():
        if not container.is_sandbox:
            size = Gi if container.pod.name == "big" else 100 * 1024**2
            node.runtime.usages[container.id] = ContainerUsage(0, size)
    node.signals[MEMORY_AVAILABLE] = Observation(10 * 1024**2, 8 * Gi)
    assert node.manager.synchronize() == ["default/big"]


def test_critical_and_deleting_pods_are_not_evicted(node):
    node.run(raw_pod("critical", priority=2_000_001_000))
    node.signals[MEMORY_AVAILABLE] = Observation(1, 8 * Gi)
    assert node.manager.synchronize() == []
    assert node.running("critical")


def test_with_eviction_off_nothing_is_reclaimed_nor_stopped(fake_redis, tmp_path, caplog):
    node = Node(fake_redis, tmp_path, enabled=False)
    node.run(raw_pod("web"))
    node.signals[IMAGEFS_AVAILABLE] = Observation(1, 100 * Gi)
    assert node.manager.synchronize() == []
    assert node.reclaimed == [] and node.running("web")
    assert "eviction is off: no pod will be stopped" in caplog.text


def test_the_agents_reserve_is_reported_when_crossed_and_when_it_returns(node, caplog):
    caplog.set_level(logging.INFO)
    node.signals[AGENTFS_AVAILABLE] = Observation(100 * 1024**2, 100 * Gi)
    node.free_on_reclaim = {AGENTFS_AVAILABLE: Observation(300 * 1024**2, 100 * Gi)}
    assert node.manager.synchronize() == []  # reclaimed enough
    assert node.reclaimed == [CONTAINERS, IMAGES]
    node.signals[AGENTFS_AVAILABLE] = Observation(100 * 1024**2, 100 * Gi)
    node.manager.synchronize()  # still low: not reported twice
    node.signals[AGENTFS_AVAILABLE] = Observation(1 * Gi, 100 * Gi)
    node.manager.synchronize()
    assert [(reason, kind) for reason, name, kind in node.events_sent() if name == "n1"] == [
        ("AgentDataReserve", "Warning"), ("AgentDataReserveRecovered", "Normal")]
    assert "agentfs.available is 100Mi, under its threshold 256Mi" in caplog.text
    assert "agentfs.available is above its threshold again" in caplog.text
