"""The queues under stress: many concurrent operations, and a worker SIGKILLed half-way through an add."""
from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from queuekit import (
    busybox_pod,
    node_containers,
    queues_drained,
    running_names,
    wait_for,
)

from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.status import APIError
from edgeworkers.metamanager.store import POD
from edgeworkers.pods import desired
from edgeworkers.pods.convert import container_hash
from edgeworkers.runtime import labels
from tests.integration.statuses import pod_status


def docker_matches_desired(docker_client, node_name, store) -> bool:
    """Docker holds exactly the desired pods: their sandbox and app containers running, current uid and spec hash;
    beside them at most the one dead instance per app container that kubelet keeps (MaxPerPodContainer=1), the
    instance an update of the pod's spec replaced."""
    want = {}
    for obj in store.list(POD):
        pod = Pod.from_dict(obj)
        want[pod.metadata.name] = (pod.metadata.uid, {c.name: container_hash(c) for c in pod.spec.containers})
    have: dict[str, list] = {}
    for container in node_containers(docker_client, node_name):
        have.setdefault(container.labels[labels.POD_NAME], []).append(container)
    if set(have) != set(want):
        return False
    for name, containers in have.items():
        uid, hashes = want[name]
        if any(c.labels[labels.POD_UID] != uid for c in containers):
            return False
        running = [c for c in containers if c.status == "running"]
        apps = {c.labels[labels.CONTAINER_NAME]: c.labels[labels.SPEC_HASH] for c in running if c.labels[labels.CONTAINER_TYPE] == labels.TYPE_APP}
        sandboxes = [c for c in running if c.labels[labels.CONTAINER_TYPE] == labels.TYPE_SANDBOX]
        if apps != hashes or len(sandboxes) != 1 or len(running) != len(hashes) + 1:
            return False
        dead = Counter(c.labels[labels.CONTAINER_NAME] for c in containers if c.status != "running" and c.labels[labels.CONTAINER_TYPE] == labels.TYPE_APP)
        if len(containers) != len(running) + sum(dead.values()) or any(n > 1 for n in dead.values()):
            return False  # a dead sandbox, or more than one dead instance of an app container
    return True


def test_200_random_operations_over_20_pods_end_with_exactly_the_desired_containers(
    start_worker, store, send, real_redis, docker_client, node_name
):
    rng = random.Random(20)
    operations = [(rng.choice(["apply", "apply", "delete"]), f"p{rng.randrange(20)}", rng.randrange(3)) for _ in range(200)]

    def run(operation: tuple[str, str, int]) -> None:
        """One CLI-style write; two concurrent writes of one pod may meet: then one is refused (409), never both
        applied over the same version."""
        kind, name, variant = operation
        try:
            if kind == "apply":
                pod = busybox_pod(name, f"sleep {3600 + variant}")
                pod["metadata"]["labels"] = {"variant": str(variant)}
                desired.apply_pod(store, send, pod)
            else:
                desired.delete_pod(store, send, f"default/{name}")
        except APIError as error:
            assert error.code == 409 or (kind == "delete" and error.code == 404)

    start_worker(processes=2, threads=4)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(run, operations))

    assert store.keys(POD), "the random walk should leave some pods desired"
    wait_for(lambda: queues_drained(real_redis), 240, "every task processed", interval_s=0.5)
    wait_for(lambda: docker_matches_desired(docker_client, node_name, store), 60, "Docker to match the desired state")


def add_in_progress(client) -> bool:
    """A worker holds an unacknowledged pod_add task (Dramatiq's ack set of the worker)."""
    return any(client.scard(key) for key in client.scan_iter("dramatiq:__acks__.*.pod_add"))


def test_a_worker_killed_mid_add_leaves_the_pod_running_once(start_worker, store, send, real_redis, docker_client, node_name):
    first = start_worker(threads=2, module="slow_actors", env={"SLOW_CREATE_S": "5"})
    desired.apply_pod(store, send, busybox_pod("phoenix"))

    # The sandbox is up, the app container is being created (slowly): kill the worker there.
    wait_for(lambda: running_names(node_containers(docker_client, node_name, "phoenix")) == {"POD"}, 60, "the sandbox")
    assert add_in_progress(real_redis)
    first.kill()
    assert [c.labels[labels.CONTAINER_NAME] for c in node_containers(docker_client, node_name, "phoenix")] == ["POD"]

    start_worker(threads=2)  # the redelivered add finishes once the dead worker's heartbeat and lease run out
    wait_for(lambda: "app" in running_names(node_containers(docker_client, node_name, "phoenix")), 90, "the app container")
    status = wait_for(
        lambda: (s := pod_status(store, "default/phoenix")) and s.get("phase") == "Running" and s, 30, "status Running"
    )
    containers = node_containers(docker_client, node_name, "phoenix")
    assert sorted(c.labels[labels.CONTAINER_NAME] for c in containers) == ["POD", "app"]
    assert running_names(containers) == {"POD", "app"}
    assert {c.labels[labels.POD_UID] for c in containers} == {store.get(POD, "default", "phoenix")["metadata"]["uid"]}
    assert status["containerStatuses"][0]["restartCount"] == 0
    wait_for(lambda: queues_drained(real_redis), 30, "the add acknowledged")
