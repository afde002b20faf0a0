"""The bridge SIGKILLed while pods change at the cloud: when it returns, the node matches the cloud exactly."""
from __future__ import annotations

from tests.integration.loop.conftest import Cluster, busybox_pod, running_at_cloud
from tests.polling import wait_for


def test_node_matches_the_cloud_after_the_bridge_was_killed_while_pods_changed(cluster: Cluster) -> None:
    node = cluster.node
    cluster.apply(*(busybox_pod(name, node=node) for name in ("keep", "graceful", "forced")))
    cluster.wait_running("keep", "graceful", "forced")
    keep_ids = cluster.running_ids("keep")

    cluster.kill_bridge()
    cluster.apply(*(busybox_pod(f"new-{i}", node=node) for i in range(3)))
    # Graceful: the cloud marks it and waits for the node's confirmation.
    cluster.kubectl("delete", "pod", "graceful", "--wait=false")
    # Forced: gone from the cloud at once; the node never gets a DELETED event for it.
    cluster.kubectl("delete", "pod", "forced", "--grace-period=0", "--force")
    assert cluster.cloud_pod("graceful")["metadata"].get("deletionTimestamp")
    assert cluster.cloud_pod("forced") is None
    assert {"keep", "graceful", "forced"} <= cluster.running_pods()  # nobody told the node yet

    cluster.start_bridge()
    expected = {"keep", "new-0", "new-1", "new-2"}

    def node_matches_cloud() -> bool:
        at_cloud = cluster.cloud_pods()
        return (
            set(at_cloud) == expected
            and cluster.running_pods() == expected
            and all(running_at_cloud(pod) for pod in at_cloud.values())
            and not cluster.containers("graceful")
            and not cluster.containers("forced")
        )

    try:
        wait_for(node_matches_cloud, 60, "the node's running pods to equal the cloud's pods, all Running")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\ncloud: {sorted(cluster.cloud_pods())}, Docker running: {sorted(cluster.running_pods())}, "
            f"graceful: {len(cluster.containers('graceful'))} containers, "
            f"forced: {len(cluster.containers('forced'))} containers\n{cluster.logs()}"
        ) from None
    assert cluster.running_ids("keep") == keep_ids  # the kill restarted nothing
    (status,) = cluster.cloud_pod("keep")["status"]["containerStatuses"]
    assert status["restartCount"] == 0
    assert status["containerID"] == f"docker://{keep_ids['app']}"
