"""The cloud's node lifecycle controller: a node whose bridge stops turns Ready=Unknown, and Ready when it returns;
its pods keep running on Docker all along (edge autonomy: no eviction)."""
from __future__ import annotations

from datetime import datetime

import pytest

from tests.integration.loop.conftest import LEASES, Cluster, busybox_pod, running_at_cloud
from tests.polling import wait_for

# Longer than the node's heartbeat (HEARTBEAT_S here), or a healthy node would turn Unknown between two heartbeats.
HEARTBEAT_S = 2
GRACE_S = 6
UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture
def cloud_overrides() -> dict[str, str]:
    return {"EDGEWORKERS_NODE_MONITOR_GRACE_PERIOD_S": str(GRACE_S), "EDGEWORKERS_NODE_MONITOR_PERIOD_S": "1"}


@pytest.fixture
def node_overrides() -> dict[str, str]:
    return {"EDGEWORKERS_NODE_STATUS_UPDATE_FREQUENCY_S": str(HEARTBEAT_S)}


def pod_ready(pod: dict | None) -> str | None:
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)


def taints(node: dict) -> set[str]:
    return {t["key"] for t in (node.get("spec") or {}).get("taints") or []}


def test_node_turns_unknown_without_its_bridge_and_ready_when_it_returns(own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.apply(busybox_pod("steady"))  # bound by the scheduler to the only (Ready) node
    pod = cluster.wait_running("steady")["steady"]
    assert pod["spec"]["nodeName"] == cluster.node
    ids = cluster.running_ids("steady")

    cluster.stop_bridge()

    def unknown_node() -> dict | None:
        node = cluster.node_object()
        return node if cluster.node_ready(node) == "Unknown" else None

    unknown = wait_for(unknown_node, GRACE_S + 20, "the node to turn Ready=Unknown")
    # Not before the grace period has passed since the node's last heartbeat (1 s: the controller's period).
    renewed = cluster.cloud.api.get(f"{LEASES}/{cluster.node}")["spec"]["renewTime"]
    ready = next(c for c in unknown["status"]["conditions"] if c["type"] == "Ready")
    silent_s = (datetime.fromisoformat(ready["lastTransitionTime"]) - datetime.fromisoformat(renewed)).total_seconds()
    assert GRACE_S - 1 <= silent_s <= GRACE_S + 5, (renewed, ready)
    assert UNREACHABLE in taints(unknown)
    wait_for(lambda: pod_ready(cluster.cloud_pod("steady")) == "False", 10, "the pod's Ready condition False")
    assert cluster.running_ids("steady") == ids  # the node runs its pods on: nothing evicted, nothing restarted

    cluster.start_bridge()  # returns once the node is Ready again with its lease renewed
    wait_for(lambda: UNREACHABLE not in taints(cluster.node_object()), 10, "the unreachable taint to go")
    back = cluster.wait_pod("steady", lambda p: pod_ready(p) == "True" and running_at_cloud(p), 30,
                            "the pod Ready again at the cloud")
    (status,) = back["status"]["containerStatuses"]
    assert status["containerID"] == f"docker://{ids['app']}"
    assert status["restartCount"] == 0
    assert cluster.running_ids("steady") == ids
