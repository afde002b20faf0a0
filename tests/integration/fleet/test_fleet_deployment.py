"""A Deployment on three real edge nodes with the real kubectl: six replicas spread over the nodes, a new image rolled
out with `kubectl set image` (RollingUpdate, maxUnavailable 1, maxSurge 1) while the Ready pods never fall below five
nor the pods rise above seven, every replica then running the new image in its node's Docker and the old ReplicaSet
at 0; `kubectl delete deployment` takes the pods off the nodes."""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgeworkers.runtime import labels
from tests.integration.fleet.conftest import Fleet
from tests.integration.loop.conftest import POD_TIMEOUT_S, running_at_cloud
from tests.polling import wait_for

NAME = "web"
REPLICAS, MAX_UNAVAILABLE, MAX_SURGE = 6, 1, 1
OLD_IMAGE, NEW_IMAGE = "busybox:1.36", "busybox:1.28"  # both imported locally by ops/images


def deployment() -> dict[str, Any]:
    """Busybox replicas whose readiness probe passes once the container has started (so Ready means it runs)."""
    container = {"name": "app", "image": OLD_IMAGE, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", "touch /tmp/ready; sleep 3600"],
                 "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, "namespace": "default"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": NAME}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxUnavailable": MAX_UNAVAILABLE, "maxSurge": MAX_SURGE}},
                     "template": {"metadata": {"labels": {"app": NAME}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}


def live_pods(fleet: Fleet) -> list[dict[str, Any]]:
    """The Deployment's pods at the cloud that are not being deleted."""
    listed = fleet.cloud.api.get("/api/v1/namespaces/default/pods", {"labelSelector": f"app={NAME}"})
    return [p for p in listed.get("items") or [] if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def image_of(pod: dict[str, Any]) -> str:
    return pod["spec"]["containers"][0]["image"]


def docker_images(fleet: Fleet) -> dict[str, tuple[str, str]]:
    """Pod name -> (node, image) of the running app containers of the Deployment's pods, from Docker's labels."""
    found = {}
    for node in fleet.names:
        filters = {"label": [f"{labels.NODE}={node}", f"{labels.CONTAINER_TYPE}={labels.TYPE_APP}"],
                   "status": "running"}
        for entry in fleet.docker.api.containers(filters=filters):
            pod = entry["Labels"][labels.POD_NAME]
            if pod.startswith(f"{NAME}-"):
                found[pod] = (node, entry["Image"])
    return found


def replica_sets(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """The Deployment's ReplicaSets as kubectl shows them, by their pod template's image."""
    items = json.loads(fleet.kubectl("get", "rs", "-l", f"app={NAME}", "-o", "json").stdout)["items"]
    return {image_of(rs["spec"]["template"]): rs for rs in items}


def all_running(fleet: Fleet, image: str) -> dict[str, dict[str, Any]] | None:
    """The replicas by name once exactly ``REPLICAS`` run ``image`` at the cloud and in their nodes' Docker."""
    pods = live_pods(fleet)
    if len(pods) != REPLICAS or not all(running_at_cloud(p) and image_of(p) == image for p in pods):
        return None
    by_name = {p["metadata"]["name"]: p for p in pods}
    in_docker = docker_images(fleet)
    expected = {name: (p["spec"]["nodeName"], image) for name, p in by_name.items()}
    return by_name if in_docker == expected else None


def test_a_rolling_update_over_three_nodes_keeps_the_minimum_ready_and_delete_clears_the_nodes(fleet: Fleet) -> None:
    fleet.apply(deployment())
    first = wait_for(lambda: all_running(fleet, OLD_IMAGE), POD_TIMEOUT_S, f"{REPLICAS} replicas running")
    assert Counter(p["spec"]["nodeName"] for p in first.values()) == dict.fromkeys(fleet.names, 2)  # spread evenly
    fleet.kubectl("rollout", "status", f"deployment/{NAME}", "--timeout=30s")

    seen: list[tuple[int, int]] = []  # (Ready, all) of the Deployment's live pods, poll after poll
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            pods = live_pods(fleet)
            seen.append((sum(is_ready(p) for p in pods), len(pods)))
            time.sleep(0.1)

    with ThreadPoolExecutor(1) as pool:
        watching = pool.submit(watch)  # from before the new image to the end of the rollout
        try:
            fleet.kubectl("set", "image", f"deployment/{NAME}", f"app={NEW_IMAGE}")
            rolled = fleet.kubectl("rollout", "status", f"deployment/{NAME}", "--timeout=120s", timeout_s=150).stdout
        finally:
            done.set()
        watching.result()
    assert f'deployment "{NAME}" successfully rolled out' in rolled
    assert len(seen) > 10, seen  # the rollout was watched, not missed
    assert min(ready for ready, _ in seen) >= REPLICAS - MAX_UNAVAILABLE, seen
    assert max(count for _, count in seen) <= REPLICAS + MAX_SURGE, seen

    after = wait_for(lambda: all_running(fleet, NEW_IMAGE), POD_TIMEOUT_S, f"{REPLICAS} replicas of {NEW_IMAGE}")
    assert not set(after) & set(first)  # every replica replaced
    assert set(p["spec"]["nodeName"] for p in after.values()) == set(fleet.names)
    sets = replica_sets(fleet)
    old, new = sets[OLD_IMAGE], sets[NEW_IMAGE]
    assert (old["spec"]["replicas"], old["status"].get("replicas", 0)) == (0, 0)
    assert (new["spec"]["replicas"], new["status"]["readyReplicas"]) == (REPLICAS, REPLICAS)
    status = fleet.cloud.api.get(f"/apis/apps/v1/namespaces/default/deployments/{NAME}")["status"]
    assert (status["updatedReplicas"], status["availableReplicas"]) == (REPLICAS, REPLICAS)

    fleet.kubectl("delete", "deployment", NAME, "--wait=false")

    wait_for(lambda: not live_pods(fleet) and not docker_images(fleet)
             and not fleet.cloud.api.get("/api/v1/namespaces/default/pods", {"labelSelector": f"app={NAME}"})["items"],
             POD_TIMEOUT_S, "the Deployment's pods gone from the cloud and the nodes")
    assert not json.loads(fleet.kubectl("get", "rs", "-l", f"app={NAME}", "-o", "json").stdout)["items"]
