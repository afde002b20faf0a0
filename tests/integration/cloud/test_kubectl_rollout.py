"""kubectl's rollout verbs against the Deployment controller (no node: the ReplicaSets are checked, not their pods).

``rollout undo`` is kubectl's own client-side rollback: a JSON patch of the template from the wanted revision's
ReplicaSet; ``rollout restart`` a strategic merge patch of a template annotation; ``rollout history`` reads the
ReplicaSets' revision annotations.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.polling import wait_for

if TYPE_CHECKING:
    from conftest import Cloud


def replica_sets(cloud: Cloud, app: str) -> list[dict]:
    items = json.loads(cloud.kubectl("get", "rs", "-l", f"app={app}", "-o", "json").stdout)["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def images(cloud: Cloud, app: str) -> list[tuple[str, int]]:
    return [(rs["spec"]["template"]["spec"]["containers"][0]["image"], rs["spec"]["replicas"])
            for rs in replica_sets(cloud, app)]


def test_set_image_history_undo_restart_and_scale(cloud: Cloud) -> None:
    cloud.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "roll"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "roll"}}, "template": {
            "metadata": {"labels": {"app": "roll"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    try:
        wait_for(lambda: images(cloud, "roll") == [("busybox", 3)], what="the first ReplicaSet")
        columns = cloud.kubectl("get", "deploy", "roll", "-o", "wide").stdout.split()
        assert columns[:8] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]

        cloud.kubectl("set", "image", "deployment/roll", "c=busybox:1.36")
        # no pod is ever available here, so the rollout stops at maxSurge (1 of 3 at 25%): nothing old goes
        wait_for(lambda: images(cloud, "roll") == [("busybox", 3), ("busybox:1.36", 1)], what="the surge")
        history = cloud.kubectl("rollout", "history", "deployment/roll").stdout
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

        cloud.kubectl("rollout", "undo", "deployment/roll")
        wait_for(lambda: json.loads(cloud.kubectl("get", "deploy", "roll", "-o", "json").stdout)["spec"]["template"][
            "spec"]["containers"][0]["image"] == "busybox", what="the template rolled back")
        wait_for(lambda: [rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                          for rs in replica_sets(cloud, "roll")] == ["2", "3"], what="revision 3")
        assert images(cloud, "roll")[-1][0] == "busybox"

        cloud.kubectl("rollout", "restart", "deployment/roll")
        wait_for(lambda: len(replica_sets(cloud, "roll")) == 3, what="a restart's ReplicaSet")
        newest = replica_sets(cloud, "roll")[-1]
        assert "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]

        cloud.kubectl("scale", "deployment/roll", "--replicas=5")

        def observed() -> dict | None:
            deployment = json.loads(cloud.kubectl("get", "deploy", "roll", "-o", "json").stdout)
            seen = deployment["status"].get("observedGeneration") == deployment["metadata"]["generation"] == 5
            return deployment if seen else None

        deployment = wait_for(observed, what="the scale observed")
        assert sum(rs["spec"]["replicas"] for rs in replica_sets(cloud, "roll")) <= 5 + 2  # maxSurge of 5 at 25%
        assert {c["type"]: c["reason"] for c in deployment["status"]["conditions"]}["Available"] == (
            "MinimumReplicasUnavailable")
        status = cloud.kubectl("rollout", "status", "deployment/roll", "--timeout=1s", check=False)
        assert status.returncode != 0 and "Waiting for deployment" in status.stdout + status.stderr

        cloud.kubectl("delete", "deploy", "roll")
        wait_for(lambda: replica_sets(cloud, "roll") == [], what="the ReplicaSets collected")
    finally:
        cloud.kubectl("delete", "deploy", "roll", "--ignore-not-found")
