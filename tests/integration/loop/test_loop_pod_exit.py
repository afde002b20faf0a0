"""A container that ends on its own: the node's PLEG notices, and the cloud shows how the pod ended."""
from __future__ import annotations

from tests.integration.loop.conftest import Cluster, busybox_pod


def test_pods_that_exit_show_succeeded_and_failed_at_the_cloud(cluster: Cluster) -> None:
    cluster.apply(
        busybox_pod("brief", "sleep 1; exit 0", restartPolicy="Never"),
        busybox_pod("broken", "sleep 1; exit 3", restartPolicy="Never"),
    )
    done = {"brief": "Succeeded", "broken": "Failed"}
    for name, phase in done.items():
        pod = cluster.wait_pod(name, lambda p, phase=phase: p["status"].get("phase") == phase, 60, f"pod {name} {phase}")
        (status,) = pod["status"]["containerStatuses"]
        assert status["state"]["terminated"]["exitCode"] == (0 if phase == "Succeeded" else 3)
        assert status["restartCount"] == 0
