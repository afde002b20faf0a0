"""`kubectl delete deployment --cascade=foreground` with a real node: the Deployment stays until its pod's containers
are stopped on the node and the node has confirmed the pod's deletion."""
from __future__ import annotations

import json

from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for

# Stops 3 s after its SIGTERM: long enough to see the Deployment wait for it.
SLOW_STOP = "trap 'sleep 3; exit 0' TERM; sleep 3600 & wait"


def test_foreground_deletion_waits_for_the_node_to_stop_the_pod(cluster: Cluster) -> None:
    pod = busybox_pod("ignored", SLOW_STOP, grace=10)
    cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cascade", "namespace": "default"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cascade"}},
                            "template": {"metadata": {"labels": {"app": "cascade"}}, "spec": pod["spec"]}}})
    name = wait_for(lambda: next((n for n in cluster.cloud_pods() if n.startswith("cascade-")), None), 60,
                    "the Deployment's pod bound")
    cluster.wait_running(name)

    deleted = cluster.kubectl("delete", "deployment", "cascade", "--cascade=foreground", "--wait=false")
    assert deleted.stdout.strip() == 'deployment.apps "cascade" deleted'

    def owner_waiting() -> bool:
        got = cluster.kubectl("get", "deployment", "cascade", "-o", "json", check=False)
        terminating = cluster.cloud_pod(name)
        return got.returncode == 0 and "deletionTimestamp" in json.loads(got.stdout)["metadata"] and (
            terminating is not None and "deletionTimestamp" in terminating["metadata"])

    wait_for(owner_waiting, 30, "the Deployment waiting for its terminating pod")
    cluster.kubectl("wait", "--for=delete", "deployment/cascade", "--timeout=90s", timeout_s=120)
    # the Deployment went last: its ReplicaSet and pod, containers included, went first.
    assert cluster.cloud_pod(name) is None and cluster.containers(name) == []
    assert json.loads(cluster.kubectl("get", "rs", "-l", "app=cascade", "-o", "json").stdout)["items"] == []
