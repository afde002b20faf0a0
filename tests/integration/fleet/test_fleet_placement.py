"""Three real nodes against one cloud, driven by the real kubectl: pods go where their nodeName or nodeSelector says
and run there (their containers labelled with that node); a pod that fits no node stays Pending with kube-scheduler's
``FailedScheduling`` event; a node that joins later gets pods; one node's orphan cleanup and container GC never touch
another's containers."""
from __future__ import annotations

import json
import uuid

import docker
import pytest

from edgeworkers.runtime import labels
from edgeworkers.runtime.types import PodRef
from tests.integration.fleet.conftest import Fleet
from tests.integration.loop.conftest import busybox_pod, hold_for
from tests.polling import wait_for


@pytest.fixture
def fleet_node_env() -> dict[str, str]:
    # The isolation test watches them run.
    return {"EDGEWORKERS_ORPHAN_CLEANUP_PERIOD_S": "1", "EDGEWORKERS_CONTAINER_GC_PERIOD_S": "1"}


def events_of(fleet: Fleet, pod: str) -> list[dict]:
    out = fleet.kubectl("get", "events", "--field-selector", f"involvedObject.name={pod}", "-o", "json").stdout
    return json.loads(out)["items"]


def test_a_pod_whose_node_selector_matches_no_node_stays_pending_with_failed_scheduling(fleet: Fleet) -> None:
    fleet.apply(busybox_pod("nowhere", nodeSelector={"kubernetes.io/hostname": "no-such-node"}))

    def failed_scheduling() -> list[dict]:
        return [e for e in events_of(fleet, "nowhere") if e.get("reason") == "FailedScheduling"]

    event = wait_for(failed_scheduling, 20, "a FailedScheduling event")[0]
    assert event["type"] == "Warning"
    assert event["source"]["component"] == "default-scheduler"
    assert "3 node(s) didn't match Pod's node affinity/selector" in event["message"], event["message"]
    pod = fleet.pod("nowhere")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert all(not running for running in fleet.running_pods().values())
    fleet.kubectl("delete", "pod", "nowhere", "--wait=false")


def test_node_name_and_node_selector_put_each_pod_on_its_node(fleet: Fleet) -> None:
    one, two, three = fleet.nodes
    fleet.kubectl("label", "node", three.node, "site=roof")
    fleet.apply(
        busybox_pod("by-name", node=two.node),
        busybox_pod("by-hostname", nodeSelector={"kubernetes.io/hostname": one.node}),
        busybox_pod("by-label", nodeSelector={"site": "roof"}),
    )

    fleet.wait_running("by-name", "by-hostname", "by-label")

    assert fleet.placement() == {
        "by-name": two.node, "by-hostname": one.node, "by-label": three.node}
    assert fleet.running_pods() == {one.node: {"by-hostname"}, two.node: {"by-name"}, three.node: {"by-label"}}
    wide = fleet.kubectl("get", "pods", "-o", "wide").stdout
    line = next(row for row in wide.splitlines() if row.startswith("by-label "))
    assert three.node in line.split()


def test_a_node_that_joins_later_gets_the_pods_that_wait_for_it(fleet: Fleet) -> None:
    fleet.apply(busybox_pod("late", nodeSelector={"kubernetes.io/hostname": f"{fleet.prefix}-4"}))
    wait_for(lambda: any(e.get("reason") == "FailedScheduling" for e in events_of(fleet, "late")), 20,
             "a FailedScheduling event before the node joins")

    four = fleet.add()

    assert four.node == f"{fleet.prefix}-4"
    fleet.wait_running("late")
    assert fleet.placement()["late"] == four.node
    assert fleet.running_pods()[four.node] == {"late"}
    # Unbound pods now spread to the newcomer too: the binder picks the node running the fewest pods.
    fleet.apply(*(busybox_pod(f"spread-{i}") for i in range(4)))
    fleet.wait_running(*(f"spread-{i}" for i in range(4)))
    assert set(fleet.placement().values()) == set(fleet.names)


def stray_container(docker_client: docker.DockerClient, node: str, pod: str, restart_count: int = 0,
                    uid: str | None = None, running: bool = True) -> str:
    """A busybox labelled as the app container of a pod ``pod`` on ``node`` that no cloud knows: running (it ends at
    SIGTERM), or exited (a dead container, the container GC's business)."""
    ref = PodRef(uid or str(uuid.uuid4()), "default", pod)
    command = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"] if running else ["true"]
    container = docker_client.containers.run(
        "busybox", command, detach=True, labels=labels.for_container(node, ref, "app", labels.TYPE_APP, restart_count),
    )
    if not running:
        container.wait(timeout=30)
    return container.id


def test_a_nodes_cleanup_removes_its_own_strays_and_never_another_nodes_containers(fleet: Fleet) -> None:
    one, two, _ = fleet.nodes
    fleet.apply(busybox_pod("kept", node=one.node))
    fleet.wait_running("kept")
    kept = one.running_ids("kept")
    unowned = f"{fleet.prefix}-none"  # a node no agent runs: nobody's to clean
    try:
        theirs = stray_container(fleet.docker, unowned, "stray")
        # Two dead attempts of one container: a GC that took them for its node's would keep only the newest.
        uid = str(uuid.uuid4())
        dead = {stray_container(fleet.docker, unowned, "dead", count, uid, running=False) for count in (0, 1)}
        ours = stray_container(fleet.docker, two.node, "stray")

        # Node two's orphan cleanup (every second here) removes the stray labelled with it ...
        wait_for(lambda: not two.containers("stray"), 60, "node two to remove its orphan")
        # ... while node one's pod and the unowned containers are left alone, cleanup after cleanup.
        def untouched() -> bool:
            listed = fleet.docker.containers.list(all=True, filters={"label": f"{labels.NODE}={unowned}"})
            return one.running_ids("kept") == kept and {c.id for c in listed} == dead | {theirs}

        hold_for(untouched, 5, "node one's pod and the unowned containers untouched")
        assert ours not in {c.id for c in fleet.docker.containers.list(all=True)}
    finally:
        for container in fleet.docker.containers.list(all=True, filters={"label": f"{labels.NODE}={unowned}"}):
            container.remove(force=True)
