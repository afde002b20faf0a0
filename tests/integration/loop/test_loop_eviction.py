"""Node pressure and eviction on real Docker, Redis and kubectl: with a threshold the test machine is under
(``imagefs.available<100%``), the node reports DiskPressure and gets its taint, the eviction manager reclaims the dead
containers and unused images this test made, then evicts the BestEffort pod before the Guaranteed one, no new pod is
placed on the node, and all of it clears when the threshold is lifted.

The scheduler process runs with eviction off (its reclaim would see every image on the machine); the test runs the
eviction manager itself, its image reclaim scoped to the image the test made, its containers to the test's node.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pytest

from edgeworkers import wiring
from edgeworkers.eviction.manager import EvictionManager
from edgeworkers.eviction.policy import CONTAINERS, IMAGES, thresholds_from
from edgeworkers.eviction.signals import observe
from edgeworkers.gc.containers import ContainerGC, ContainerGCPolicy
from edgeworkers.gc.images import ImageGC, ImageGCPolicy
from edgeworkers.runtime import labels
from scheduler.nodejobs import desired_uids
from tests.integration.loop.conftest import Cluster, busybox_pod, hold_for
from tests.integration.scheduler.test_scheduler_gc import _tiny_rootfs
from tests.polling import wait_for

PRESSURE = {"EDGEWORKERS_EVICTION_HARD_IMAGEFS_AVAILABLE": "100%"}
DISK_TAINT = "node.kubernetes.io/disk-pressure"


@pytest.fixture
def node_overrides() -> dict[str, str]:
    return {"EDGEWORKERS_EVICTION_ENABLED": "false"}


@pytest.fixture
def test_image(node_name: str, docker_client: docker.DockerClient) -> Iterator[str]:
    """An unused image only this test made (and removes, if the test did not)."""
    repo = f"edgeworkers-test/{node_name}"
    docker_client.api.import_image_from_data(_tiny_rootfs(), repository=repo, tag="unused")
    yield f"{repo}:unused"
    try:
        docker_client.images.remove(f"{repo}:unused", force=True)
    except docker.errors.ImageNotFound:
        pass


def condition(node: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == kind)


def pressured(node: dict[str, Any]) -> dict[str, Any] | None:
    return node if condition(node, "DiskPressure")["status"] == "True" else None


def taint_keys(node: dict[str, Any]) -> list[str]:
    return [t["key"] for t in (node.get("spec") or {}).get("taints") or []]


def manager_for(cluster: Cluster, repo: str) -> EvictionManager:
    """The eviction manager as the scheduler builds it, under pressure, its image reclaim limited to ``repo``."""
    config = cluster.config.model_copy(update={"eviction_hard_imagefs_available": "100%"})
    services = wiring.build(config)
    workers, runtime = wiring.pod_workers(services, follow_ups=False), services.runtime
    images = ImageGC(runtime, services.redis, lambda: (0, 0), ImageGCPolicy(min_age_s=0), config.sandbox_image,
                     candidates=lambda image: any(t.startswith(repo) for t in image.tags))
    reclaim = {CONTAINERS: ContainerGC(runtime, lambda: desired_uids(services.store), ContainerGCPolicy(0, 0, -1)).collect,
               IMAGES: images.delete_unused}
    return EvictionManager(workers, runtime, thresholds_from(config), lambda: observe(config.data_dir, runtime.data_root),
                           reclaim, services.events)


def evicted(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def test_disk_pressure_reclaims_then_evicts_best_effort_first_and_keeps_new_pods_away(
    own_cluster: Cluster, test_image: str, docker_client: docker.DockerClient
) -> None:
    cluster = own_cluster
    guaranteed = busybox_pod("guaranteed")
    guaranteed["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "100m", "memory": "32Mi"}}
    cluster.apply(busybox_pod("besteffort"), guaranteed, busybox_pod("finished", "true", restartPolicy="Never"))
    cluster.wait_running("besteffort", "guaranteed")
    cluster.wait_pod("finished", lambda p: p["status"].get("phase") == "Succeeded", 60, "finished Succeeded")
    dead = [c for c in cluster.containers("finished") if c.labels.get(labels.CONTAINER_TYPE) == labels.TYPE_APP]
    assert dead and all(c.status == "exited" for c in dead)

    # Under pressure: the condition, kube's reason and message, and the taint.
    cluster.extra_env.update(PRESSURE)
    cluster.restart_bridge()
    node = wait_for(lambda: pressured(cluster.node_object()), 30, "DiskPressure=True at the cloud")
    disk = condition(node, "DiskPressure")
    assert (disk["reason"], disk["message"]) == ("KubeletHasDiskPressure", "kubelet has disk pressure")
    assert condition(node, "Ready")["status"] == "True"
    wait_for(lambda: DISK_TAINT in taint_keys(cluster.node_object()), 30, "the disk-pressure taint")

    # Reclaim first (the dead container, the unused image), then the BestEffort pod, not the Guaranteed one.
    manager = manager_for(cluster, test_image.split(":")[0])
    assert manager.synchronize() == ["default/besteffort"]
    assert not [c for c in cluster.containers("finished") if c.labels.get(labels.CONTAINER_TYPE) == labels.TYPE_APP]
    assert not docker_client.images.list(name=test_image.split(":")[0])
    pod = cluster.wait_pod("besteffort", evicted, 30, "besteffort Failed/Evicted at the cloud")
    assert pod["status"]["message"].startswith(
        "The node was low on resource: ephemeral-storage. Threshold quantity: ")
    assert "besteffort" not in cluster.running_pods() and "guaranteed" in cluster.running_pods()
    assert cluster.cloud_pod("guaranteed")["status"]["phase"] == "Running"
    described = cluster.kubectl("describe", "pod", "besteffort").stdout
    assert "Evicted" in described and "The node was low on resource: ephemeral-storage" in described
    wait_for(lambda: "Evicted" in cluster.kubectl("get", "events", "--field-selector",
                                                  "involvedObject.name=besteffort").stdout, 30, "the Evicted event")
    hold_for(lambda: "besteffort" not in cluster.running_pods(), 3, "besteffort stopped")  # its sync keeps it so

    # No new pod on a node under pressure.
    cluster.apply(busybox_pod("newcomer"))
    pending = cluster.wait_pod(
        "newcomer", lambda p: any(c.get("reason") == "Unschedulable" for c in p["status"].get("conditions") or []),
        30, "newcomer Unschedulable")
    assert "untolerated taint {node.kubernetes.io/disk-pressure: }" in next(
        c["message"] for c in pending["status"]["conditions"] if c["type"] == "PodScheduled")
    assert not pending["spec"].get("nodeName")

    assert manager.synchronize() == ["default/guaranteed"]  # still under pressure: the next in rank order
    cluster.wait_pod("guaranteed", evicted, 30, "guaranteed Failed/Evicted at the cloud")

    # The threshold lifted: the condition and the taint clear, and the waiting pod is placed and runs.
    for variable in PRESSURE:
        cluster.extra_env.pop(variable)
    cluster.restart_bridge()
    wait_for(lambda: condition(cluster.node_object(), "DiskPressure")["status"] == "False", 30, "DiskPressure=False")
    wait_for(lambda: DISK_TAINT not in taint_keys(cluster.node_object()), 30, "the taint lifted")
    cluster.wait_running("newcomer")
