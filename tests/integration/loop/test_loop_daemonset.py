"""A DaemonSet through the whole loop with the real kubectl: it lands and runs on the edge node, `kubectl rollout
status|history|undo ds` work, an image update rolls, and `kubectl delete ds` removes its pods from the node.

On a cloud of its own (``own_cluster``): a DaemonSet puts a pod on every node, so it must not meet other tests'
nodes."""
from __future__ import annotations

import re
from typing import Any

from tests.integration.loop.conftest import POD_TIMEOUT_S, Cluster, running_at_cloud
from tests.polling import wait_for

NAME = "agent"


def daemonset(image: str) -> dict[str, Any]:
    container = {"name": NAME, "image": image, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", "sleep 3600"]}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": NAME, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": NAME}},
                     "template": {"metadata": {"labels": {"app": NAME}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}


def daemon_pods(cluster: Cluster) -> list[dict[str, Any]]:
    listed = cluster.cloud.api.get("/api/v1/namespaces/default/pods", {"labelSelector": f"app={NAME}"})
    return listed.get("items") or []


def the_running_pod(cluster: Cluster, image: str) -> dict[str, Any]:
    """Wait until the DaemonSet has exactly one pod, of ``image``, Running on the node; return it."""
    def one() -> dict[str, Any] | None:
        pods = daemon_pods(cluster)
        if len(pods) == 1 and pods[0]["spec"]["containers"][0]["image"] == image and running_at_cloud(pods[0]):
            return pods[0]
        return None
    return wait_for(one, POD_TIMEOUT_S, f"one {image} pod of the DaemonSet Running")


def rollout_status(cluster: Cluster) -> str:
    return cluster.kubectl("rollout", "status", f"ds/{NAME}", "--timeout=90s", timeout_s=120).stdout


def test_a_daemonset_runs_on_the_node_rolls_an_image_update_undoes_it_and_goes(own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.apply(daemonset("busybox:1.28"))
    assert f'daemon set "{NAME}" successfully rolled out' in rollout_status(cluster)
    first = the_running_pod(cluster, "busybox:1.28")
    assert first["spec"]["nodeName"] == cluster.node
    assert first["metadata"]["name"].startswith(f"{NAME}-")
    assert first["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert set(cluster.running_ids(first["metadata"]["name"])) == {"POD", NAME}

    header, row = cluster.kubectl("get", "ds", NAME).stdout.splitlines()
    assert header.split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                              "AGE"]
    assert row.split()[:7] == [NAME, "1", "1", "1", "1", "1", "<none>"]

    cluster.kubectl("set", "image", f"ds/{NAME}", f"{NAME}=busybox:1.36")
    assert f'daemon set "{NAME}" successfully rolled out' in rollout_status(cluster)
    second = the_running_pod(cluster, "busybox:1.36")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    cluster.wait_gone(first["metadata"]["name"])

    history = cluster.kubectl("rollout", "history", f"ds/{NAME}").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history
    assert "busybox:1.28" in cluster.kubectl("rollout", "history", f"ds/{NAME}", "--revision=1").stdout

    undone = cluster.kubectl("rollout", "undo", f"ds/{NAME}").stdout
    assert undone.strip() == f"daemonset.apps/{NAME} rolled back"
    assert f'daemon set "{NAME}" successfully rolled out' in rollout_status(cluster)
    third = the_running_pod(cluster, "busybox:1.28")
    assert third["metadata"]["labels"]["controller-revision-hash"] == first["metadata"]["labels"][
        "controller-revision-hash"]
    history = cluster.kubectl("rollout", "history", f"ds/{NAME}").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"], history

    described = cluster.kubectl("describe", "ds", NAME).stdout
    assert re.search(r"^Desired Number of Nodes Scheduled: 1$", described, re.M), described
    assert re.search(r"^Pods Status:\s+1 Running / 0 Waiting / 0 Succeeded / 0 Failed$", described, re.M), described
    assert re.search(r"SuccessfulCreate\s+.*Created pod: " + third["metadata"]["name"], described), described
    events = cluster.kubectl("get", "events", "--field-selector", f"involvedObject.name={NAME}").stdout
    assert "SuccessfulCreate" in events and "SuccessfulDelete" in events, events

    deleted = cluster.kubectl("delete", "ds", NAME, "--timeout=60s", timeout_s=90)
    assert deleted.stdout.strip() == f'daemonset.apps "{NAME}" deleted'
    cluster.wait_gone(third["metadata"]["name"])
    assert daemon_pods(cluster) == []
    assert cluster.cloud.api.get("/apis/apps/v1/namespaces/default/controllerrevisions").get("items") == []
