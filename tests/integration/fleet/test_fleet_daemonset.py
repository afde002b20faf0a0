"""DaemonSets on several real edge nodes with the real kubectl: one pod per node, and on a node that joins later; a
node stopped turns Unknown and its daemon pod is neither evicted nor duplicated, and runs on untouched."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.fleet.conftest import Fleet
from tests.integration.loop.conftest import POD_TIMEOUT_S, hold_for, running_at_cloud
from tests.polling import wait_for

NAME = "agent"


@pytest.fixture
def daemonset(fleet: Fleet) -> Iterator[dict[str, Any]]:
    """The DaemonSet, applied; deleted after the test (before the fleet's nodes leave: the cloud is the module's)."""
    container = {"name": NAME, "image": "busybox:1.28", "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", "sleep 3600"]}
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": NAME, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": NAME}},
                     "template": {"metadata": {"labels": {"app": NAME}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}
    fleet.apply(body)
    yield body
    fleet.kubectl("delete", "ds", NAME, "--wait=false", "--ignore-not-found")


def daemon_pods(fleet: Fleet) -> list[dict[str, Any]]:
    listed = fleet.cloud.api.get("/api/v1/namespaces/default/pods", {"labelSelector": f"app={NAME}"})
    return listed.get("items") or []


def one_running_per_node(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Wait until every node of the fleet has exactly one daemon pod, Running at the cloud and in its Docker."""
    def check() -> dict[str, dict[str, Any]] | None:
        pods = daemon_pods(fleet)
        by_node = {p["spec"].get("nodeName"): p for p in pods}
        if len(pods) != len(fleet.nodes) or set(by_node) != set(fleet.names):
            return None
        if not all(running_at_cloud(p) for p in pods):
            return None
        running = fleet.running_pods()
        return by_node if all(by_node[n]["metadata"]["name"] in running[n] for n in fleet.names) else None
    return wait_for(check, POD_TIMEOUT_S, f"one running {NAME} pod on each of {len(fleet.nodes)} nodes")


def ds_status(fleet: Fleet) -> dict[str, Any]:
    return fleet.cloud.api.get(f"/apis/apps/v1/namespaces/default/daemonsets/{NAME}").get("status") or {}


def test_one_pod_per_node_and_on_a_node_that_joins(fleet: Fleet, daemonset: dict[str, Any]) -> None:
    first = one_running_per_node(fleet)
    rolled = fleet.kubectl("rollout", "status", f"ds/{NAME}", "--timeout=60s", timeout_s=90).stdout
    assert f'daemon set "{NAME}" successfully rolled out' in rolled
    row = fleet.kubectl("get", "ds", NAME, "--no-headers").stdout.split()
    assert row[:7] == [NAME, "3", "3", "3", "3", "3", "<none>"]

    four = fleet.add()
    after = one_running_per_node(fleet)
    assert set(after) == {*first, four.node}
    assert all(after[n]["metadata"]["uid"] == first[n]["metadata"]["uid"] for n in first)  # the others untouched
    wait_for(lambda: ds_status(fleet).get("numberAvailable") == 4, 30, "the DaemonSet's status to count 4")


def test_a_stopped_node_turns_unknown_and_its_daemon_pod_is_neither_evicted_nor_duplicated(
        fleet: Fleet, daemonset: dict[str, Any]) -> None:
    before = one_running_per_node(fleet)
    two = fleet.nodes[1]
    on_two = before[two.node]
    containers = two.running_ids(on_two["metadata"]["name"])
    fleet.stop(two)
    fleet.wait_node_ready(two, "Unknown")

    def unchanged() -> bool:
        pods = daemon_pods(fleet)
        kept = [p for p in pods if p["metadata"]["uid"] == on_two["metadata"]["uid"]]
        return (len(pods) == 3 and Counter(p["spec"].get("nodeName") for p in pods) == Counter(fleet.names)
                and len(kept) == 1 and not kept[0]["metadata"].get("deletionTimestamp"))

    hold_for(unchanged, 15, "one daemon pod per node, the silent node's kept")
    status = ds_status(fleet)
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberMisscheduled"]) == \
        (2, 2, 1)
    assert two.running_ids(on_two["metadata"]["name"]) == containers  # it runs on, untouched, on the silent node

    fleet.start(two)
    fleet.wait_node_ready(two, "True")
    after = one_running_per_node(fleet)
    assert after[two.node]["metadata"]["uid"] == on_two["metadata"]["uid"]
    assert two.running_ids(on_two["metadata"]["name"]) == containers  # not restarted
    wait_for(lambda: ds_status(fleet).get("numberAvailable") == 3 and ds_status(fleet)["numberMisscheduled"] == 0,
             30, "the DaemonSet's status to count the node again")
