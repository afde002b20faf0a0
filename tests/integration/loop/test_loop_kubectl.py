"""A pod's whole life through the loop, driven by the real kubectl and by the official Python client."""
from __future__ import annotations

import re

import kubernetes
import pytest
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from tests.integration.loop.conftest import Cluster, busybox_pod
from tests.polling import wait_for


def test_kubectl_apply_runs_the_pod_on_docker_and_delete_removes_it(cluster: Cluster) -> None:
    cluster.apply(busybox_pod("hello", "echo hello from the loop; sleep 3600"))  # no nodeName: the scheduler binds it

    pod = cluster.wait_running("hello")["hello"]
    assert pod["spec"]["nodeName"] == cluster.node
    ids = cluster.running_ids("hello")
    assert set(ids) == {"POD", "app"}
    (status,) = pod["status"]["containerStatuses"]
    assert status["name"] == "app"
    assert status["containerID"] == f"docker://{ids['app']}"
    assert status["ready"] is True
    assert status["restartCount"] == 0

    header, row = cluster.kubectl("get", "pod", "hello").stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == ["hello", "1/1", "Running", "0"]

    logs = wait_for(lambda: cluster.kubectl("logs", "hello", check=False).stdout, 10, "kubectl logs hello")
    assert logs == "hello from the loop\n"

    described = cluster.kubectl("describe", "pod", "hello").stdout
    assert re.search(rf"^Node:\s+{cluster.node}/", described, re.M), described
    assert re.search(r"^Status:\s+Running$", described, re.M), described
    assert re.search(rf"^\s+Container ID:\s+docker://{ids['app']}$", described, re.M), described

    deleted = cluster.kubectl("delete", "pod", "hello", "--timeout=60s", timeout_s=90)
    assert deleted.stdout.strip() == 'pod "hello" deleted'
    # kubectl returned: the node confirmed the deletion, which it does once the containers are gone.
    assert cluster.cloud_pod("hello") is None
    assert cluster.containers("hello") == []
    gone = cluster.kubectl("get", "pod", "hello", check=False)
    assert gone.returncode == 1
    assert 'pods "hello" not found' in gone.stderr


def test_python_client_creates_watches_reads_the_log_and_deletes(cluster: Cluster, core: CoreV1Api) -> None:
    client = kubernetes.client
    container = client.V1Container(name="app", image="busybox", image_pull_policy="Never",
                                   command=["sh", "-c", "echo hello from python; sleep 3600"])
    body = client.V1Pod(metadata=client.V1ObjectMeta(name="pyclient", labels={"suite": "loop"}),
                        spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=1))
    created = core.create_namespaced_pod("default", body)
    assert created.metadata.uid

    running = None
    watch = kubernetes.watch.Watch()
    for event in watch.stream(core.list_namespaced_pod, "default", field_selector="metadata.name=pyclient",
                              timeout_seconds=60):
        pod = event["object"]
        statuses = pod.status.container_statuses or []
        if pod.status.phase == "Running" and statuses and all(s.ready for s in statuses):
            running = pod
            watch.stop()
    assert running is not None, f"pyclient never Running in the watch\n{cluster.logs()}"
    assert running.spec.node_name == cluster.node
    assert running.metadata.uid == created.metadata.uid
    assert running.status.container_statuses[0].container_id == f"docker://{cluster.running_ids('pyclient')['app']}"

    log = wait_for(lambda: core.read_namespaced_pod_log("pyclient", "default"), 10, "the pod's log")
    assert log == "hello from python\n"

    deleting = core.delete_namespaced_pod("pyclient", "default")
    version = deleting.metadata.resource_version if deleting.metadata else None
    if version:  # being deleted: the node confirms it, then the cloud sends DELETED
        events = []
        for event in watch.stream(core.list_namespaced_pod, "default", field_selector="metadata.name=pyclient",
                                  resource_version=version, timeout_seconds=60):
            events.append(event["type"])
            if event["type"] == "DELETED":
                watch.stop()
        assert events[-1:] == ["DELETED"], f"no DELETED event: {events}\n{cluster.logs()}"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("pyclient", "default")
    assert err.value.status == 404
    assert cluster.containers("pyclient") == []
